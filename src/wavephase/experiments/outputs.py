"""The output folder of an experiment: checked before any work, results written atomically."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from wavephase.io import write_json

__all__ = ["prepare_output_dir", "run_info", "write_metrics"]


def prepare_output_dir(out: str | os.PathLike[str], name: str = "out") -> Path:
    """Create the output folder, or check an existing one, before any heavy work.

    Parameters
    ----------
    out : path-like
        Folder the experiment writes to.
    name : str
        Argument name used in error messages (``--out`` on the command line).

    Returns
    -------
    pathlib.Path
        The folder, which exists and is writable.

    Raises
    ------
    ValueError
        If ``out`` is an existing file, or cannot be created or written to.
    """
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{name}={str(path)!r} is an existing file, not a folder; choose another path.")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"{name}={str(path)!r} cannot be created ({err.strerror}); choose another path.") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ValueError(f"{name}={str(path)!r} is not writable; choose another path or fix its permissions.")
    _run_commit()
    return path


def _git(where: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(["git", "-C", str(where), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def _commit(where: Path = Path(__file__).resolve().parent) -> str | None:
    """Short hash of the checkout's HEAD, ``+modified`` when tracked files differ from it (None outside git)."""
    head = _git(where, "rev-parse", "--short", "HEAD")
    if not head:
        return None
    # A figure made from edited files is not that commit's figure.
    changes = _git(where, "status", "--porcelain", "--untracked-files=no")
    return head + ("+modified" if changes else "")


def _program() -> str:
    """The command's name: ``wavephase`` also when it runs as ``python -m wavephase``."""
    name = Path(sys.argv[0]).name
    return "wavephase" if name == "__main__.py" and Path(sys.argv[0]).parent.name == "wavephase" else name


_commit_at_start: list[str | None] = []


def _run_commit() -> str | None:
    """The commit of the code this process runs, read once: when its first output folder is prepared.

    A commit made while a long run works is not the code that run imported, so
    its results must not carry that commit.
    """
    if not _commit_at_start:
        _commit_at_start.append(_commit())
    return _commit_at_start[0]


def run_info() -> dict[str, Any]:
    """Where and how a result was made: command, commit, date, machine.

    Returns
    -------
    dict
        ``command``, ``commit`` (as the process started its first experiment; None outside
        a git checkout; ``<hash>+modified`` when tracked files of the checkout differed from
        that commit), ``date`` (UTC, ISO 8601),
        ``machine`` (processor, cores, torch threads, GPU), ``python``, ``torch``.
    """
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "command": " ".join([_program(), *sys.argv[1:]]),
        "commit": _run_commit(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(), "gpu": gpu},
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def write_metrics(out: str | os.PathLike[str], metrics: dict[str, Any], name: str = "metrics.json") -> Path:
    """Write an experiment's metrics as JSON, atomically, with :func:`run_info` under ``"run"``.

    Parameters
    ----------
    out : path-like
        Output folder.
    metrics : dict
        The results (tensors, arrays and NumPy scalars are converted).
    name : str
        File name.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    return write_json(Path(out) / name, {**metrics, "run": run_info()})
