"""Every command run twice with the same seed gives the same metrics.json, with its caches cold or warm.

Timings (keys naming ``seconds``) and the ``run`` block (date, machine, commit) differ between runs
by nature; so do the keys that say how a run went rather than what it found: ``resumed`` (the
synthesis went on from a finished checkpoint) and ``feature_chunks_computed_this_run`` (QM9
features read from the store). Everything else must be equal, bit for bit.

``generate`` and ``classify`` are covered next to their commands: tests/cli/test_generate.py (a
fresh folder and a folder of finished checkpoints) and tests/experiments/test_classification.py
(cold, warm and no feature cache, and a rerun into the same folder).
"""

from __future__ import annotations

import functools
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import wavephase.experiments.qm9 as qm9_experiment
import wavephase.experiments.synthesis as synthesis_experiment
from wavephase.cli.main import main
from wavephase.data import qm9 as qm9_data
from wavephase.physics import turbulence2d

pytestmark = pytest.mark.usefixtures("one_torch_thread")

HOW_IT_WENT = {"run", "resumed", "feature_chunks_computed_this_run"}


def comparable(metrics: Any) -> Any:
    """``metrics`` without timings, the run block and the keys that say how a run went."""
    if isinstance(metrics, dict):
        return {k: comparable(v) for k, v in metrics.items() if "seconds" not in k and k not in HOW_IT_WENT}
    if isinstance(metrics, list):
        return [comparable(v) for v in metrics]
    return metrics


def _run(argv: list[str], out: Path) -> dict[str, Any]:
    assert main([*argv, "--out", str(out)]) == 0
    return comparable(json.loads((out / "metrics.json").read_text()))


def _cold_warm_rerun(argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache_part: str) -> None:
    """The same command cold (empty cache, new folder), warm (filled cache, new folder), into its own folder
    again (finished checkpoints), and cold again: four equal metrics.json."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("WAVEPHASE_CACHE", str(cache))
    cold = _run(argv, tmp_path / "cold")
    warm = _run(argv, tmp_path / "warm")
    again = _run(argv, tmp_path / "cold")
    shutil.rmtree(cache / cache_part, ignore_errors=True)
    cold_again = _run(argv, tmp_path / "cold-again")
    assert cold == warm == again == cold_again


def test_scatter(tmp_path, monkeypatch):
    _cold_warm_rerun(["scatter", "--size", "32", "--J", "2", "--L", "4", "--seed", "3"], tmp_path, monkeypatch,
                     "images")


def test_synth_ising(tmp_path, monkeypatch):
    _cold_warm_rerun(["synth", "--field", "ising", "--size", "16", "--samples", "2", "--train-size", "2",
                      "--test-size", "2", "--steps", "4", "--seed", "2", "--no-progress"], tmp_path, monkeypatch,
                     "physics")


@pytest.mark.slow
def test_synth_turbulence_with_its_simulation_cache(tmp_path, monkeypatch):
    # a short spin-up: the simulations are cached, which is what a warm run reuses
    monkeypatch.setattr(synthesis_experiment, "turbulence2d",
                        functools.partial(turbulence2d, spinup_time=0.5, sample_interval=0.1, max_dt=0.02))
    _cold_warm_rerun(["synth", "--field", "turbulence", "--size", "32", "--samples", "1", "--train-size", "2",
                      "--test-size", "2", "--steps", "3", "--seed", "1", "--no-progress"], tmp_path, monkeypatch,
                     "physics")
    assert list((tmp_path / "cache" / "physics").glob("turbulence2d-*.npy"))  # the simulations were cached


class PairInvariants(nn.Module):
    """Charge moments and smooth pair sums of molecules: a cheap invariant transform."""

    def forward(self, positions: torch.Tensor, charges: torch.Tensor) -> torch.Tensor:
        z = charges.to(positions.dtype)
        r2 = (positions[..., :, None, :] - positions[..., None, :, :]).pow(2).sum(-1)
        zz = (z[..., :, None] * z[..., None, :]) * (1.0 - torch.eye(z.shape[-1], dtype=z.dtype))
        return torch.stack([z.sum(-1), z.pow(2).sum(-1), (zz * torch.exp(-r2)).sum((-1, -2))], dim=-1)


def fake_qm9() -> dict[str, np.ndarray]:
    """A seeded stand-in of QM9 with its real size and split (the same in every process)."""
    n = qm9_data.QM9_N_MOLECULES
    rng = np.random.default_rng(0)
    pos = np.zeros((n, qm9_data.QM9_MAX_ATOMS, 3), np.float32)
    pos[:, :4] = rng.normal(size=(n, 4, 3))
    ch = np.zeros((n, qm9_data.QM9_MAX_ATOMS), np.uint8)
    ch[:, :4] = rng.choice([1, 6, 8], size=(n, 4))
    energy = -100.0 * (ch > 0).sum(1) - 3.0 * ch.sum(1) + rng.normal(size=n)
    return {"positions": pos, "charges": ch, "energy_kcal_mol": energy, "index": np.arange(1, n + 1),
            "split": qm9_data.qm9_split(n)}


def install_fake_qm9(monkeypatch: Any = None) -> None:
    """Make ``wavephase qm9`` use :func:`fake_qm9` and :class:`PairInvariants` (also from a subprocess)."""
    data = fake_qm9()
    set_attribute = monkeypatch.setattr if monkeypatch is not None else setattr
    set_attribute(qm9_experiment, "load_qm9", lambda **kw: data)
    set_attribute(qm9_experiment, "qm9_invariants", lambda *args, **kw: PairInvariants())


QM9_ARGS = ["qm9", "--limit", "300", "--scheduler", "serial", "--chunk-size", "40", "--no-progress"]


def test_qm9_serial(tmp_path, monkeypatch):
    for name in ("dask", "distributed", "zarr"):  # a plain install
        monkeypatch.setitem(sys.modules, name, None)
    install_fake_qm9(monkeypatch)
    _cold_warm_rerun(QM9_ARGS, tmp_path, monkeypatch, "qm9")
