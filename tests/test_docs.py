import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


@pytest.mark.slow
def test_api_reference_builds_without_warnings(tmp_path):
    if shutil.which("sphinx-build", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("sphinx is not installed (pip install -e '.[docs]')")
    proc = subprocess.run([sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", str(ROOT / "docs"),
                           str(tmp_path / "html")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    page = (tmp_path / "html" / "api.html").read_text()
    assert "Scattering2D" in page and "morlet_bank" in page


def test_every_test_the_reliability_page_names_exists():
    page = (ROOT / "docs" / "reliability.rst").read_text()
    named = re.findall(r"``(tests/[\w/]+\.py)::(\w+)``", page)
    assert len(named) > 30
    missing = [f"{path}::{name}" for path, name in named
               if not re.search(rf"^def {name}\(", (ROOT / path).read_text(), re.MULTILINE)]
    assert not missing, f"docs/reliability.rst names tests that do not exist: {missing}"
