"""The command line speaks in one line: user mistakes exit with code 2, --debug shows the traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from wavephase.cli.main import build_parser, main


def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wavephase", *argv], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("argv", [
    ["scatter", "--size", "x", "--out", "o"],      # not an int
    ["scatter"],                                    # --out missing
    ["nonsense"],                                   # unknown sub-command
    ["scatter", "--size", "64", "--bogus", "--out", "o"],
])
def test_argument_mistakes_are_one_line_and_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "error:" in err and "--help" in err


def test_out_that_is_a_file_is_refused_before_work(tmp_path, capsys):
    target = tmp_path / "a-file"
    target.write_text("")
    assert main(["scatter", "--size", "32", "--J", "2", "--out", str(target)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "is an existing file" in err


def test_value_error_is_one_line_and_debug_shows_the_traceback(tmp_path):
    proc = _run("scatter", "--size", "64", "--J", "9", "--out", str(tmp_path / "o"))
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "too small for J=9" in proc.stderr
    proc = _run("scatter", "--size", "64", "--J", "9", "--out", str(tmp_path / "o"), "--debug")
    assert proc.returncode == 2 and "Traceback" in proc.stderr


def test_every_subcommand_takes_debug_and_out():
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    for name, sub in subparsers.choices.items():
        text = sub.format_help()
        assert "--debug" in text and "--out" in text, name
