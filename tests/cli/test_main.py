"""The command line speaks in one line: user mistakes exit with code 2, --debug shows the traceback."""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


# --- Hunting raw tracebacks (issue 18): every sub-command, every kind of user mistake. ---

BASE = {  # the smallest valid command of each sub-command, without --out
    "scatter": ["scatter", "--size", "32", "--J", "2"],
    "synth": ["synth", "--field", "ising", "--size", "16"],
    "classify": ["classify"],
    "qm9": ["qm9", "--limit", "100"],
    "generate": ["generate", "--dataset", "polygons", "--quick"],
    "report": ["report"],
}
# What each sub-command would do first if a mistake slipped through its checks.
HEAVY = {
    "scatter": ["wavephase.experiments.scattering_demo.Scattering2D"],
    "synth": ["wavephase.experiments.synthesis.load_fields"],
    "classify": ["wavephase.experiments.classification.load_dataset"],
    "qm9": ["wavephase.experiments.qm9.load_qm9"],
    "generate": ["wavephase.experiments.generation.load_generation_images"],
    "report": ["wavephase.report.build_report"],
}
COUNTS = {"scatter": ["--size"], "synth": ["--size", "--samples", "--train-size", "--test-size"],
          "classify": ["--train-size", "--test-size"], "qm9": ["--train-size"],
          "generate": ["--train-size", "--test-size", "--samples"], "report": []}
WITH_SEED = ("scatter", "synth", "classify", "generate")
WITH_DEVICE = ("scatter", "synth", "classify", "qm9", "generate")
WITH_WORKERS = ("synth", "classify", "qm9", "generate")
USES_CACHE = ("synth", "classify", "qm9", "generate", "report")
CHOICES = {"synth": ["--statistics", "moments"], "classify": ["--model", "tree"], "qm9": ["--preset", "huge"],
           "generate": ["--dataset", "imagenet"], "scatter": ["--image", "mona-lisa"]}
NO_CUDA = "cuda" if not torch.cuda.is_available() else f"cuda:{torch.cuda.device_count()}"


# The sub-command on which each kind of mistake (besides an --out that is a file, run on every one) is
# also run in a subprocess: each kind once, the sub-commands in turn.
IN_A_SUBPROCESS = {"out-cannot-be-created": "scatter", "unknown-flag": "report", "negative": "synth",
                   "not-a-number": "classify", "device-without-cuda": "generate", "cache-is-a-file": "qm9"}


def _in_a_subprocess(kind: str, cmd: str) -> bool:
    return IN_A_SUBPROCESS[kind] == cmd


def _mistakes() -> list[tuple[str, str, list[str], dict[str, str], bool]]:
    """(case id, sub-command, arguments with OUT / FILE placeholders, environment, also run as a user would)
    of every mistake. Every sub-command, and every kind of mistake, is also run in a subprocess, once each
    (:data:`IN_A_SUBPROCESS`): a process costs seconds (torch is imported), the in-process table covers every
    flag of every sub-command, and what a subprocess adds (the exit status, stderr) is the same ``main``."""
    cases = []
    for cmd, base in BASE.items():
        def add(kind, extra, env=None, out="OUT", user=False):
            cases.append((f"{cmd}-{kind}", cmd, [*base, *extra, *(["--out", out] if out else [])], env or {}, user))

        add("out-is-a-file", [], out="FILE", user=True)  # every sub-command
        add("out-under-a-file", [], out="FILE/sub")
        if Path("/sys").is_dir():  # even root cannot create a folder there
            add("out-cannot-be-created", [], out="/sys/wavephase-out",
                user=_in_a_subprocess("out-cannot-be-created", cmd))
        add("out-missing", [], out=None)
        add("unknown-flag", ["--bogus"], user=_in_a_subprocess("unknown-flag", cmd))
        for i, flag in enumerate(COUNTS[cmd]):
            add(f"negative{flag}", [flag, "-3"], user=i == 0 and _in_a_subprocess("negative", cmd))
            add(f"not-a-number{flag}", [flag, "1.5"], user=i == 0 and _in_a_subprocess("not-a-number", cmd))
        if cmd in WITH_SEED:
            add("negative-seed", ["--seed", "-1"])
            add("seed-not-a-number", ["--seed", "one"])
        if cmd in WITH_DEVICE:
            add("device-without-cuda", ["--device", NO_CUDA],
                user=_in_a_subprocess("device-without-cuda", cmd))
            add("device-unknown", ["--device", "tpu"])
        if cmd in WITH_WORKERS:
            add("zero-workers", ["--workers", "0"])
        if cmd in USES_CACHE:
            add("cache-is-a-file", [], env={"WAVEPHASE_CACHE": "FILE"},
                user=_in_a_subprocess("cache-is-a-file", cmd))
        if cmd in CHOICES:
            add("unknown-choice", CHOICES[cmd])
    qm9 = [*BASE["qm9"], "--out", "OUT"]
    cases.append(("qm9-workers-without-dask", "qm9", [*qm9, "--workers", "2"], {"HIDE": "dask"}, True))
    cases.append(("qm9-scheduler-without-dask", "qm9", [*qm9, "--scheduler", "tcp://127.0.0.1:1"], {"HIDE": "dask"},
                  True))
    cases.append(("synth-no-field", "synth", ["synth", "--out", "OUT"], {}, True))
    return cases


MISTAKES = _mistakes()
HIDDEN = ("dask", "distributed")


def _fill(items, tmp: Path):
    # Placeholders: OUT a fresh folder, FILE an existing file.
    (tmp / "file").write_text("")
    swap = {"OUT": str(tmp / "out"), "FILE": str(tmp / "file"), "FILE/sub": str(tmp / "file" / "sub")}
    return [swap.get(a, a) for a in items]


def _one_line_exit_2(code, err: str) -> None:
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.endswith("\n"), err
    assert "Traceback" not in err and "error:" in err, err


@pytest.fixture
def heavy_work_fails(monkeypatch):
    """Every sub-command's first heavy step raises: a mistake must be caught before it."""
    def fail(*args, **kwargs):
        raise AssertionError("heavy work started before the arguments were checked")

    for targets in HEAVY.values():
        for target in targets:
            monkeypatch.setattr(target, fail)


def _in_process(argv: list[str]) -> tuple[object, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
    return code, err.getvalue()


@pytest.mark.parametrize("cmd, argv, env", [case[1:4] for case in MISTAKES], ids=[case[0] for case in MISTAKES])
def test_every_mistake_is_one_line_exit_2_before_any_heavy_work(cmd, argv, env, tmp_path, monkeypatch,
                                                                heavy_work_fails):
    for name, value in env.items():
        if name == "HIDE":
            for module in HIDDEN:
                monkeypatch.setitem(sys.modules, module, None)
        else:
            monkeypatch.setenv(name, _fill([value], tmp_path)[0])
    code, err = _in_process(_fill(argv, tmp_path))
    _one_line_exit_2(code, err)
    if "HIDE" in env:
        assert "pip install 'wavephase[distributed]'" in err or "wavephase[distributed]" in err
    if "WAVEPHASE_CACHE" in env:
        assert "WAVEPHASE_CACHE" in err


@pytest.fixture(scope="module")
def as_a_user_sees_it(tmp_path_factory):
    """The mistakes of the table marked so, run as ``python -m wavephase ...``, four at a time."""
    root = tmp_path_factory.mktemp("mistakes")
    hide = root / "hide-dask"
    hide.mkdir()
    # Imported at start-up: the process behaves as if Dask were not installed.
    (hide / "sitecustomize.py").write_text(f"import sys\nsys.modules.update(dict.fromkeys({HIDDEN!r}))\n")

    def run(case):
        name, _, argv, env, _ = case
        tmp = root / name
        tmp.mkdir()
        environ = {**os.environ, **{k: _fill([v], tmp)[0] for k, v in env.items() if k != "HIDE"}}
        if "HIDE" in env:
            environ["PYTHONPATH"] = os.pathsep.join([str(hide), environ.get("PYTHONPATH", "")])
        return name, subprocess.run([sys.executable, "-m", "wavephase", *_fill(argv, tmp)], capture_output=True,
                                    text=True, timeout=300, env=environ)

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        return dict(pool.map(run, [case for case in MISTAKES if case[4]]))


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("case", [case[0] for case in MISTAKES if case[4]])
def test_every_mistake_is_one_line_exit_2_in_a_subprocess(as_a_user_sees_it, case):
    proc = as_a_user_sees_it[case]
    _one_line_exit_2(proc.returncode, proc.stderr)


def test_every_sub_command_and_every_kind_of_mistake_runs_in_a_subprocess():
    user = [(cmd, name) for name, cmd, _, _, in_a_subprocess in MISTAKES if in_a_subprocess]
    assert {cmd for cmd, _ in user} == set(BASE)
    for kind, cmd in IN_A_SUBPROCESS.items():
        assert [name for c, name in user if name.startswith(f"{cmd}-{kind}")], (kind, cmd)


INT_FLAGS = {cmd: sorted({s for a in sub._actions if a.type is int for s in a.option_strings
                          if s.startswith("--") and a.help != argparse.SUPPRESS})
             for cmd, sub in next(a for a in build_parser()._actions
                                  if isinstance(a, argparse._SubParsersAction)).choices.items()}


def _not_an_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return True
    return False


@pytest.mark.parametrize("cmd", [cmd for cmd in BASE if INT_FLAGS[cmd]])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_bad_numbers_are_one_line_exit_2_before_any_heavy_work(cmd, data, tmp_path, heavy_work_fails):
    flag = data.draw(st.sampled_from(INT_FLAGS[cmd]), label="flag")
    value = data.draw(st.one_of(st.integers(max_value=-1).map(str),
                                st.text(st.characters(blacklist_categories=("Cs",)), max_size=12).filter(_not_an_int),
                                st.floats(allow_nan=True, allow_infinity=True).map(repr)), label="value")
    code, err = _in_process([*BASE[cmd], flag, value, "--out", str(tmp_path / "out")])
    _one_line_exit_2(code, err)


def test_help_lists_every_subcommand_on_one_line_and_every_default(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for cmd in BASE:
        assert len([line for line in text.splitlines() if line.strip().startswith(cmd + " ")]) == 1, cmd
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        help_text = " ".join(capsys.readouterr().out.split())
        sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices[cmd]
        for action in sub._actions:
            if action.help == argparse.SUPPRESS or action.default == argparse.SUPPRESS or action.dest == "help":
                continue
            if action.default is not None:  # shown by the formatter, after the option's help
                assert f"(default: {action.default})" in help_text, (cmd, action.dest)
            else:  # "not given": the help says in words what happens then
                assert "default" in action.help or "required" in action.help or action.required, (cmd, action.dest)
