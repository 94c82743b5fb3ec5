"""MoleculeEnergyRegressor: ridge fit, penalty selection, forces vs finite differences, symmetries, scikit-learn."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.sparse
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from torch import nn

from wavephase.data.molecules import Molecules
from wavephase.models.molecule_features import qm9_invariants
from wavephase.models.molecules import DEFAULT_ALPHAS, MoleculeEnergyModel, MoleculeEnergyRegressor
from wavephase.scattering.concat import ConcatInvariants
from wavephase.testing import random_molecule, random_rotation

# Small tensors gain nothing from threads, and on a shared machine threads thrash.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


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


def _target(F: np.ndarray) -> np.ndarray:
    w = np.random.default_rng(2).normal(size=F.shape[1])
    return (F - F.mean(0)) / F.std(0) @ w * 10.0 - 500.0


def _central_differences(model: nn.Module, p: torch.Tensor, c: torch.Tensor, h: float) -> torch.Tensor:
    """``-dE/dp`` of the first molecule of ``p`` by central differences."""
    fd = torch.zeros_like(p)
    for a in range(int((c[0] > 0).sum())):
        for k in range(3):
            plus, minus = p.clone(), p.clone()
            plus[0, a, k] += h
            minus[0, a, k] -= h
            with torch.no_grad():
                fd[0, a, k] = -(model(plus, c) - model(minus, c)).sum().item() / (2 * h)
    return fd


@pytest.fixture(scope="module")
def fitted() -> tuple[MoleculeEnergyRegressor, np.ndarray, np.ndarray]:
    pos, ch = _molecules(200, seed=1)
    tf = PairInvariants()
    y = _target(tf(torch.from_numpy(pos), torch.from_numpy(ch)).numpy())
    reg = MoleculeEnergyRegressor(tf, feature_map="linear+sqrt").fit(
        Molecules(pos[:150], ch[:150]), y[:150], validation=(Molecules(pos[150:], ch[150:]), y[150:]))
    return reg, pos, ch


def test_recovers_linear_target_and_prefers_small_penalty(fitted):
    reg, pos, ch = fitted
    F = PairInvariants()(torch.from_numpy(pos), torch.from_numpy(ch)).numpy()
    y = _target(F)
    pred = reg.predict(Molecules(pos[150:], ch[150:]))
    assert np.abs(pred - y[150:]).mean() < 1e-3 * np.abs(y[150:] - y[150:].mean()).mean()
    assert reg.alpha_ <= 1e-4
    assert set(reg.scores_) == set(np.logspace(-12, 2, 15).tolist()) == set(DEFAULT_ALPHAS)
    # Precomputed features give the same predictions as the molecules.
    np.testing.assert_allclose(reg.predict(F[150:]), pred, rtol=1e-10)
    assert reg.score(Molecules(pos[150:], ch[150:]), y[150:]) > 0.999


def test_float32_features_stay_float32_and_fit_like_their_float64_values():
    pos, ch = _molecules(120, seed=4)
    tf = PairInvariants()
    F32 = tf(torch.from_numpy(pos), torch.from_numpy(ch)).numpy().astype(np.float32)
    y = F32.astype(np.float64) @ np.linspace(1, 2, F32.shape[1]) - 800.0
    reg = MoleculeEnergyRegressor(tf, alphas=[1e-8, 1e-4])
    assert reg._features(tf, F32, "X").dtype == np.float32  # no float64 copy of the training set
    fits = [MoleculeEnergyRegressor(tf, alphas=[1e-8, 1e-4]).fit(F[:90], y[:90], validation=(F[90:], y[90:]))
            for F in (F32, F32.astype(np.float64))]
    assert fits[0].alpha_ == fits[1].alpha_
    # Predictions run in float64 either way.
    np.testing.assert_allclose(fits[0].predict(F32[90:]), fits[1].predict(F32[90:]), rtol=1e-9, atol=1e-8)


def test_cross_validation_without_validation_set():
    pos, ch = _molecules(60, seed=3)
    F = PairInvariants()(torch.from_numpy(pos), torch.from_numpy(ch)).numpy()
    y = F @ np.linspace(1, 2, F.shape[1]) + np.random.default_rng(0).normal(scale=50.0, size=60)
    reg = MoleculeEnergyRegressor(PairInvariants(), alphas=(1e-6, 1e-2, 1.0, 1e3), cv=3).fit(F, y)
    assert reg.alpha_ in (1e-6, 1e-2, 1.0, 1e3)
    assert len(reg.scores_) == 4 and all(np.isfinite(list(reg.scores_.values())))
    assert min(reg.scores_.values()) == reg.scores_[reg.alpha_]
    # The folds follow random_state.
    other = MoleculeEnergyRegressor(PairInvariants(), alphas=(1e-6, 1e-2, 1.0, 1e3), cv=3, random_state=1).fit(F, y)
    assert other.scores_ != reg.scores_


def test_quadratic_map_fits_products_of_invariants_and_gives_exact_forces():
    pos, ch = _molecules(400, seed=4)
    tf = PairInvariants()
    F = tf(torch.from_numpy(pos), torch.from_numpy(ch)).numpy()
    S = (F - F.mean(0)) / F.std(0)
    y = 20.0 * S[:, 2] * S[:, 3] - 5.0 * S[:, 0] ** 2 + S @ np.linspace(1.0, 2.0, F.shape[1])
    train, val, test = slice(0, 300), slice(300, 350), slice(350, 400)

    def test_mae(feature_map: str) -> tuple[float, MoleculeEnergyRegressor]:
        reg = MoleculeEnergyRegressor(tf, feature_map=feature_map, n_components=12).fit(
            F[train], y[train], validation=(F[val], y[val]))
        return float(np.abs(reg.predict(F[test]) - y[test]).mean()), reg

    mae_sqrt, _ = test_mae("linear+sqrt")
    mae_quad, reg = test_mae("quadratic")
    assert mae_quad < 0.2 * mae_sqrt
    # 6 invariants -> 12 with roots -> + 12 * 13 / 2 products.
    assert reg.model_.weight.shape[0] == 12 + 78
    forces = torch.from_numpy(reg.predict_forces(Molecules(pos[5:6], ch[5:6])))
    fd = _central_differences(reg.model_, torch.from_numpy(pos[5:6]), torch.from_numpy(ch[5:6]), 1e-5)
    torch.testing.assert_close(forces, fd, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="expecting 6 features"):
        reg.predict(F[test, :4])


def test_forces_match_central_finite_differences(fitted):
    reg, pos, ch = fitted
    forces = torch.from_numpy(reg.predict_forces(Molecules(pos[3:4], ch[3:4])))
    fd = _central_differences(reg.model_, torch.from_numpy(pos[3:4]), torch.from_numpy(ch[3:4]), 1e-5)
    torch.testing.assert_close(forces, fd, rtol=1e-6, atol=1e-6 * float(fd.abs().max()))
    m = int((ch[3] > 0).sum())
    assert float(forces[0, m:].abs().sum()) == 0.0


def test_forces_sum_to_zero_and_rotate_with_molecule(fitted):
    reg, pos, ch = fitted
    p = torch.from_numpy(pos[:5])
    f = torch.from_numpy(reg.predict_forces(Molecules(pos[:5], ch[:5])))
    assert float(f.sum(dim=1).abs().max()) < 1e-9 * float(f.abs().max())
    R = random_rotation(0)
    shift = torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64)
    moved = (p @ R.T + shift) * torch.from_numpy(ch[:5] > 0)[..., None]  # padding stays at the origin
    f_rot = torch.from_numpy(reg.predict_forces(Molecules(moved.numpy(), ch[:5])))
    torch.testing.assert_close(f_rot, f @ R.T, rtol=1e-8, atol=1e-8 * float(f.abs().max()))
    c = torch.from_numpy(ch[:5])
    torch.testing.assert_close(reg.model_(moved, c), reg.model_(p, c), rtol=1e-12, atol=1e-9)


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
    forces32 = reg.predict_forces(Molecules(pos[:6].astype(np.float32), ch[:6]))
    assert forces32.shape == (6, *pos.shape[1:]) and forces32.dtype == np.float32


def test_empty_batches_give_empty_results(fitted):
    reg, pos, ch = fitted
    empty = Molecules(np.zeros((0, 6, 3)), np.zeros((0, 6)))
    assert reg.predict(empty).shape == (0,)
    assert reg.predict_forces(empty).shape == (0, 6, 3)
    assert reg.model_(torch.zeros(0, 6, 3, dtype=torch.float64), torch.zeros(0, 6)).shape == (0,)


def test_bad_input_messages(fitted):
    reg, pos, ch = fitted
    with pytest.raises(NotFittedError):
        MoleculeEnergyRegressor(PairInvariants()).predict(Molecules(pos, ch))
    with pytest.raises(NotFittedError):
        MoleculeEnergyRegressor(PairInvariants()).predict_forces(Molecules(pos, ch))
    with pytest.raises(ValueError, match=r"Molecules container .* shape \(n, K\)"):
        reg.predict(pos)
    with pytest.raises(TypeError, match="Molecules container"):
        reg.predict_forces(pos)
    with pytest.raises(TypeError, match="numeric array"):
        reg.predict({"positions": pos})
    with pytest.raises(TypeError, match="sparse input is not supported"):
        reg.predict(scipy.sparse.csr_matrix(np.ones((2, 6))))
    with pytest.raises(ValueError, match="feature_map"):
        MoleculeEnergyRegressor(PairInvariants(), feature_map="cubic").fit(Molecules(pos[:5], ch[:5]), np.zeros(5))
    with pytest.raises(ValueError, match="y has 4 entries"):
        MoleculeEnergyRegressor(PairInvariants()).fit(Molecules(pos[:5], ch[:5]), np.zeros(4))
    with pytest.raises(ValueError, match="alphas"):
        MoleculeEnergyRegressor(PairInvariants(), alphas=[-1.0]).fit(Molecules(pos[:5], ch[:5]), np.zeros(5))
    with pytest.raises(ValueError, match="non-finite"):
        MoleculeEnergyRegressor(PairInvariants()).fit(Molecules(pos[:5], ch[:5]), np.full(5, np.nan))
    with pytest.raises(ValueError, match="cv=5 needs at least 5"):
        MoleculeEnergyRegressor(PairInvariants()).fit(Molecules(pos[:4], ch[:4]), np.zeros(4))
    with pytest.raises(ValueError, match="validation must be a pair"):
        MoleculeEnergyRegressor(PairInvariants()).fit(Molecules(pos[:5], ch[:5]), np.zeros(5), validation=(1, 2, 3))
    with pytest.raises(ValueError, match="X has 3 features, but MoleculeEnergyRegressor is expecting"):
        reg.predict(np.zeros((2, 3)))


def test_model_module_round_trips_state_dict(fitted):
    reg, pos, ch = fitted
    sd = reg.model_.state_dict()
    clone_ = MoleculeEnergyModel(PairInvariants(), torch.zeros_like(sd["mean"]), torch.ones_like(sd["scale"]),
                                 torch.zeros_like(sd["weight"]), 0.0, "linear+sqrt")
    clone_.load_state_dict(sd)
    p, c = torch.from_numpy(pos[:4]), torch.from_numpy(ch[:4])
    torch.testing.assert_close(clone_(p, c), reg.model_(p, c))
    assert math.isfinite(float(reg.model_(p, c).sum()))


# -- scikit-learn ----------------------------------------------------------------------------------

def _random_molecules(n: int) -> tuple[Molecules, np.ndarray]:
    mols = [random_molecule(4 + i % 4, random_state=i) for i in range(n)]
    X = Molecules([p for p, _ in mols], [z for _, z in mols])
    y = -100.0 * X.n_atoms - 2.0 * X.charges.sum(1) + np.random.default_rng(0).normal(size=n)
    return X, y


def test_estimator_contract():
    reg = MoleculeEnergyRegressor(PairInvariants())
    names = [cls.__name__ for cls in type(reg).__mro__]
    assert names.index("RegressorMixin") < names.index("BaseEstimator")
    assert reg.get_params()["alphas"] is None  # no mutable default
    copy = clone(reg)
    assert copy.get_params()["feature_map"] == "linear" and copy.invariants is not reg.invariants
    assert not hasattr(reg, "transform")  # scikit-learn would take it for a transformer


def test_cross_val_score_and_grid_search_on_molecules():
    X, y = _random_molecules(30)
    scores = cross_val_score(MoleculeEnergyRegressor(PairInvariants(), cv=3), X, y, cv=3,
                             scoring="neg_mean_absolute_error")
    assert scores.shape == (3,) and np.all(np.isfinite(scores))
    search = GridSearchCV(MoleculeEnergyRegressor(PairInvariants(), cv=3),
                          {"feature_map": ["linear", "linear+sqrt"]}, cv=3).fit(X, y)
    assert search.best_params_["feature_map"] in ("linear", "linear+sqrt")
    assert search.predict(X[:4]).shape == (4,)


def test_pipelines_on_molecules():
    X, y = _random_molecules(24)

    def centred(mols: Molecules) -> Molecules:
        mask = (mols.charges > 0)[..., None]
        centre = (mols.positions * mask).sum(1, keepdims=True) / mask.sum(1, keepdims=True)
        return Molecules((mols.positions - centre) * mask, mols.charges)

    # A step on molecules before the regressor: its forces are still those of the molecules.
    pipe = make_pipeline(FunctionTransformer(centred), MoleculeEnergyRegressor(qm9_invariants("fast"), cv=3))
    pipe.fit(X[:18], y[:18])
    pred = pipe.predict(X[18:])
    assert pred.shape == (6,) and np.all(np.isfinite(pred))
    forces = pipe[-1].predict_forces(centred(X[18:]))
    assert forces.shape == X[18:].positions.shape and np.abs(forces.sum(1)).max() < 1e-6 * np.abs(forces).max()
    # Invariants computed by a step of their own, then the ridge on the feature array.
    features = FunctionTransformer(MoleculeEnergyRegressor(PairInvariants()).compute_features)
    two_steps = make_pipeline(features, MoleculeEnergyRegressor(cv=3)).fit(X[:18], y[:18])
    one_step = MoleculeEnergyRegressor(PairInvariants(), cv=3).fit(X[:18], y[:18])
    np.testing.assert_allclose(two_steps.predict(X[18:]), one_step.predict(X[18:]), rtol=1e-10)


def test_forces_through_solid_harmonic_scattering():
    tf = qm9_invariants("fast")
    pos, ch = _molecules(24, atoms=4, seed=5)
    ch[ch == 0] = 1  # no padding: every molecule has 4 atoms
    pos = pos + np.random.default_rng(6).normal(scale=0.3, size=pos.shape)
    y = -100.0 * (ch > 0).sum(1) + np.random.default_rng(7).normal(size=24)
    reg = MoleculeEnergyRegressor(tf, alphas=(1e-3, 1e-1)).fit(Molecules(pos[:18], ch[:18]), y[:18],
                                                               validation=(Molecules(pos[18:], ch[18:]), y[18:]))
    forces = torch.from_numpy(reg.predict_forces(Molecules(pos[18:19], ch[18:19])))
    fd = _central_differences(reg.model_, torch.from_numpy(pos[18:19]), torch.from_numpy(ch[18:19]), 1e-6)
    torch.testing.assert_close(forces, fd, rtol=1e-4, atol=1e-4 * float(fd.abs().max()))
    # Translation invariance of the energy: the forces sum to zero.
    assert float(forces.sum(1).norm()) < 1e-8 * float(forces.abs().max())


def test_default_invariants_are_built_without_touching_params():
    F = np.random.default_rng(0).normal(size=(20, 3))
    reg = MoleculeEnergyRegressor(cv=2).fit(F, F @ [1.0, 2.0, 3.0])
    assert reg.get_params()["invariants"] is None
    assert isinstance(reg.invariants_, ConcatInvariants) and reg.model_.transform is reg.invariants_
    assert set(reg.model_.transform.parts) == {"scattering", "spectrum"}


def test_scikit_learn_estimator_checks_on_invariant_arrays():
    from sklearn.utils.estimator_checks import check_estimator

    # The library's dtype policy (docs/conventions.rst) differs from scikit-learn's on these two.
    expected = {"check_complex_data": "complex input is a TypeError, not a ValueError",
                "check_dtype_object": "object arrays are refused rather than converted"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(MoleculeEnergyRegressor(cv=2), expected_failed_checks=expected, on_fail=None)
    failed = {r["check_name"] for r in results if r["status"] == "failed"}
    assert failed == set(), failed
