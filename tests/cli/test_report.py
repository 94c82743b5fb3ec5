"""``wavephase report --include``: earlier runs become sections, passed through to build_report."""

from __future__ import annotations

from wavephase.cli.main import main
from wavephase.report import build as build_module


def test_include_is_passed_to_the_report(tmp_path, monkeypatch):
    seen = {}

    def fake_build_report(out, quick=True, only=None, include=None):
        seen.update(out=out, quick=quick, only=only, include=include)
        return tmp_path / "index.html"

    monkeypatch.setattr(build_module, "build_report", fake_build_report)
    monkeypatch.setattr("wavephase.report.build_report", fake_build_report)
    runs = [str(tmp_path / "runs" / "qm9"), str(tmp_path / "runs" / "mnist")]
    assert main(["report", "--full", "--only", "qm9", "--include", *runs, "--out", str(tmp_path / "r")]) == 0
    assert str(seen.pop("out")) == str(tmp_path / "r")
    assert seen == {"quick": False, "only": ["qm9"], "include": runs}


def test_an_include_that_does_not_exist_is_one_line(tmp_path, capsys):
    assert main(["report", "--only", "qm9", "--include", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert "nowhere" in err and "\n" not in err and "Traceback" not in err
