"""run_qm9 and ``wavephase qm9`` on a synthetic stand-in of QM9: metrics, cached features, checks before work."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from torch import nn

from wavephase.data import qm9 as qm9_mod
from wavephase.exceptions import MissingDependencyError
from wavephase.experiments import qm9 as experiment
from wavephase.experiments.qm9 import force_check, run_qm9, split_rows
from wavephase.models.molecule_features import qm9_invariants
from wavephase.models.molecules import MoleculeEnergyRegressor
from wavephase.testing import random_molecule

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class PairInvariants(nn.Module):
    """Smooth pair sums and charge moments of molecules (a cheap invariant transform)."""

    def forward(self, positions: torch.Tensor, charges: torch.Tensor) -> torch.Tensor:
        z = charges.to(positions.dtype)
        r2 = (positions[..., :, None, :] - positions[..., None, :, :]).pow(2).sum(-1)
        zz = (z[..., :, None] * z[..., None, :]) * (1.0 - torch.eye(z.shape[-1], dtype=z.dtype))
        return torch.stack([z.sum(-1), z.pow(2).sum(-1), (zz * torch.exp(-r2)).sum((-1, -2)),
                            (zz / torch.sqrt(r2 + 1.0)).sum((-1, -2))], dim=-1)


@pytest.fixture()
def fake_qm9(tmp_path, monkeypatch):
    n = qm9_mod.QM9_N_MOLECULES
    rng = np.random.default_rng(0)
    pos = np.zeros((n, qm9_mod.QM9_MAX_ATOMS, 3), np.float32)
    pos[:, :5] = rng.normal(scale=1.0, size=(n, 5, 3))
    ch = np.zeros((n, qm9_mod.QM9_MAX_ATOMS), np.uint8)
    ch[:, :5] = rng.choice([1, 6, 8], size=(n, 5))
    energy = -100.0 * (ch > 0).sum(1) - 3.0 * ch.sum(1) + rng.normal(scale=1.0, size=n)
    data = {"positions": pos, "charges": ch, "energy_kcal_mol": energy,
            "index": np.arange(1, n + 1), "split": qm9_mod.qm9_split(n)}
    calls = []
    monkeypatch.setattr(experiment, "load_qm9", lambda **kw: calls.append(kw) or data)
    monkeypatch.setenv("WAVEPHASE_CACHE", str(tmp_path / "cache"))
    return calls


def test_run_qm9_writes_metrics_and_reuses_features(fake_qm9, tmp_path):
    m = run_qm9(tmp_path / "out", limit=400, scheduler="serial", progress=False, transform=PairInvariants(),
                chunk_size=50)
    assert (m["train_size"], m["n_validation"], m["n_test"]) == (280, 40, 80)
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    for key in ("mae_kcal_mol", "rmse_kcal_mol", "train_size", "n_test", "feature_seconds_per_molecule"):
        assert saved[key] == m[key]
    assert "commit" in saved["run"]
    assert (tmp_path / "out" / "parity.png").stat().st_size > 1000
    assert (tmp_path / "out" / "learning_curve.png").stat().st_size > 1000
    # The target is (almost) linear in the charge moments of the stand-in: MAE near the noise level.
    assert m["mae_kcal_mol"] < 0.2 * m["test_energy_std_kcal_mol"]
    assert m["rmse_kcal_mol"] >= m["mae_kcal_mol"]
    assert m["forces"]["relative_error_vs_finite_difference"] < 1e-5
    assert m["forces"]["norm_of_force_sum"] < 1e-8 * m["forces"]["max_abs_force"]
    assert m["feature_chunks_computed_this_run"] == 6 + 1 + 2
    # The 10 worst test molecules, with their nearest training molecule, in metrics.json, a CSV and a figure.
    worst = m["worst_test_molecules"]["molecules"]
    assert len(worst) == 10 and saved["worst_test_molecules"]["molecules"] == worst
    errors = [abs(w["error_kcal_mol"]) for w in worst]
    assert errors == sorted(errors, reverse=True) and errors[-1] >= m["mae_kcal_mol"]
    assert all(w["formula"] and w["nearest_distance"] >= 0 and w["nearest_train_formula"] for w in worst)
    assert 0 < m["worst_test_molecules"]["share_of_squared_error"] <= 1
    assert len((tmp_path / "out" / "worst_molecules.csv").read_text().splitlines()) == 11
    assert (tmp_path / "out" / "worst_molecules.png").stat().st_size > 1000
    assert 0 <= m["test_molecules_outside_training_range"] <= m["n_test"]
    # A second run reads the cached features and extends the learning curve with a smaller size.
    m2 = run_qm9(tmp_path / "out2", limit=400, train_size=100, scheduler="serial", progress=False,
                 transform=PairInvariants(), chunk_size=50)
    assert m2["feature_chunks_computed_this_run"] == 0 and m2["train_size"] == 100
    # The same run again gives the same metrics, timings aside.
    m3 = run_qm9(tmp_path / "out3", limit=400, scheduler="serial", progress=False, transform=PairInvariants(),
                 chunk_size=50)
    assert m3["learning_curve"][-1]["mae_kcal_mol"] == m["learning_curve"][-1]["mae_kcal_mol"]
    assert m3["forces"] == m["forces"]


def test_a_seed_divides_the_same_molecules_again(fake_qm9, tmp_path):
    fixed = split_rows(280, 40, 80)
    assert all(np.array_equal(a, b) for a, b in zip(fixed.values(), split_rows(280, 40, 80, 0).values()))
    pool = np.sort(np.concatenate(list(fixed.values())))
    draws = [split_rows(280, 40, 80, seed) for seed in (1, 2)]
    for rows in draws:
        assert [r.size for r in rows.values()] == [280, 40, 80]
        assert np.array_equal(np.sort(np.concatenate(list(rows.values()))), pool)  # the same molecules, disjoint
        assert all(np.all(np.diff(r) > 0) for r in rows.values())  # store order: read chunk by chunk
    assert not np.array_equal(draws[0]["test"], draws[1]["test"])
    assert not np.array_equal(draws[0]["test"], fixed["test"])
    m1 = run_qm9(tmp_path / "s1", limit=400, scheduler="serial", progress=False, transform=PairInvariants(),
                 chunk_size=50, random_state=1)
    m0 = run_qm9(tmp_path / "s0", limit=400, scheduler="serial", progress=False, transform=PairInvariants(),
                 chunk_size=50)
    assert m0["feature_chunks_computed_this_run"] == 0  # seed 1 computed the same molecules' features
    assert (m1["random_state"], m0["random_state"]) == (1, 0)
    assert m1["mae_kcal_mol"] != m0["mae_kcal_mol"] and m1["mae_kcal_mol"] < 0.2 * m1["test_energy_std_kcal_mol"]


def test_arguments_and_output_are_checked_before_any_work(fake_qm9, tmp_path):
    (tmp_path / "file").write_text("")
    bad = [
        (dict(limit=400, train_size=300), "exceeds the 280 training molecules"),
        (dict(limit=5), "limit must be >= 20"),
        (dict(preset="huge"), "preset must be one of"),
        (dict(feature_map="cubic"), "feature_map"),
        (dict(chunk_size=0), "chunk_size"),
        (dict(batch_size=8, transform=PairInvariants()), "batch_size applies to the default transform"),
        (dict(scheduler="local"), "scheduler must be"),
        (dict(device="gpu0"), "not a torch device"),
        (dict(features_path=tmp_path / "file"), "is an existing file"),
        (dict(random_state=-1), "random_state must be a non-negative"),
    ]
    for kwargs, match in bad:
        with pytest.raises(ValueError, match=match):
            run_qm9(tmp_path / "out", progress=False, **kwargs)
    with pytest.raises(ValueError, match="existing file"):
        run_qm9(tmp_path / "file", limit=400)
    assert fake_qm9 == [] and not (tmp_path / "out" / "metrics.json").exists()


def test_runs_without_dask_or_zarr(fake_qm9, tmp_path, monkeypatch):
    for name in ("dask", "distributed", "zarr"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(MissingDependencyError, match=r"wavephase\[distributed\]"):
        run_qm9(tmp_path / "out", limit=200, n_workers=2, transform=PairInvariants(), progress=False)
    assert fake_qm9 == []
    m = run_qm9(tmp_path / "out", limit=200, transform=PairInvariants(), progress=False)
    assert m["scheduler"] == "serial (this process)" and np.isfinite(m["mae_kcal_mol"])


def test_default_local_cluster_reaches_extract_features(fake_qm9, tmp_path, monkeypatch):
    # resolve_scheduler names a local cluster "local", a name extract_features refuses: run_qm9's
    # default (2 workers with Dask installed) failed before any feature was computed.
    pytest.importorskip("distributed")
    seen = []
    real = experiment.extract_features
    monkeypatch.setattr(experiment, "extract_features",
                        lambda *a, **kw: seen.append((kw["scheduler"], kw["n_workers"])) or real(
                            *a, **{**kw, "scheduler": "serial", "n_workers": 1}))
    m = run_qm9(tmp_path / "out", limit=200, transform=PairInvariants(), progress=False)
    assert seen == [(None, 2)] and m["scheduler"] == "LocalCluster(2 processes)"


def test_qm9_cli(fake_qm9, tmp_path, monkeypatch, capsys):
    from wavephase.cli.main import main

    for name in ("dask", "distributed", "zarr"):
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setattr(experiment, "qm9_invariants", lambda *args, **kw: PairInvariants())
    assert main(["qm9", "--limit", "300", "--scheduler", "serial", "--chunk-size", "100", "--no-progress",
                 "--out", str(tmp_path / "cli")]) == 0
    assert "MAE" in capsys.readouterr().out
    assert json.loads((tmp_path / "cli" / "metrics.json").read_text())["n_test"] == 60
    assert main(["qm9", "--limit", "5", "--out", str(tmp_path / "x")]) == 2
    assert "limit must be >= 20" in capsys.readouterr().err


def test_force_check_runs_a_float32_transform_in_float64():
    mols = [random_molecule(n, random_state=n) for n in range(3, 15)]
    pos = np.zeros((len(mols), 14, 3))
    ch = np.zeros((len(mols), 14))
    for i, (p, c) in enumerate(mols):
        pos[i, :len(c)], ch[i, :len(c)] = p.numpy(), c.numpy()
    from wavephase.data.molecules import Molecules

    reg = MoleculeEnergyRegressor(qm9_invariants("fast"), alphas=(1e-3,), cv=2)
    reg.fit(Molecules(pos.astype(np.float32), ch), -50.0 * (ch > 0).sum(1) + np.arange(len(mols)))
    check = force_check(reg.model_, pos[-1], ch[-1])
    assert check["relative_error_vs_finite_difference"] < 1e-5
    assert check["norm_of_force_sum"] < 1e-8 * check["max_abs_force"]


def test_formula_is_hill_ordered():
    from wavephase.experiments.qm9_outliers import formula

    assert formula(np.array([6, 6, 9, 9, 9, 9, 9, 9, 0, 0])) == "C2F6"
    assert formula(np.array([8, 1, 1])) == "H2O"
    assert formula(np.array([7, 1, 6, 8, 1])) == "CH2NO"
