"""Every result says where it was made: run_info's commit marks a checkout with edited files."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from wavephase.experiments import outputs
from wavephase.experiments.outputs import _commit, prepare_output_dir, run_info

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def _git(repo, *args):
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def test_commit_is_marked_modified_while_tracked_files_differ(tmp_path):
    assert _commit(tmp_path) is None  # not a checkout
    _git(tmp_path, "init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    _git(tmp_path, "add", "a.py")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "a")
    head = _commit(tmp_path)
    assert head and "+" not in head and len(head) >= 7
    (tmp_path / "notes.txt").write_text("untracked files do not change a result\n")
    assert _commit(tmp_path) == head
    (tmp_path / "a.py").write_text("x = 2\n")
    assert _commit(tmp_path) == f"{head}+modified"


def test_run_info_names_command_machine_and_versions():
    info = run_info()
    assert {"command", "commit", "date", "machine", "python", "torch"} <= set(info)
    assert info["machine"]["cpu_count"] >= 1 and info["date"].endswith("+00:00")


def test_run_info_keeps_the_commit_its_run_started_with(tmp_path, monkeypatch):
    commits = iter(["aaaaaaa", "bbbbbbb"])
    monkeypatch.setattr(outputs, "_commit", lambda: next(commits))
    monkeypatch.setattr(outputs, "_commit_at_start", [])
    prepare_output_dir(tmp_path / "run")  # the run starts: its commit is read here
    # A commit made while the run works does not become the run's commit.
    assert run_info()["commit"] == "aaaaaaa" and run_info()["commit"] == "aaaaaaa"


def test_run_info_names_the_command_wavephase_when_run_as_a_module(monkeypatch):
    monkeypatch.setattr("sys.argv", ["/site-packages/wavephase/__main__.py", "generate", "--dataset", "mnist"])
    assert run_info()["command"] == "wavephase generate --dataset mnist"
