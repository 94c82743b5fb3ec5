"""Earlier runs as sections of the report (``wavephase report --include DIR``).

Every ``metrics.json`` under ``DIR`` (written by ``wavephase classify``, ``qm9``,
``synth``, ``generate`` or a report's own sections) becomes a section that reads like
the report's own, labelled with the command, commit, date and machine recorded in
its ``"run"`` block. Classification runs under one ``DIR`` form one section, so a
sparse cascade meets the scattering + linear run beside it. Figures are copied into
the report's folder, which stays self-contained.
"""

from __future__ import annotations

import json
import shutil
import traceback
from pathlib import Path
from typing import Any

from wavephase.report.summaries import (
    application_of,
    summarize_classification,
    summarize_generation,
    summarize_qm9,
    summarize_scattering,
    summarize_synthesis,
)

__all__ = ["find_runs", "include_sections", "summarize_runs"]

_TITLES = {"scattering": "Scattering of an image", "synthesis": "Maximum-entropy synthesis",
           "classification": "Classification", "qm9": "QM9 regression", "generation": "Generative scattering"}


def _qm9(m: dict[str, Any], folder: Path) -> dict[str, Any]:
    from wavephase.report.baselines import dressed_atom_errors

    summary = summarize_qm9(m, folder, dressed_atom_errors(m))
    summary["notes"].append("The dressed-atom baseline was fitted by this report on the run's training molecules "
                            "and scored on its test molecules.")
    return summary


_SUMMARIES = {"scattering": summarize_scattering, "synthesis": summarize_synthesis, "qm9": _qm9,
              "generation": summarize_generation}


def summarize_runs(application: str, runs: list[tuple[dict[str, Any], Path]]) -> dict[str, Any]:
    """The summary of earlier runs of one application, as the report shows it.

    Parameters
    ----------
    application : str
        As returned by :func:`wavephase.report.summaries.application_of`.
    runs : list of (dict, Path)
        ``metrics.json`` contents and folders; several only for classification.

    Returns
    -------
    dict
        Headlines, comparisons, details, figures and notes (see :mod:`wavephase.report.summaries`).
    """
    if application == "classification":
        return summarize_classification(runs)
    if len(runs) != 1:
        raise ValueError(f"one {application} run at a time, got {len(runs)}")
    return _SUMMARIES[application](*runs[0])


def find_runs(path: Path) -> list[tuple[dict[str, Any], Path, str]]:
    """The experiments' ``metrics.json`` files at or under ``path``.

    Parameters
    ----------
    path : Path
        A ``metrics.json`` file or a folder searched for them.

    Returns
    -------
    list of (dict, Path, str)
        Each file's content, its folder and its application (:func:`application_of`).

    Raises
    ------
    ValueError
        If no file there was written by a wavephase experiment.
    """
    files = [path] if path.is_file() else sorted(path.rglob("metrics.json"))
    found = []
    for f in files:
        m = json.loads(f.read_text())
        app = application_of(m) if isinstance(m, dict) else None
        if app is not None:
            found.append((m, f.parent, app))
    if not found:
        raise ValueError(f"{str(path)!r} holds no metrics.json written by a wavephase experiment.")
    return found


def _copy_figures(summary: dict[str, Any], root: Path, dest: Path, out: Path) -> dict[str, str]:
    figures = {}
    for caption, src in summary["figures"].items():
        src = Path(src)
        rel = src.relative_to(root) if src.is_relative_to(root) else Path(src.name)
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
        figures[caption] = target.relative_to(out).as_posix()
    return figures


def include_sections(path: str | Path, out: Path, prefix: str = "included") -> list[dict[str, Any]]:
    """The sections of the earlier runs found under ``path``.

    Parameters
    ----------
    path : path-like
        A ``metrics.json`` file or a folder searched for them.
    out : Path
        The report's folder; figures are copied to ``out/included/...``.
    prefix : str
        Start of the sections' keys (one prefix per included path keeps keys unique).

    Returns
    -------
    list of dict
        Section results with ``origin="included"``, ``source`` (the folder) and
        ``run`` (the run block of its ``metrics.json``); a run that cannot be read
        gives a failed section with its error.
    """
    path = Path(path).resolve()
    root = path.parent if path.is_file() else path
    sections = []
    try:
        found = find_runs(path)
    except Exception:
        return [{"status": "failed", "key": prefix, "title": f"Included: {path}", "seconds": 0.0,
                 "origin": "included", "error": traceback.format_exc(limit=3)}]
    classification = [(m, f) for m, f, app in found if app == "classification"]
    groups: list[tuple[str, list[tuple[dict[str, Any], Path]]]] = [
        (app, [(m, f)]) for m, f, app in found if app != "classification"]
    if classification:
        groups.append(("classification", classification))
    for n, (app, runs) in enumerate(groups):
        key = f"{prefix}-{n}-{app}"
        folder = runs[0][1]
        where = folder.relative_to(root).as_posix() if folder != root else root.name
        entry: dict[str, Any] = {"key": key, "title": f"Included: {_TITLES[app]} ({where})", "origin": "included",
                                 "source": str(folder), "run": runs[0][0].get("run") or {}, "seconds": 0.0}
        try:
            summary = summarize_runs(app, runs)
            summary["figures"] = _copy_figures(summary, root, out / "included" / key, out)
            if len(runs) > 1:
                summary["details"]["Runs"] = {f.relative_to(root).as_posix() or ".": (m.get("run") or {}).get(
                    "command", "?") for m, f in runs}
            entry.update(status="ok", **summary)
        except Exception:  # an unreadable run is shown with its error; the others are kept
            entry.update(status="failed", error=traceback.format_exc(limit=4))
        sections.append(entry)
    return sections
