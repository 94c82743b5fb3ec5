"""Verdicts are computed from the numbers: outcome, headline sentence, section sentences."""

import math

import pytest

from wavephase.report.section import comparison, headline, row
from wavephase.report.verdict import format_number, headline_verdict, outcome, section_verdict, tally


@pytest.mark.parametrize(("ours", "baseline", "better", "expected"), [
    (0.1, 0.2, "lower", "beats"), (0.3, 0.2, "lower", "behind"), (0.2, 0.2, "lower", "ties"),
    (98.4, 98.3, "higher", "beats"), (98.2, 98.3, "higher", "behind"),
    (0.1, None, "lower", "no baseline"), (None, 0.1, "lower", "no baseline"), (math.nan, 0.1, "lower", "no baseline"),
])
def test_outcome(ours, baseline, better, expected):
    assert outcome(ours, baseline, better) == expected


def test_headline_verdict_states_the_outcome_and_both_numbers():
    h = headline("Ising", "energy error", 0.044, 0.54, ours_label="ours", baseline_label="the Gaussian model")
    assert headline_verdict(h) == "beats the Gaussian model on energy error (0.044 vs 0.54, lower is better)"
    behind = headline("Gen", "FSD", 35.3, 31.9, ours_label="ours", baseline_label="the VAE",
                      behind_reason="too few epochs")
    assert headline_verdict(behind).startswith("behind the VAE on FSD (35.3 vs 31.9")
    assert headline_verdict(behind).endswith("Why: too few epochs")
    # the reason is shown only when ours is behind
    ahead = headline("Gen", "FSD", 30.0, 31.9, ours_label="ours", baseline_label="the VAE", behind_reason="x")
    assert "Why" not in headline_verdict(ahead)
    alone = headline("QM9", "MAE", 2.1, None, ours_label="ours", baseline_label="dressed atoms", unit="kcal/mol")
    assert headline_verdict(alone) == "no baseline in this run (MAE: 2.1 kcal/mol)"


def test_section_verdict_counts_every_compared_metric():
    rows = [row("a", 1.0, 2.0), row("b", 3.0, 2.0), row("c", None, None, error_ours=0.1, error_baseline=0.1),
            row("d", [1, 2], [1, 3], error_ours=0.5, error_baseline=0.2), row("e", 1.0, None)]
    table = comparison("t", rows, ours_label="ours", baseline_label="the Gaussian model")
    groups = tally([table])
    assert groups == {"beats": ["a"], "behind": ["b", "d"], "ties": ["c"], "no baseline": ["e"]}
    result = {"headlines": [headline("X", "a", 1.0, 2.0, ours_label="o", baseline_label="the Gaussian model")],
              "comparisons": [table]}
    sentences = section_verdict(result)
    assert sentences[0].startswith("X: beats the Gaussian model on a")
    assert sentences[1] == "Beats the Gaussian model on 1 of 4 metrics compared; behind on b, d; ties on c."


def test_section_verdict_per_table_when_baselines_differ():
    t1 = comparison("vs VAE", [row("FSD", 30.0, 40.0)], ours_label="o", baseline_label="the VAE")
    t2 = comparison("vs Gaussian", [row("FSD", 30.0, 20.0)], ours_label="o", baseline_label="the Gaussian model")
    assert section_verdict({"comparisons": [t1, t2]}) == [
        "vs VAE: Beats the VAE on 1 of 1 metric compared.",
        "vs Gaussian: Beats the Gaussian model on 0 of 1 metric compared; behind on FSD."]


def test_errors_take_precedence_over_values_and_bad_input_is_named():
    r = row("flatness", 18.9, 3.2, 15.4, error_ours=0.23, error_baseline=0.79)
    assert (r["score_ours"], r["score_baseline"]) == (0.23, 0.79)
    with pytest.raises(ValueError, match="better must be 'lower' or 'higher'"):
        row("x", 1.0, 2.0, better="smaller")
    with pytest.raises(TypeError, match="ours must be a number or None"):
        headline("x", "m", "1", 2.0, ours_label="o", baseline_label="b")
    assert format_number(None) == "—" and format_number(0.000797712) == "0.0007977" and format_number(3) == "3"
