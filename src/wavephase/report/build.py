"""``wavephase report``: run every application, keep each section's result, and write one HTML page.

Each section runs in its own folder and its result is kept there as
``section.json``, with a fingerprint of the section's settings and a checksum
(:func:`wavephase.runs.write_verified`) and the SHA-256 of each of its figures. A
report killed and started again reuses every kept section whose settings match
and whose files are intact, and runs the others: a full report is resumable
section by section. A section that raises is shown with its error and never kept;
the others go on.
"""

from __future__ import annotations

import json
import shutil
import time
import traceback
from pathlib import Path
from typing import Any

from wavephase.exceptions import ChecksumError, StaleFileError
from wavephase.experiments.outputs import prepare_output_dir, run_info
from wavephase.io import sha256_file, write_json
from wavephase.report.include import include_sections
from wavephase.report.page import render_html
from wavephase.report.section import Section
from wavephase.report.sections import SECTIONS
from wavephase.runs import fingerprint, read_verified, write_verified

__all__ = ["build_report"]

_KEPT = "section.json"
# Written when a section starts: its folder's files (drivers' checkpoints included) were made with these settings.
_MARKER = ".section-settings"
# Bumped when the kept result's layout changes, so older files are recomputed.
_FORMAT = 1


def _fingerprint(section: Section, mode: str, settings: dict[str, Any]) -> str:
    return fingerprint({"key": section.key, "mode": mode, "settings": settings, "format": _FORMAT})


def _load_kept(folder: Path, fp: str) -> dict[str, Any] | None:
    """The kept result of a section, or None when absent, stale, corrupt, or a figure changed."""
    try:
        payload = read_verified(folder / _KEPT, fp, "json", "report section")
    except (ChecksumError, StaleFileError):
        return None
    if payload is None:
        return None
    entry = json.loads(payload.decode())
    for rel, digest in entry["figure_sha256"].items():
        path = folder / rel
        if not path.is_file() or sha256_file(path) != digest:
            return None
    return entry


def _prepare_folder(folder: Path, fp: str, fresh: bool) -> None:
    """Empty a section's folder made by the report for other settings (or for any, when ``fresh``).

    The drivers' own checkpoints in it refuse other settings, so a folder left by a
    quick report would stop a full one; an interrupted run of the same settings is
    kept, so that its drivers resume.
    """
    marker = folder / _MARKER
    if marker.is_file() and (fresh or marker.read_text() != fp):
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    marker.write_text(fp)


def _run_section(section: Section, folder: Path, settings: dict[str, Any], fp: str, fresh: bool) -> dict[str, Any]:
    _prepare_folder(folder, fp, fresh)
    start = time.perf_counter()
    result = section.run(folder, settings)
    figures = {}
    for caption, path in result.get("figures", {}).items():
        path = Path(path)
        figures[caption] = (path if path.is_absolute() else folder / path).resolve().relative_to(folder).as_posix()
    entry = {**result, "figures": figures, "seconds": time.perf_counter() - start, "run": run_info(),
             "figure_sha256": {rel: sha256_file(folder / rel) for rel in figures.values()}}
    write_verified(folder / _KEPT, [json.dumps(entry, default=str).encode()], fp, "json")
    return entry


def _check_arguments(sections: list[Section], only: list[str] | None, include: list[str | Path] | None
                     ) -> tuple[list[Section], list[Path]]:
    if only:
        unknown = set(only) - {s.key for s in sections}
        if unknown:
            raise ValueError(f"unknown report sections {sorted(unknown)}; choose from {[s.key for s in sections]}.")
        sections = [s for s in sections if s.key in only]
    paths = [Path(p) for p in include or []]
    for p in paths:
        if not p.exists():
            raise ValueError(f"include={str(p)!r} does not exist; pass the folder of an earlier run (it holds "
                             f"metrics.json) or the file itself.")
    return sections, paths


def build_report(out_dir: str | Path, quick: bool = True, sections: list[Section] | None = None,
                 only: list[str] | None = None, include: list[str | Path] | None = None,
                 resume: bool | None = None) -> Path:
    """Run the sections and write ``out_dir/index.html`` and ``out_dir/report.json``.

    Parameters
    ----------
    out_dir : str or Path
        Output folder; each section writes into ``out_dir/<key>``.
    quick : bool
        Quick sizes (minutes on 2 cores) instead of paper sizes (hours).
    sections : list of Section, optional
        Sections to run; all of :data:`wavephase.report.sections.SECTIONS` by default.
    only : list of str, optional
        Keys of the sections to keep.
    include : list of path-like, optional
        Earlier runs to add as sections: folders holding ``metrics.json`` files
        (searched recursively; e.g. the folder of ``wavephase classify``, ``qm9``,
        ``synth`` or ``generate``) or such files, each labelled with the command,
        commit, date and machine that made it.
    resume : bool, optional
        Reuse the kept result of a section run before with the same settings, and
        let an interrupted section's drivers resume from their checkpoints
        (default: for the full report only). Without it, each section's folder is
        emptied first, so every number is computed afresh.

    Returns
    -------
    pathlib.Path
        Path of ``index.html``.

    Raises
    ------
    ValueError
        For an unknown section key, an ``include`` path that does not exist, or an
        output folder that cannot be written (before any section runs).
    """
    from tqdm import tqdm

    sections, include_paths = _check_arguments(SECTIONS if sections is None else sections, only, include)
    out = prepare_output_dir(out_dir).resolve()
    mode = "quick" if quick else "full"
    resume = (not quick) if resume is None else bool(resume)
    start_all = time.perf_counter()
    results = []
    for section in tqdm(sections, desc="report", unit="section"):
        folder = prepare_output_dir(out / section.key)
        settings = section.settings(quick)
        fp = _fingerprint(section, mode, settings)
        start = time.perf_counter()
        entry = _load_kept(folder, fp) if resume else None
        origin = "reused"
        if entry is None:
            origin = "run"
            try:
                entry = _run_section(section, folder, settings, fp, fresh=not resume)
            except Exception:  # a failing section is reported on the page, the others go on
                entry = {"status": "failed", "error": traceback.format_exc(limit=6),
                         "seconds": time.perf_counter() - start}
        entry = {"status": "ok", **entry, "key": section.key, "title": section.title, "settings": settings,
                 "origin": origin, "expected_seconds": section.expected_seconds[0 if quick else 1]}
        if entry["status"] == "ok":
            entry["figures"] = {c: f"{section.key}/{p}" for c, p in entry["figures"].items()}
        results.append(entry)
    for i, path in enumerate(include_paths):
        results.extend(include_sections(path, out, prefix=f"included-{i}"))
    total = time.perf_counter() - start_all
    page = out / "index.html"
    page.write_text(render_html(results, mode, total, run_info()), encoding="utf-8")
    write_json(out / "report.json", {"mode": mode, "seconds": total, "sections": results})
    return page

