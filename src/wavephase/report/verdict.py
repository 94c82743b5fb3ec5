"""Verdicts computed from a section's numbers: never written by hand.

Every comparison is one of ``"beats"``, ``"behind"``, ``"ties"`` (ours against the
baseline, in the direction that is better) or ``"no baseline"``; the sentences on
the page are built from these outcomes and from the numbers they compare, so a
verdict cannot disagree with its table.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["OUTCOMES", "format_number", "headline_verdict", "outcome", "section_verdict", "summary_groups", "tally"]

OUTCOMES = ("beats", "behind", "ties", "no baseline")


def format_number(value: Any) -> str:
    """Four significant digits for floats (the precision of every table); other values as text.

    Parameters
    ----------
    value : object
        A number, None or anything printable.

    Returns
    -------
    str
        ``"—"`` for None.
    """
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def outcome(ours: float | None, baseline: float | None, better: str) -> str:
    """Whether ours beats the baseline.

    Parameters
    ----------
    ours, baseline : float or None
        The compared numbers.
    better : {"lower", "higher"}
        Which way is better.

    Returns
    -------
    str
        ``"beats"``, ``"behind"``, ``"ties"``, or ``"no baseline"`` when either number
        is missing or not finite.
    """
    if ours is None or baseline is None or not (math.isfinite(ours) and math.isfinite(baseline)):
        return "no baseline"
    if ours == baseline:
        return "ties"
    return "beats" if (ours < baseline) == (better == "lower") else "behind"


def tally(comparisons: list[dict[str, Any]]) -> dict[str, list[str]]:
    """The metrics of a section's comparison tables, grouped by outcome.

    Parameters
    ----------
    comparisons : list of dict
        Tables made by :func:`wavephase.report.section.comparison`.

    Returns
    -------
    dict
        ``{outcome: [metric, ...]}`` for every outcome of :data:`OUTCOMES`.
    """
    groups: dict[str, list[str]] = {o: [] for o in OUTCOMES}
    for table in comparisons:
        for r in table["rows"]:
            groups[outcome(r["score_ours"], r["score_baseline"], r["better"])].append(r["metric"])
    return groups


def headline_verdict(h: dict[str, Any], groups: dict[str, list[str]] | None = None, numbers: bool = True) -> str:
    """One sentence: does ours beat its baseline on the headline metric.

    Parameters
    ----------
    h : dict
        A headline made by :func:`wavephase.report.section.headline`.
    groups : dict, optional
        The section's metrics by outcome against the same baseline (:func:`tally`),
        to add how many of them ours beats.
    numbers : bool
        Quote both numbers (the summary table shows them in their own columns).

    Returns
    -------
    str
        Starts with the outcome, e.g. ``"beats the Gaussian model on flatness error (0.24 vs 0.79, lower is
        better)"``.
    """
    result = outcome(h["ours"], h["baseline"], h["better"])
    unit = f" {h['unit']}" if h["unit"] else ""
    if result == "no baseline":
        return f"no baseline in this run ({h['metric']}: {format_number(h['ours'])}{unit})"
    text = f"{result} {h['baseline_label']} on {h['metric']}"
    if numbers:
        text += f" ({format_number(h['ours'])}{unit} vs {format_number(h['baseline'])}{unit}, {h['better']} is better)"
    compared = 0 if groups is None else len(groups["beats"]) + len(groups["behind"]) + len(groups["ties"])
    if compared > 1:
        text += f"; beats it on {len(groups['beats'])} of {compared} metrics"  # type: ignore[index]
    if result == "behind" and h.get("behind_reason"):
        text += f". Why: {h['behind_reason']}"
    return text


def summary_groups(result: dict[str, Any]) -> dict[str, list[str]] | None:
    """The metrics behind a section's single headline, by outcome (None when it has several headlines).

    Parameters
    ----------
    result : dict
        A section's result.

    Returns
    -------
    dict or None
        :func:`tally` of the comparison tables against the headline's baseline.
    """
    heads = result.get("headlines", [])
    if len(heads) != 1:
        return None
    return tally([t for t in result.get("comparisons", []) if t["baseline_label"] == heads[0]["baseline_label"]])


def _metric_sentence(groups: dict[str, list[str]], baseline_label: str) -> str:
    compared = len(groups["beats"]) + len(groups["behind"]) + len(groups["ties"])
    if not compared:
        return ""
    text = (f"Beats {baseline_label} on {len(groups['beats'])} of {compared} metric{'s' if compared > 1 else ''} "
            "compared")
    for word in ("behind", "ties"):
        if groups[word]:
            text += f"; {word} on {', '.join(groups[word])}"
    return text + "."


def section_verdict(result: dict[str, Any]) -> list[str]:
    """The verdict of a section: one sentence per headline, then the count over its comparison tables.

    Parameters
    ----------
    result : dict
        A section's result (``headlines``, ``comparisons``).

    Returns
    -------
    list of str
        Sentences, in the order of the page.
    """
    sentences = [f"{h['application']}: {headline_verdict(h)}." for h in result.get("headlines", [])]
    comparisons = result.get("comparisons", [])
    if comparisons:
        label = comparisons[0]["baseline_label"]
        if all(t["baseline_label"] == label for t in comparisons):
            sentence = _metric_sentence(tally(comparisons), label)
            if sentence:
                sentences.append(sentence)
        else:
            for t in comparisons:
                sentence = _metric_sentence(tally([t]), t["baseline_label"])
                if sentence:
                    sentences.append(f"{t['title']}: {sentence}")
    return sentences
