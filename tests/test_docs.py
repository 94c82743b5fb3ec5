"""The documentation builds without warnings, and the code of the user guide runs."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
GUIDE = sorted((ROOT / "docs" / "guide").glob("*.rst"))


def python_blocks(page: Path) -> list[str]:
    """The ``.. code-block:: python`` blocks of a reStructuredText page, dedented."""
    blocks = []
    for match in re.finditer(r"^\.\. code-block:: python\n\n((?:(?:   .*)?\n)+)", page.read_text(), re.M):
        blocks.append(textwrap.dedent(match.group(1)))
    return blocks


@pytest.mark.slow
def test_documentation_builds_without_warnings(tmp_path):
    if shutil.which("sphinx-build", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("sphinx is not installed (pip install -e '.[docs]')")
    proc = subprocess.run([sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", str(ROOT / "docs"),
                           str(tmp_path / "html")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    page = (tmp_path / "html" / "api.html").read_text()
    assert "Scattering2D" in page and "morlet_bank" in page
    for name in ("guide/scattering", "conventions", "design", "results"):
        assert (tmp_path / "html" / f"{name}.html").is_file(), name


@pytest.mark.slow
@pytest.mark.parametrize("page", GUIDE, ids=lambda p: p.stem)
def test_user_guide_code_runs(page, tmp_path):
    code = "\n".join(python_blocks(page))
    if not code:
        pytest.skip(f"{page.name} has no Python code")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_every_test_the_reliability_page_names_exists():
    page = (ROOT / "docs" / "reliability.rst").read_text()
    named = re.findall(r"``(tests/[\w/]+\.py)::(\w+)``", page)
    assert len(named) > 30
    missing = [f"{path}::{name}" for path, name in named
               if not re.search(rf"^def {name}\(", (ROOT / path).read_text(), re.MULTILINE)]
    assert not missing, f"docs/reliability.rst names tests that do not exist: {missing}"


# A measured figure: a decimal number with a unit of measurement, or a percentage.
_FIGURE = re.compile(r"(?<![\w.])\d[\d,]*\.\d+\s*(?:%|kcal/mol|dB|ms\b|s\b|x\b|×|GB\b|MB\b|bits\b|nats\b)"
                     r"|(?<![\w.])\d+(?:\.\d+)?\s*%")


def _prose(text: str) -> str:
    """``text`` without its literal blocks and directive options, whose numbers are arguments, not
    measurements, and without the README's generated results table."""
    text = re.sub(r"::.*\n\n(?:(?:[ \t]+.*)?\n)+", "::\n\n", text)
    text = re.sub(r"^[ \t]+:\w+:.*$", "", text, flags=re.M)  # directive options (":width: 50%")
    return re.sub(r"<!-- results:begin -->.*?<!-- results:end -->", "", text, flags=re.S)  # README's generated table


def test_docs_quote_no_figure_by_hand():
    """Measured figures live in docs/results.rst and the README's table, generated from the records:
    any other page that quotes one would drift from the measurements."""
    pages = [p for p in (ROOT / "docs").rglob("*.rst") if p.name != "results.rst"] + [ROOT / "README.md"]
    found = {f"{p.relative_to(ROOT)}: {m.group(0)!r}" for p in pages for m in _FIGURE.finditer(_prose(p.read_text()))}
    assert not found, f"figures quoted by hand (point to the results page instead): {sorted(found)}"
    assert _FIGURE.search("test MAE 0.842 kcal/mol") and _FIGURE.search("83 % of samples")
