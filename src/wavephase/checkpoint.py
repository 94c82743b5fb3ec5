"""Atomic checkpoints for long jobs (training, synthesis, feature extraction).

A checkpoint is written to a temporary file and moved into place with
``os.replace``, so a job killed at any instant leaves either the previous or the
new checkpoint, never a torn one. Checkpoints hold only tensors, numbers, strings
and containers of them and are read back with ``torch.load(weights_only=True)``,
which refuses arbitrary pickled objects.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

__all__ = ["save_checkpoint", "load_checkpoint"]


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Save ``state`` to ``path`` atomically.

    Parameters
    ----------
    state : dict
        Tensors, numbers, strings, and lists/dicts of them (e.g. ``model.state_dict()``,
        ``optimizer.state_dict()``, RNG states, the epoch counter).
    path : path-like
        Destination file.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """Load a checkpoint written by :func:`save_checkpoint`, or ``None`` if absent.

    Parameters
    ----------
    path : path-like
        Checkpoint file.

    Returns
    -------
    dict or None
        The saved state, or ``None`` when no checkpoint exists yet.

    Raises
    ------
    ValueError
        If the file exists but cannot be read as a safe checkpoint.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for corrupt or unsafe files
        raise ValueError(
            f"checkpoint {path} is corrupt or holds objects other than tensors and plain data ({err}); "
            f"delete it to restart from scratch."
        ) from err
