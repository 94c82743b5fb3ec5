"""MoleculeEnergyRegressor: ridge fit, penalty selection, forces vs finite differences, symmetries."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from wavephase.models.molecules import (
    MoleculeEnergyModel,
    MoleculeEnergyRegressor,
    expand_features,
    qm9_invariants,
    ridge_path,
)


class PairInvariants(nn.Module):
    """Stand-in invariant transform: smooth Coulomb-like pair sums and charge moments.

    Translation, rotation and permutation invariant and smooth in the positions;
    padding atoms (charge 0) contribute nothing.
    """

    def __init__(self, widths: tuple[float, ...] = (0.7, 1.4, 2.8)) -> None:
        super().__init__()
        self.widths = widths

    def forward(self, positions: torch.Tensor, charges: torch.Tensor) -> torch.Tensor:
        z = charges.to(positions.dtype)
        r2 = (positions[..., :, None, :] - positions[..., None, :, :]).pow(2).sum(-1)
        zz = z[..., :, None] * z[..., None, :]
        off = 1.0 - torch.eye(z.shape[-1], dtype=z.dtype, device=z.device)
        feats = [z.sum(-1), z.pow(2).sum(-1)]
        feats += [(zz * off * torch.exp(-r2 / w**2)).sum((-1, -2)) / 2 for w in self.widths]
        feats.append((zz * off / torch.sqrt(r2 + 1.0)).sum((-1, -2)) / 2)
        return torch.stack(feats, dim=-1)


def _molecules(n: int, atoms: int = 6, seed: int = 0, dtype: np.dtype = np.float64) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    pos = rng.normal(scale=1.2, size=(n, atoms, 3)).astype(dtype)
    ch = rng.choice([1, 6, 7, 8], size=(n, atoms)).astype(np.uint8)
    n_real = rng.integers(2, atoms + 1, size=n)
    for i, m in enumerate(n_real):
        ch[i, m:] = 0
        pos[i, m:] = 0.0
    return pos, ch


def _rotation(seed: int) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))
    if torch.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


@pytest.fixture(scope="module")
def fitted() -> tuple[MoleculeEnergyRegressor, np.ndarray, np.ndarray]:
    pos, ch = _molecules(200, seed=1)
    tf = PairInvariants()
    F = tf(torch.from_numpy(pos), torch.from_numpy(ch)).numpy()
    w = np.random.default_rng(2).normal(size=F.shape[1])
    y = (F - F.mean(0)) / F.std(0) @ w * 10.0 - 500.0
    reg = MoleculeEnergyRegressor(tf, feature_map="linear+sqrt").fit(pos[:150], ch[:150], y[:150],
                                                                     validation=(pos[150:], ch[150:], y[150:]))
    return reg, pos, ch


def test_ridge_path_matches_normal_equations():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 4))
    X -= X.mean(0)
    y = X @ np.array([1.0, -2.0, 0.5, 3.0]) + rng.normal(scale=0.1, size=50)
    y -= y.mean()
    alphas = [0.0, 0.1, 10.0]
    W, _ = ridge_path(X, y, alphas)
    for a, w in zip(alphas, W):
        expected = np.linalg.solve(X.T @ X / 50 + a * np.eye(4), X.T @ y / 50)
        np.testing.assert_allclose(w, expected, rtol=1e-10, atol=1e-12)
    # A larger penalty shrinks the solution.
    assert np.linalg.norm(W[2]) < np.linalg.norm(W[1]) < np.linalg.norm(W[0]) + 1e-12


def test_ridge_path_with_fewer_samples_than_features():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(20, 50))
    X -= X.mean(0)
    y = rng.normal(size=20)
    y -= y.mean()
    W, evals = ridge_path(X, y, [0.0, 0.1])
    expected = np.linalg.solve(X.T @ X / 20 + 0.1 * np.eye(50), X.T @ y / 20)
    np.testing.assert_allclose(W[1], expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(W[0], np.linalg.pinv(X) @ y, rtol=1e-8, atol=1e-10)  # minimum-norm fit
    assert evals.shape == (50,)


def test_ridge_path_standardises_block_by_block(monkeypatch):
    from wavephase.models import molecules

    monkeypatch.setattr(molecules, "_ROWS", 7)  # many blocks, the last one partial
    rng = np.random.default_rng(1)
    X = rng.normal(loc=[5.0, -3.0, 0.0], scale=[2.0, 0.1, 10.0], size=(40, 3))
    y = X @ np.array([1.0, 4.0, -0.2]) + rng.normal(scale=0.05, size=40)
    mean, scale = molecules._standardisation(X)
    np.testing.assert_allclose(mean, X.mean(0), rtol=1e-12)
    np.testing.assert_allclose(scale, X.std(0), rtol=1e-12)
    W, _ = ridge_path(X, y - y.mean(), [1e-3], center=mean, scale=scale)
    Z = (X - mean) / scale
    expected = np.linalg.solve(Z.T @ Z / 40 + 1e-3 * np.eye(3), Z.T @ (y - y.mean()) / 40)
    np.testing.assert_allclose(W[0], expected, rtol=1e-10)


def test_recovers_linear_target_and_prefers_small_penalty(fitted):
    reg, pos, ch = fitted
    tf = PairInvariants()
    F = tf(torch.from_numpy(pos), torch.from_numpy(ch)).numpy()
    pred = reg.predict(pos[150:], ch[150:])
    w = np.random.default_rng(2).normal(size=F.shape[1])
    y = (F - F.mean(0)) / F.std(0) @ w * 10.0 - 500.0
    assert np.abs(pred - y[150:]).mean() < 1e-3 * np.abs(y[150:] - y[150:].mean()).mean()
    assert reg.alpha_ <= 1e-4
    assert set(reg.scores_) == set(np.logspace(-12, 2, 15).tolist())
    # Precomputed features give the same predictions as positions/charges.
    np.testing.assert_allclose(reg.predict(features=F[150:]), pred, rtol=1e-10)


def test_float32_features_stay_float32_and_fit_like_their_float64_values():
    pos, ch = _molecules(120, seed=4)
    tf = PairInvariants()
    F32 = tf(torch.from_numpy(pos), torch.from_numpy(ch)).numpy().astype(np.float32)
    y = F32.astype(np.float64) @ np.linspace(1, 2, F32.shape[1]) - 800.0
    reg = MoleculeEnergyRegressor(tf, alphas=[1e-8, 1e-4])
    assert reg._features(None, None, F32, "fit").dtype == np.float32  # no float64 copy of the training set
    fits = [MoleculeEnergyRegressor(tf, alphas=[1e-8, 1e-4]).fit(None, None, y[:90], features=F[:90],
                                                                  validation=(None, None, y[90:]),
                                                                  validation_features=F[90:])
            for F in (F32, F32.astype(np.float64))]
    assert fits[0].alpha_ == fits[1].alpha_
    # Predictions run in float64 either way.
    np.testing.assert_allclose(fits[0].predict(features=F32[90:]), fits[1].predict(features=F32[90:]),
                               rtol=1e-9, atol=1e-8)


def test_cross_validation_without_validation_set():
    pos, ch = _molecules(60, seed=3)
    tf = PairInvariants()
    F = tf(torch.from_numpy(pos), torch.from_numpy(ch)).numpy()
    y = F @ np.linspace(1, 2, F.shape[1]) + np.random.default_rng(0).normal(scale=50.0, size=60)
    reg = MoleculeEnergyRegressor(tf, alphas=[1e-6, 1e-2, 1.0, 1e3], cv=3).fit(None, None, y, features=F)
    assert reg.alpha_ in (1e-6, 1e-2, 1.0, 1e3)
    assert len(reg.scores_) == 4 and all(np.isfinite(list(reg.scores_.values())))
    # Huge noise makes the strongest penalty no better than the weakest one is bad.
    assert min(reg.scores_.values()) == reg.scores_[reg.alpha_]


def test_quadratic_map_fits_products_of_invariants_and_gives_exact_forces():
    pos, ch = _molecules(400, seed=4)
    tf = PairInvariants()
    F = tf(torch.from_numpy(pos), torch.from_numpy(ch)).numpy()
    S = (F - F.mean(0)) / F.std(0)
    y = 20.0 * S[:, 2] * S[:, 3] - 5.0 * S[:, 0] ** 2 + S @ np.linspace(1.0, 2.0, F.shape[1])
    train, val, test = slice(0, 300), slice(300, 350), slice(350, 400)

    def test_mae(feature_map: str) -> tuple[float, MoleculeEnergyRegressor]:
        reg = MoleculeEnergyRegressor(tf, feature_map=feature_map, n_components=12).fit(
            None, None, y[train], features=F[train], validation=(None, None, y[val]), validation_features=F[val])
        return float(np.abs(reg.predict(features=F[test]) - y[test]).mean()), reg

    mae_sqrt, _ = test_mae("linear+sqrt")
    mae_quad, reg = test_mae("quadratic")
    assert mae_quad < 0.2 * mae_sqrt
    # 6 invariants -> 12 with roots -> + 12 * 13 / 2 products.
    assert reg.model_.weight.shape[0] == 12 + 78
    p = torch.from_numpy(pos[5:6]).clone()
    c = torch.from_numpy(ch[5:6])
    forces = reg.predict_forces(p, c)
    h = 1e-5
    for a in range(int((c > 0).sum())):
        for k in range(3):
            plus, minus = p.clone(), p.clone()
            plus[0, a, k] += h
            minus[0, a, k] -= h
            fd = -(reg.model_(plus, c) - reg.model_(minus, c)).item() / (2 * h)
            assert abs(float(forces[0, a, k]) - fd) <= 1e-6 * max(1.0, abs(fd))
    with pytest.raises(ValueError, match="columns"):
        reg.predict(features=F[test, :4])


def test_forces_match_central_finite_differences(fitted):
    reg, pos, ch = fitted
    p = torch.from_numpy(pos[3:4]).clone()
    c = torch.from_numpy(ch[3:4])
    forces = reg.predict_forces(p, c)
    m = int((c > 0).sum())
    h = 1e-5
    fd = torch.zeros_like(p)
    for a in range(m):
        for k in range(3):
            plus, minus = p.clone(), p.clone()
            plus[0, a, k] += h
            minus[0, a, k] -= h
            fd[0, a, k] = -(reg.model_(plus, c) - reg.model_(minus, c)).item() / (2 * h)
    torch.testing.assert_close(forces, fd, rtol=1e-6, atol=1e-6 * float(fd.abs().max()))
    assert float(forces[0, m:].abs().sum()) == 0.0


def test_forces_sum_to_zero_and_rotate_with_molecule(fitted):
    reg, pos, ch = fitted
    p = torch.from_numpy(pos[:5])
    c = torch.from_numpy(ch[:5])
    f = reg.predict_forces(p, c)
    assert float(f.sum(dim=1).abs().max()) < 1e-9 * float(f.abs().max())
    R = _rotation(0)
    shift = torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64)
    f_rot = reg.predict_forces(p @ R.T + shift, c)
    torch.testing.assert_close(f_rot, f @ R.T, rtol=1e-8, atol=1e-8 * float(f.abs().max()))
    e = reg.model_(p, c)
    torch.testing.assert_close(reg.model_(p @ R.T + shift, c), e, rtol=1e-12, atol=1e-9)


def test_model_handles_batch_shapes_and_float32(fitted):
    reg, pos, ch = fitted
    p = torch.from_numpy(pos[:6]).reshape(2, 3, *pos.shape[1:])
    c = torch.from_numpy(ch[:6]).reshape(2, 3, ch.shape[1])
    e = reg.model_(p, c)
    assert e.shape == (2, 3)
    torch.testing.assert_close(e.reshape(-1), reg.model_(p.reshape(6, *pos.shape[1:]), c.reshape(6, -1)))
    e32 = reg.model_(p.float(), c)
    assert e32.dtype == torch.float32
    torch.testing.assert_close(e32.double(), e, rtol=1e-4, atol=1e-3)
    assert reg.predict_forces(p, c).shape == p.shape


def test_expand_features_sqrt_is_smooth_at_zero():
    x = torch.tensor([[0.0, 4.0, -9.0]], dtype=torch.float64, requires_grad=True)
    z = expand_features(x, "linear+sqrt")
    assert z.shape == (1, 6)
    torch.testing.assert_close(z[0, 4:], torch.tensor([2.0, -3.0], dtype=torch.float64), atol=2e-3, rtol=0)
    (g,) = torch.autograd.grad(z.sum(), x)
    assert torch.isfinite(g).all()
    assert torch.autograd.gradcheck(lambda t: expand_features(t, "linear+sqrt"), (x.detach() + 0.5).requires_grad_())


def test_bad_input_messages(fitted):
    reg, pos, ch = fitted
    with pytest.raises(RuntimeError, match="not fitted"):
        MoleculeEnergyRegressor(PairInvariants()).predict(pos, ch)
    with pytest.raises(ValueError, match=r"charges must have shape"):
        reg.predict_forces(pos[:2], ch[:2, :3])
    with pytest.raises(ValueError, match=r"\(\.\.\., A, 3\)"):
        reg.predict_forces(pos[:2, :, :2], ch[:2])
    bad = pos[:2].copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="positions contains 1 non-finite"):
        reg.predict(bad, ch[:2])
    with pytest.raises(ValueError, match=">= 0"):
        reg.predict_forces(pos[:2], -ch[:2].astype(np.int64))
    with pytest.raises(ValueError, match="feature_map"):
        MoleculeEnergyRegressor(PairInvariants(), feature_map="cubic").fit(pos[:5], ch[:5], np.zeros(5))
    with pytest.raises(ValueError, match="energies has 4 entries"):
        MoleculeEnergyRegressor(PairInvariants()).fit(pos[:5], ch[:5], np.zeros(4))
    with pytest.raises(ValueError, match="alphas"):
        MoleculeEnergyRegressor(PairInvariants(), alphas=[-1.0]).fit(pos[:5], ch[:5], np.zeros(5))
    with pytest.raises(ValueError, match="columns"):
        reg.predict(features=np.zeros((2, 3)))


def test_model_module_round_trips_state_dict(fitted):
    reg, pos, ch = fitted
    sd = reg.model_.state_dict()
    clone = MoleculeEnergyModel(PairInvariants(), torch.zeros_like(sd["mean"]), torch.ones_like(sd["scale"]),
                                torch.zeros_like(sd["weight"]), 0.0, "linear+sqrt")
    clone.load_state_dict(sd)
    p, c = torch.from_numpy(pos[:4]), torch.from_numpy(ch[:4])
    torch.testing.assert_close(clone(p, c), reg.model_(p, c))
    assert math.isfinite(float(reg.model_(p, c).sum()))


# -- run_qm9 and the CLI on a synthetic stand-in of QM9 -------------------------------------------

@pytest.fixture()
def fake_qm9(tmp_path, monkeypatch):
    from wavephase.data import qm9 as qm9_mod

    n = qm9_mod.QM9_N_MOLECULES
    rng = np.random.default_rng(0)
    pos = np.zeros((n, qm9_mod.QM9_MAX_ATOMS, 3), np.float32)
    pos[:, :5] = rng.normal(scale=1.0, size=(n, 5, 3))
    ch = np.zeros((n, qm9_mod.QM9_MAX_ATOMS), np.uint8)
    ch[:, :5] = rng.choice([1, 6, 8], size=(n, 5))
    energy = -100.0 * (ch > 0).sum(1) - 3.0 * ch.sum(1) + rng.normal(scale=1.0, size=n)
    data = {"positions": pos, "charges": ch, "energy_kcal_mol": energy,
            "index": np.arange(1, n + 1), "split": qm9_mod.qm9_split(n)}
    monkeypatch.setattr(qm9_mod, "load_qm9", lambda **kw: data)
    monkeypatch.setenv("WAVEPHASE_CACHE", str(tmp_path / "cache"))
    return data


def test_run_qm9_writes_metrics_and_reuses_features(fake_qm9, tmp_path):
    from wavephase.models.molecules import run_qm9

    m = run_qm9(tmp_path / "out", limit=400, scheduler="serial", progress=False, transform=PairInvariants(),
                chunk_size=50)
    assert (m["train_size"], m["n_validation"], m["n_test"]) == (280, 40, 80)
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    for key in ("mae_kcal_mol", "rmse_kcal_mol", "train_size", "n_test", "feature_seconds_per_molecule"):
        assert saved[key] == m[key]
    assert (tmp_path / "out" / "parity.png").stat().st_size > 1000
    assert (tmp_path / "out" / "learning_curve.png").stat().st_size > 1000
    # The target is (almost) linear in the charge moments of the stand-in: MAE near the noise level.
    assert m["mae_kcal_mol"] < 0.2 * m["test_energy_std_kcal_mol"]
    assert m["rmse_kcal_mol"] >= m["mae_kcal_mol"]
    assert m["forces"]["relative_error_vs_finite_difference"] < 1e-5
    assert m["forces"]["norm_of_force_sum"] < 1e-8 * m["forces"]["max_abs_force"]
    assert m["feature_chunks_computed_this_run"] == 6 + 1 + 2
    # A second run reads the cached features and extends the learning curve with a smaller size.
    m2 = run_qm9(tmp_path / "out2", limit=400, train_size=100, scheduler="serial", progress=False,
                 transform=PairInvariants(), chunk_size=50)
    assert m2["feature_chunks_computed_this_run"] == 0 and m2["train_size"] == 100
    with pytest.raises(ValueError, match="exceeds the 280 training molecules"):
        run_qm9(tmp_path / "o3", limit=400, train_size=300, scheduler="serial", transform=PairInvariants())


def test_cli_presets_are_the_model_presets():
    from wavephase.cli.qm9 import PRESETS
    from wavephase.models.molecules import QM9_PRESETS

    assert set(PRESETS) == set(QM9_PRESETS)


def test_qm9_cli(fake_qm9, tmp_path, monkeypatch, capsys):
    from wavephase.cli.main import main
    from wavephase.models import molecules

    monkeypatch.setattr(molecules, "qm9_invariants", lambda *args, **kw: PairInvariants())
    assert main(["qm9", "--limit", "300", "--scheduler", "serial", "--chunk-size", "100", "--no-progress",
                 "--out", str(tmp_path / "cli")]) == 0
    assert "MAE" in capsys.readouterr().out
    assert json.loads((tmp_path / "cli" / "metrics.json").read_text())["n_test"] == 60
    assert main(["qm9", "--limit", "5", "--out", str(tmp_path / "x")]) == 2
    assert "limit must be >= 20" in capsys.readouterr().err


def test_forces_through_solid_harmonic_scattering():
    from wavephase.models.molecules import qm9_invariants

    tf = qm9_invariants("fast", dtype=torch.float64)
    pos, ch = _molecules(24, atoms=4, seed=5)
    ch[ch == 0] = 1  # no padding: every molecule has 4 atoms
    pos = pos + np.random.default_rng(6).normal(scale=0.3, size=pos.shape)
    y = -100.0 * (ch > 0).sum(1) + np.random.default_rng(7).normal(size=24)
    reg = MoleculeEnergyRegressor(tf, alphas=[1e-3, 1e-1]).fit(pos[:18], ch[:18], y[:18],
                                                            validation=(pos[18:], ch[18:], y[18:]))
    p, c = torch.from_numpy(pos[18:19]), torch.from_numpy(ch[18:19])
    forces = reg.predict_forces(p, c)
    h = 1e-6
    fd = torch.zeros_like(p)
    for a in range(4):
        for k in range(3):
            plus, minus = p.clone(), p.clone()
            plus[0, a, k] += h
            minus[0, a, k] -= h
            with torch.no_grad():
                fd[0, a, k] = -(reg.model_(plus, c) - reg.model_(minus, c)).item() / (2 * h)
    torch.testing.assert_close(forces, fd, rtol=1e-4, atol=1e-4 * float(fd.abs().max()))
    # Translation invariance of the energy: the forces sum to zero.
    assert float(forces.sum(1).norm()) < 1e-8 * float(forces.abs().max())


def test_force_check_runs_every_part_of_a_float32_transform_in_float64():
    from wavephase.models.molecules import _force_check
    from wavephase.testing import random_molecule

    mols = [random_molecule(n, seed=n) for n in range(3, 15)]
    pos = np.zeros((len(mols), 14, 3))
    ch = np.zeros((len(mols), 14))
    for i, (p, c) in enumerate(mols):
        pos[i, :len(c)], ch[i, :len(c)] = p.numpy(), c.numpy()
    reg = MoleculeEnergyRegressor(qm9_invariants("fast"), alphas=[1e-3], cv=2)
    reg.fit(pos, ch, -50.0 * (ch > 0).sum(1) + np.arange(len(mols)))
    check = _force_check(reg.model_, pos[-1], ch[-1])
    assert check["relative_error_vs_finite_difference"] < 1e-5


def test_default_invariants_are_built_without_touching_params():
    from wavephase.scattering.concat import ConcatInvariants

    F = np.random.default_rng(0).normal(size=(20, 3))
    reg = MoleculeEnergyRegressor(cv=2).fit(None, None, F @ [1.0, 2.0, 3.0], features=F)
    assert reg.get_params()["transform"] is None
    assert isinstance(reg.model_.transform, ConcatInvariants)
    assert set(reg.model_.transform.parts) == {"scattering", "spectrum"}
