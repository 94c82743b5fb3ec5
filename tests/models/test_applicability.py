"""Blocked ridge statistics, fits from streamed blocks, and the applicability domain of a fitted model."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from wavephase.data.molecules import Molecules
from wavephase.exceptions import OutOfDomainWarning, UnsupportedMoleculeError
from wavephase.models import ridge
from wavephase.models.molecules import MoleculeEnergyRegressor
from wavephase.models.ridge import RidgeStatistics, fit_ridge, ridge_predict

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class PairSums(nn.Module):
    """Counts of H, C, N, O atoms and one Gaussian pair sum: invariant, cheap, and open to every element."""

    def forward(self, positions: torch.Tensor, charges: torch.Tensor) -> torch.Tensor:
        z = charges.to(positions.dtype)
        counts = [(z == e).to(positions.dtype).sum(-1) for e in (1.0, 6.0, 7.0, 8.0)]
        d2 = (positions.unsqueeze(-2) - positions.unsqueeze(-3)).pow(2).sum(-1)
        pair = (z.unsqueeze(-1) * z.unsqueeze(-2) * torch.exp(-d2)).sum((-1, -2)) - z.pow(2).sum(-1)
        return torch.stack(counts + [pair], dim=-1)


def _molecules(n: int, atoms: int = 5, seed: int = 0, elements: tuple[int, ...] = (1, 6, 8)) -> Molecules:
    rng = np.random.default_rng(seed)
    pos = rng.normal(scale=1.2, size=(n, atoms, 3))
    ch = rng.choice(elements, size=(n, atoms)).astype(np.uint8)
    ch[:, 0] = 6  # even electron counts are not guaranteed; tests that need them set them
    return Molecules(pos, ch)


@pytest.fixture(scope="module")
def fitted() -> tuple[MoleculeEnergyRegressor, Molecules, np.ndarray]:
    X = _molecules(120)
    y = -100.0 * X.n_atoms - 2.0 * X.charges.sum(1) + np.random.default_rng(1).normal(size=120)
    reg = MoleculeEnergyRegressor(PairSums(), alphas=(1e-8, 1e-4, 1e-2)).fit(X[:90], y[:90],
                                                                          validation=(X[90:], y[90:]))
    return reg, X, y


def test_blocked_statistics_match_the_normal_equations(monkeypatch):
    monkeypatch.setattr(ridge, "_ROWS", 7)  # many blocks, the last one partial
    rng = np.random.default_rng(0)
    # Large means and small spreads: the shifted sums must not cancel.
    X = rng.normal(loc=[1e4, -3.0, 50.0], scale=[1e-2, 0.1, 10.0], size=(60, 3))
    y = X @ np.array([100.0, 4.0, -0.2]) + rng.normal(scale=0.05, size=60)
    stats = RidgeStatistics(3)
    for s in range(0, 60, 11):  # blocks of another size than _ROWS
        stats.update(X[s:s + 11].astype(np.float64), y[s:s + 11])
    W, mean, scale, y0 = stats.solve([0.0, 1e-3])
    np.testing.assert_allclose(mean, X.mean(0), rtol=1e-12)
    np.testing.assert_allclose(scale, X.std(0), rtol=1e-7)
    assert y0 == pytest.approx(y.mean(), rel=1e-12)
    Z = (X - X.mean(0)) / X.std(0)
    expected = np.linalg.solve(Z.T @ Z / 60 + 1e-3 * np.eye(3), Z.T @ (y - y.mean()) / 60)
    np.testing.assert_allclose(W[1], expected, rtol=1e-6)
    np.testing.assert_allclose(stats.low, X.min(0)) and np.testing.assert_allclose(stats.high, X.max(0))
    # The caller's array is not modified by the in-place shift.
    X0 = X.copy()
    fit_ridge(X, y, [1e-3])
    np.testing.assert_array_equal(X, X0)
    pred = ridge_predict(X, W, mean, scale, y0)
    assert pred.shape == (60, 2) and np.abs(pred[:, 0] - y).mean() < 0.1


@pytest.mark.parametrize("feature_map", ["linear", "quadratic"])
def test_fit_blocks_equals_fit_on_the_whole_array(feature_map):
    X = _molecules(150, seed=3)
    F = PairSums()(torch.from_numpy(X.positions), torch.from_numpy(X.charges.astype(np.float64))).numpy()
    y = F @ np.array([1.0, -0.1, 3.0, 0.5, 2.0]) + 0.01 * F[:, 4] ** 2
    common = dict(alphas=(1e-10, 1e-6, 1e-2), feature_map=feature_map, n_components=3)
    whole = MoleculeEnergyRegressor(PairSums(), **common).fit(F[:100], y[:100], validation=(F[100:], y[100:]))

    def blocks():
        for s in range(0, 100, 30):
            yield F[s:min(s + 30, 100)], y[s:min(s + 30, 100)]

    streamed = MoleculeEnergyRegressor(PairSums(), **common).fit_blocks(blocks, validation=(F[100:], y[100:]),
                                                                        molecules=X[:100])
    assert streamed.alpha_ == whole.alpha_
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDomainWarning)
        np.testing.assert_allclose(streamed.predict(F[100:]), whole.predict(F[100:]), rtol=1e-6,
                                   atol=1e-6 * np.abs(y).max())
    assert streamed.domain_.elements == (1, 6, 8) and streamed.domain_.max_atoms == 5
    with pytest.raises(ValueError, match="validation"):
        MoleculeEnergyRegressor(PairSums()).fit_blocks(blocks, validation=None)


@pytest.mark.parametrize("n_train", [30, 60])
def test_fit_blocks_with_fewer_rows_than_columns_solves_as_fit(n_train):
    # 30 rows of 40 columns: the n x n dual problem, as fit; 60: the first 35 rows are kept, then streamed.
    rng = np.random.default_rng(4)
    F = rng.normal(size=(n_train + 20, 40))
    y = F @ rng.normal(size=40) + 0.1 * rng.normal(size=n_train + 20)
    common = dict(alphas=(1e-6, 1e-2, 1.0))
    whole = MoleculeEnergyRegressor(PairSums(), **common).fit(F[:n_train], y[:n_train],
                                                               validation=(F[n_train:], y[n_train:]))

    def blocks():
        for s in range(0, n_train, 7):
            yield F[s:min(s + 7, n_train)], y[s:min(s + 7, n_train)]

    streamed = MoleculeEnergyRegressor(PairSums(), **common).fit_blocks(blocks, validation=(F[n_train:], y[n_train:]))
    assert streamed.alpha_ == whole.alpha_
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDomainWarning)
        np.testing.assert_allclose(streamed.predict(F[n_train:]), whole.predict(F[n_train:]), rtol=1e-8, atol=1e-8)
    np.testing.assert_array_equal(streamed.domain_.low, F[:n_train].min(axis=0))
    np.testing.assert_array_equal(streamed.domain_.high, F[:n_train].max(axis=0))


def test_elements_absent_from_training_are_refused_with_a_named_error(fitted):
    reg, X, _ = fitted
    X_n = _molecules(3, seed=9, elements=(1, 6, 7))  # nitrogen: the transform takes it, the model never saw it
    with pytest.raises(UnsupportedMoleculeError, match=r"element\(s\) \[7\].*never saw"):
        reg.predict(X_n)
    with pytest.raises(UnsupportedMoleculeError, match="never saw"):
        reg.predict_forces(X_n)
    assert isinstance(UnsupportedMoleculeError("x"), ValueError)


def test_charged_species_are_refused(fitted):
    reg, X, _ = fitted
    with pytest.raises(UnsupportedMoleculeError, match="net_charge is 1 for molecule 1"):
        reg.predict(X[:3], net_charge=[0, 1, 0])
    with pytest.raises(UnsupportedMoleculeError, match="neutral"):
        reg.predict(reg.compute_features(X[:2]), net_charge=-1)  # precomputed invariants too
    with pytest.raises(ValueError, match="net_charge must be one number or one per molecule"):
        reg.predict(X[:3], net_charge=[0, 0])
    np.testing.assert_allclose(reg.predict(X[:3], net_charge=0), reg.predict(X[:3]))


def test_training_molecules_are_in_the_domain(fitted):
    reg, X, _ = fitted
    with warnings.catch_warnings():
        warnings.simplefilter("error", OutOfDomainWarning)
        _, flags = reg.predict(X[:90], return_domain=True)
    assert not flags["n_out_of_range"].any() and not flags["more_atoms_than_training"].any()


def test_larger_molecules_are_predicted_and_flagged(fitted):
    reg, X, _ = fitted
    big = _molecules(4, atoms=12, seed=5)  # more atoms than any training molecule (5)
    with pytest.warns(OutOfDomainWarning, match="outside the training range"):
        energy, flags = reg.predict(big, return_domain=True)
    assert energy.shape == (4,) and np.isfinite(energy).all()
    assert flags["more_atoms_than_training"].all()
    assert (flags["n_out_of_range"] > 0).all()  # the charge sums alone exceed the training range
    odd = Molecules(np.array([[[0.0, 0.0, 0.0], [1.1, 0.0, 0.0]]]), np.array([[6, 1]]))  # CH: 7 electrons
    _, flags = reg.predict(odd, return_domain=True)
    assert flags["odd_electron_count"].tolist() == [True]


def test_qm9_transform_refuses_other_elements_before_any_work():
    from wavephase.models.molecule_features import qm9_invariants

    cl = Molecules(np.array([[[0.0, 0.0, 0.0], [1.8, 0.0, 0.0]]]), np.array([[17, 1]]))
    with pytest.raises(ValueError, match=r"element\(s\) \[17\] unknown"):
        qm9_invariants("fast")(*cl.tensors())
