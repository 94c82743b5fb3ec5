"""The record a benchmark script writes: its figures, with the command, commit and machine that made them.

Every benchmark of ``benchmarks/`` ends by calling :func:`write_record`, which writes
``benchmarks/results/<name>.json`` (or the path given with ``--record``). The results
page of the docs and the results table of the README are generated from these files
by ``python benchmarks/make_results_page.py``, so their numbers cannot drift from the
measurements.

A record holds:

* ``headline``: the figures that go to the README, each ``{"metric", "value", "unit",
  "spread", "baseline", "note"}``; ``spread`` is ``[min, max]`` over repeats or seeds
  (None for one run), ``baseline`` ``{"label", "value"}`` what it is compared with in
  the same run;
* ``tables``: ``{"title", "columns", "rows"}``, the detail for the results page;
* ``anchors``: published figures, ``{"label", "value", "unit", "source"}``, never
  measured here and marked so;
* ``run``: command, commit, date, machine (:func:`wavephase.experiments.run_info`).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any, Sequence

from wavephase.experiments.outputs import run_info
from wavephase.io import write_json

__all__ = ["RESULTS", "headline", "write_record"]

RESULTS = Path(__file__).resolve().parent / "results"


def describe_checkout(src: Path) -> str:
    """How a record names a ``src`` folder it timed: its checkout's commit, or its path outside git."""
    proc = subprocess.run(["git", "-C", str(src), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return f"the package of commit {proc.stdout.strip()}" if proc.returncode == 0 else f"the package under {src}"


def headline(metric: str, value: float, unit: str = "", *, spread: Sequence[float] | None = None,
             baseline: tuple[str, float] | None = None, note: str = "") -> dict[str, Any]:
    """One headline figure.

    Parameters
    ----------
    metric : str
        What is measured, e.g. ``"(a) forward speed-up vs Kymatio"``.
    value : float
        The figure (the median when there are repeats).
    unit : str
        Its unit (``"x"``, ``"%"``, ``"kcal/mol"``, ``"s"``...).
    spread : (float, float), optional
        Smallest and largest value over repeats or seeds.
    baseline : (str, float), optional
        Label and value of what it is compared with in the same run.
    note : str
        One short qualifier shown with the figure.

    Returns
    -------
    dict
        The figure as stored in a record.
    """
    return {"metric": metric, "value": float(value), "unit": unit,
            "spread": None if spread is None else [float(min(spread)), float(max(spread))],
            "baseline": None if baseline is None else {"label": baseline[0], "value": float(baseline[1])},
            "note": note}


def write_record(name: str, *, application: str, title: str, headlines: list[dict[str, Any]],
                 tables: list[dict[str, Any]] | None = None, anchors: list[dict[str, Any]] | None = None,
                 notes: list[str] | None = None, path: str | os.PathLike[str] | None = None,
                 run: dict[str, Any] | None = None) -> Path:
    """Write the record of one benchmark run.

    Parameters
    ----------
    name : str
        File stem, e.g. ``"scattering2d"``.
    application : str
        Section of the results page (``"scattering"``, ``"synthesis"``, ``"classification"``,
        ``"qm9"``, ``"generation"``).
    title : str
        Heading of the record on the results page.
    headlines : list of dict
        Figures made with :func:`headline`.
    tables : list of dict, optional
        ``{"title": str, "columns": [str], "rows": [[value, ...]]}``.
    anchors : list of dict, optional
        Published figures: ``{"label", "value", "unit", "source"}``.
    notes : list of str, optional
        Short remarks (what a figure means, the noise).
    path : path-like, optional
        Where to write; ``benchmarks/results/<name>.json`` by default.
    run : dict, optional
        Command, commit, date and machine of the measurement when it was made by an
        earlier command (the ``"run"`` block of an experiment's ``metrics.json``); by
        default those of this process.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    record = {"name": name, "application": application, "title": title, "headline": headlines,
              "tables": tables or [], "anchors": [{**a, "measured_here": False} for a in anchors or []],
              "notes": notes or [], "run": run or run_info()}
    target = Path(path) if path is not None else RESULTS / f"{name}.json"
    write_json(target, record)
    print(f"record written: {target}")
    return target
