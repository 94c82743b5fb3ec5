"""Ridge regression for many penalties: normal equations, few samples, block-by-block standardisation."""

from __future__ import annotations

import numpy as np

from wavephase.models import ridge
from wavephase.models.ridge import column_standardisation, cross_validation_mae, fit_ridge, ridge_path, validation_mae


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
    monkeypatch.setattr(ridge, "_ROWS", 7)  # many blocks, the last one partial
    rng = np.random.default_rng(1)
    X = rng.normal(loc=[5.0, -3.0, 0.0], scale=[2.0, 0.1, 10.0], size=(40, 3))
    y = X @ np.array([1.0, 4.0, -0.2]) + rng.normal(scale=0.05, size=40)
    mean, scale = column_standardisation(X)
    np.testing.assert_allclose(mean, X.mean(0), rtol=1e-12)
    np.testing.assert_allclose(scale, X.std(0), rtol=1e-12)
    W, _ = ridge_path(X, y - y.mean(), [1e-3], center=mean, scale=scale)
    Z = (X - mean) / scale
    expected = np.linalg.solve(Z.T @ Z / 40 + 1e-3 * np.eye(3), Z.T @ (y - y.mean()) / 40)
    np.testing.assert_allclose(W[0], expected, rtol=1e-10)


def test_constant_columns_stay_at_zero():
    X = np.c_[np.arange(10.0), np.full(10, 3.0)]
    mean, scale = column_standardisation(X)
    assert scale[1] == 1.0
    W, mean, scale, y0 = fit_ridge(X, 2.0 * np.arange(10.0) + 1.0, [1e-8])
    assert W[0, 1] == 0.0 and y0 == 10.0


def test_penalty_selection_errors():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(60, 3))
    y = X @ np.array([1.0, 2.0, 3.0]) + rng.normal(scale=0.1, size=60)
    alphas = [1e-6, 1e3]
    val = validation_mae(X[:40], y[:40], alphas, X[40:], y[40:])
    cv = cross_validation_mae(X, y, alphas, cv=3, random_state=0)
    assert val.shape == cv.shape == (2,)
    assert val[0] < val[1] and cv[0] < cv[1]  # a clean linear target wants no penalty
    np.testing.assert_array_equal(cv, cross_validation_mae(X, y, alphas, cv=3, random_state=0))
    assert not np.array_equal(cv, cross_validation_mae(X, y, alphas, cv=3, random_state=1))
