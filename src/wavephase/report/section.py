"""What a section of the report is, and the numbers it returns.

A section runs one application with its settings and returns a plain, JSON-able
dict (kept in its folder, so a killed report resumes):

* ``headlines``: the figures of the summary table (:func:`headline`), each this
  run's figure, its baseline measured in the same run and a published anchor;
* ``comparisons``: tables with the truth, ours and the baseline side by side as
  columns, one row per metric (:func:`comparison`, :func:`row`);
* ``details``: longer tables ``{title: {label: value}}``, folded on the page;
* ``figures``: ``{caption: path}``, paths relative to the section's folder;
* ``notes``: sentences computed from the numbers (what a weak figure comes from).

The page's verdicts are computed from these numbers by :mod:`wavephase.report.verdict`,
never written by hand.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

__all__ = ["Section", "comparison", "headline", "row"]

_BETTER = ("lower", "higher")


@dataclass(frozen=True)
class Section:
    """One part of the report.

    Attributes
    ----------
    key : str
        Identifier (also the sub-folder of its files).
    title : str
        Heading on the page.
    run : callable
        ``run(section_dir, settings) -> dict`` (see the module docstring).
    quick, full : mapping
        Settings of the quick and the full report, shown on the page; a kept
        result is reused only for the same settings.
    expected_seconds : (float, float)
        Wall time of the quick and the full section on 2 CPU cores, nothing cached
        (measured; shown on the page beside this run's time).
    """

    key: str
    title: str
    run: Callable[[Path, dict[str, Any]], dict[str, Any]]
    quick: Mapping[str, Any] = field(default_factory=dict)
    full: Mapping[str, Any] = field(default_factory=dict)
    expected_seconds: tuple[float, float] = (math.nan, math.nan)

    def settings(self, quick: bool) -> dict[str, Any]:
        """The settings of the quick or the full section.

        Parameters
        ----------
        quick : bool
            Quick (True) or full (False) report.

        Returns
        -------
        dict
            A copy of :attr:`quick` or :attr:`full`.
        """
        return dict(self.quick if quick else self.full)


def _number(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number or None, got {value!r}.")
    return float(value)


def _check_better(better: str) -> str:
    if better not in _BETTER:
        raise ValueError(f"better must be 'lower' or 'higher', got {better!r}.")
    return better


def headline(application: str, metric: str, ours: float, baseline: float | None, *, ours_label: str,
             baseline_label: str, better: str = "lower", unit: str = "", anchor: Mapping[str, str] | None = None,
             behind_reason: str = "") -> dict[str, Any]:
    """One row of the summary table.

    Parameters
    ----------
    application : str
        What is measured, e.g. ``"MNIST classification"``.
    metric : str
        The headline metric, e.g. ``"test error"``.
    ours, baseline : float
        This run's figure and its baseline's, measured in the same run (None: no baseline).
    ours_label, baseline_label : str
        What each figure is, e.g. ``"sparse cascade"``, ``"scattering + linear"``.
    better : {"lower", "higher"}
        Which way is better.
    unit : str
        Unit shown after the numbers.
    anchor : mapping, optional
        ``{"value", "source"}``: the published or anchor figure and where it comes from.
    behind_reason : str
        Shown only when ours is computed to be behind the baseline: why, at these sizes.

    Returns
    -------
    dict
        The headline, JSON-able.
    """
    return {"application": application, "metric": metric, "ours": _number(ours, "ours"),
            "baseline": _number(baseline, "baseline"), "ours_label": ours_label, "baseline_label": baseline_label,
            "better": _check_better(better), "unit": unit, "anchor": dict(anchor) if anchor else None,
            "behind_reason": behind_reason}


def row(metric: str, ours: Any, baseline: Any, truth: Any = None, *, error_ours: float | None = None,
        error_baseline: float | None = None, error: str = "", better: str = "lower") -> dict[str, Any]:
    """One metric of a comparison table.

    Parameters
    ----------
    metric : str
        Its name.
    ours, baseline, truth : float, list or None
        The values (a list is a curve, shown in the figures, not in the table).
    error_ours, error_baseline : float, optional
        Each model's error against the truth, which the verdict compares; without
        them the verdict compares ``ours`` and ``baseline`` themselves.
    error : str
        How the error is measured, e.g. ``"|s - t| / |t|"``.
    better : {"lower", "higher"}
        Which way is better for the compared numbers.

    Returns
    -------
    dict
        The row, JSON-able.
    """
    scored = error_ours is not None or error_baseline is not None
    return {"metric": metric, "truth": truth, "ours": ours, "baseline": baseline,
            "score_ours": _number(error_ours if scored else ours, "the compared value of ours"),
            "score_baseline": _number(error_baseline if scored else baseline, "the compared value of the baseline"),
            "scored_on": error if scored else "", "better": _check_better(better)}


def comparison(title: str, rows: list[dict[str, Any]], *, ours_label: str, baseline_label: str,
               truth_label: str | None = None) -> dict[str, Any]:
    """A table with the truth, ours and the baseline as columns, one row per metric.

    Parameters
    ----------
    title : str
        Caption.
    rows : list of dict
        Rows made by :func:`row`.
    ours_label, baseline_label : str
        Column headings.
    truth_label : str, optional
        Heading of the truth column (None: no truth column).

    Returns
    -------
    dict
        The table, JSON-able.
    """
    return {"title": title, "rows": list(rows), "ours_label": ours_label, "baseline_label": baseline_label,
            "truth_label": truth_label}
