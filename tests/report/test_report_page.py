"""The report page: sections, numbers and figures, rendered in headless Chromium."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from wavephase.report import Section, build_report

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--virtual-time-budget=5000"]


def _broken(out, quick):
    raise RuntimeError("this section fails on purpose")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from wavephase.report.sections import SECTIONS

    out = tmp_path_factory.mktemp("report")
    scattering = [s for s in SECTIONS if s.key == "scattering"]
    page = build_report(out, quick=True, sections=scattering + [Section("broken", "A broken section", _broken)])
    return page


def test_page_has_sections_numbers_and_figures(report):
    html = report.read_text()
    assert "<section id='scattering' data-status='ok'>" in html
    scattering = html.split("<section id='scattering'")[1].split("</section>")[0]
    numbers = re.findall(r"<td>([-+0-9.e]+)</td>", scattering)
    assert len(numbers) >= 10
    for src in re.findall(r"<img src='([^']+)'", html):
        assert (report.parent / src).is_file() and (report.parent / src).stat().st_size > 1000


def test_failing_section_is_reported_and_others_kept(report):
    html = report.read_text()
    assert "<section id='broken' data-status='failed'>" in html
    assert "this section fails on purpose" in html
    assert "data-status='ok'" in html


@pytest.mark.slow
def test_page_renders_in_headless_chromium(report, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Chromium is not installed (apt-get install chromium); .ci/run installs it")
    proc = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                           report.resolve().as_uri()], capture_output=True, text=True, timeout=120)
    dom = proc.stdout
    assert "data-images-loaded=\"all\"" in dom, proc.stderr[-2000:]
    count = int(re.search(r'data-image-count="(\d+)"', dom).group(1))
    assert count == len(re.findall(r"<img ", report.read_text())) >= 3


@pytest.mark.slow
@pytest.mark.realdata
def test_whole_quick_report_renders_with_every_section_and_figure(tmp_path):
    # The page `make demo` writes: every application on real data (MNIST and QM9
    # are fetched from PyPI, Fashion-MNIST from Debian's package) in a few minutes.
    from wavephase.report.sections import SECTIONS

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Chromium is not installed (apt-get install chromium); .ci/run installs it")
    page = build_report(tmp_path / "report", quick=True)
    html = page.read_text()
    for section in SECTIONS:
        assert f"<section id='{section.key}' data-status='ok'>" in html, section.key
        body = html.split(f"<section id='{section.key}'")[1].split("</section>")[0]
        assert len(re.findall(r"<td>[-+0-9.e]+</td>", body)) >= 3, section.key
        assert body.count("<img ") >= 1, section.key
    proc = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                           page.resolve().as_uri()], capture_output=True, text=True, timeout=120)
    assert "data-images-loaded=\"all\"" in proc.stdout, proc.stderr[-2000:]
    count = int(re.search(r'data-image-count="(\d+)"', proc.stdout).group(1))
    assert count == len(re.findall(r"<img ", html))
