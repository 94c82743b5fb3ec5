"""A command killed by SIGKILL in the middle of its work and started again ends with the metrics of a run
that was never killed.

Each command runs in a subprocess that sends itself SIGKILL right after one of its checkpoints is
written (a kill at the worst moment for a half-written file is the atomic write's business,
tested in tests/test_distributed.py); the same command is then run again in this process, and its
metrics.json compared with an uninterrupted run's (timings and how the run went aside, see
tests/test_reproducibility.py). ``classify`` and ``qm9`` are here; ``synth`` and ``generate`` are
killed the same way in tests/cli/test_synth.py and tests/cli/test_generate.py.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from wavephase.cli.main import main
from wavephase.data.idx import to_idx_bytes

pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.slow]

ROOT = Path(__file__).parents[1]
_spec = importlib.util.spec_from_file_location("reproducibility", ROOT / "tests" / "test_reproducibility.py")
reproducibility = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(reproducibility)


def _killed(script: str, tmp_path: Path, save_when: str, out: Path) -> None:
    """Run ``script`` (which runs a command into ``out``) in a subprocess that SIGKILLs itself after the
    checkpoint save for which ``save_when`` (an expression of the Checkpoint ``self`` and the saved
    ``state``, a dict or an array) is true."""
    prelude = textwrap.dedent(f"""
        import os, signal, sys
        from wavephase.runs import Checkpoint
        def killing(real):
            def save(self, state):
                real(self, state)
                if {save_when}:
                    os.kill(os.getpid(), signal.SIGKILL)
            return save
        Checkpoint.save, Checkpoint.save_array = killing(Checkpoint.save), killing(Checkpoint.save_array)
    """)
    # one thread, as in this process: both runs do the same float arithmetic
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(script)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, f"the run was not killed (exit {proc.returncode}): {proc.stderr[-2000:]}"
    assert not (out / "metrics.json").exists()


def _metrics(out: Path) -> dict:
    return reproducibility.comparable(json.loads((out / "metrics.json").read_text()))


@pytest.fixture(scope="module")
def idx(tmp_path_factory) -> Path:
    """Gzipped IDX files of 28 x 28 digits-sized images: a bright row (class 0) or column (class 1) on noise."""
    rng = np.random.default_rng(4)
    n = 200
    y = np.arange(n) % 2
    img = rng.integers(0, 80, (n, 28, 28))
    where = rng.integers(4, 24, n)
    img[y == 0, where[y == 0], 4:24] = 255
    img[y == 1, 4:24, where[y == 1]] = 255
    root = tmp_path_factory.mktemp("idx")
    for name, arr in {"train-images-idx3-ubyte": img[:160], "train-labels-idx1-ubyte": y[:160],
                      "t10k-images-idx3-ubyte": img[160:], "t10k-labels-idx1-ubyte": y[160:]}.items():
        (root / f"{name}.gz").write_bytes(gzip.compress(to_idx_bytes(arr.astype(np.uint8))))
    return root


def test_classify(idx, tmp_path):
    argv = ["classify", "--dataset", "mnist", "--model", "sparse-scattering", "--data-dir", str(idx), "--J", "2",
            "--L", "4", "--epochs", "3", "--n-proj", "4", "--n-atoms", "8", "--no-cache", "--no-progress",
            "--seed", "1"]
    killed = tmp_path / "killed"
    _killed(f"""
        from wavephase.cli.main import main
        main({[*argv, "--out", str(killed)]!r})
    """, tmp_path, 'self.what == "sparse-cascade checkpoint" and state["epoch"] == 1', killed)
    assert main([*argv, "--out", str(killed)]) == 0
    whole = tmp_path / "whole"
    assert main([*argv, "--out", str(whole)]) == 0
    resumed = _metrics(killed)
    assert [h["epoch"] for h in resumed["history"]] == [1, 2, 3]
    assert resumed == _metrics(whole)


def test_qm9(tmp_path, monkeypatch):
    argv = [*reproducibility.QM9_ARGS]
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    monkeypatch.setenv("WAVEPHASE_CACHE", str(tmp_path / "cache-killed"))
    _killed(f"""
        import importlib.util
        spec = importlib.util.spec_from_file_location("reproducibility", {str(ROOT / "tests" / "test_reproducibility.py")!r})
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.install_fake_qm9()
        from wavephase.cli.main import main
        main({[*argv, "--out", str(killed)]!r})
    """, tmp_path, 'self.what.startswith("feature chunk 3 ")', killed)
    reproducibility.install_fake_qm9(monkeypatch)
    assert main([*argv, "--out", str(killed)]) == 0
    computed = json.loads((killed / "metrics.json").read_text())["feature_chunks_computed_this_run"]
    monkeypatch.setenv("WAVEPHASE_CACHE", str(tmp_path / "cache-whole"))
    assert main([*argv, "--out", str(whole)]) == 0
    total = json.loads((whole / "metrics.json").read_text())["feature_chunks_computed_this_run"]
    assert 0 < computed < total  # the resumed run went on from the chunks written before the kill
    resumed, straight = _metrics(killed), _metrics(whole)
    assert resumed.pop("feature_store") != straight.pop("feature_store")  # each run has its own cache
    assert resumed == straight
