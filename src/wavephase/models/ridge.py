"""Ridge regression for many penalties at once, on features too large to standardise in one piece.

The penalty is per sample (``mean((y - Z w)**2) + alpha ||w||**2``), so a penalty
chosen on one training size means the same on another. Every pass over the
features goes by blocks of rows, so the temporaries stay ``_ROWS * K`` floats
whatever the number of samples, and float32 features are never copied whole to
float64.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["column_standardisation", "cross_validation_mae", "fit_ridge", "ridge_path", "validation_mae"]

# Rows per block in the passes over the features.
_ROWS = 8192


def column_standardisation(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and spreads of features; constant columns get a unit spread.

    Parameters
    ----------
    Z : numpy.ndarray
        Features, float32 or float64.

    Returns
    -------
    mean, scale : numpy.ndarray
        float64 each.

    Shapes
    ------
    Z: (n, K) -> (K,), (K,)
    """
    mean = Z.mean(axis=0, dtype=np.float64)
    var = sum(((Z[s:s + _ROWS] - mean) ** 2).sum(axis=0) for s in range(0, Z.shape[0], _ROWS)) / Z.shape[0]
    scale = np.sqrt(var)
    # Constant features carry no information; a unit scale keeps them at exactly zero.
    scale = np.where(scale > 1e-12 * max(1.0, float(np.abs(mean).max(initial=0.0))), scale, 1.0)
    return mean, scale


def ridge_path(X: np.ndarray, y: np.ndarray, alphas: Sequence[float], *, center: np.ndarray | None = None,
               scale: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Ridge solutions for several penalties from one eigendecomposition.

    Minimises ``mean((y - Z w)**2) + alpha ||w||**2`` with ``Z = (X - center) / scale``
    (``Z = X`` by default) for centred ``Z``, ``y``; the penalty is per sample, so
    ``alpha`` does not depend on the number of samples. ``Z`` is formed block by
    block, never whole.

    Parameters
    ----------
    X : numpy.ndarray
        Shape (n, K) features (centred and usually standardised unless ``center``
        and ``scale`` are given).
    y : numpy.ndarray
        Shape (n,), centred targets.
    alphas : sequence of float
        Penalties (>= 0).
    center, scale : numpy.ndarray, optional
        Shape (K,): standardisation applied to ``X``.

    Returns
    -------
    W : numpy.ndarray
        Shape (len(alphas), K): one coefficient vector per penalty.
    eigenvalues : numpy.ndarray
        Shape (K,): spectrum of ``X.T X / n`` (for diagnostics).

    Shapes
    ------
    X: (n, K), y: (n,) -> (len(alphas), K), (K,)
    """
    n, K = X.shape

    def standardised(rows: slice) -> np.ndarray:
        Z = np.asarray(X[rows], dtype=np.float64)
        if center is not None or scale is not None:
            Z = (Z - (0.0 if center is None else center)) / (1.0 if scale is None else scale)
        return Z

    def inverse(evals: np.ndarray, proj: np.ndarray, a: float) -> np.ndarray:
        if a > 0:
            return proj / (evals + a)
        return np.where(evals > 1e-12 * evals.max(), proj / np.maximum(evals, 1e-300), 0.0)

    if n < K:
        # Fewer samples than features: the same solutions from the n x n Gram matrix,
        # w = Z^T (Z Z^T / n + alpha)^-1 y / n, much cheaper than a K x K eigenproblem.
        Z = standardised(slice(None))
        evals, U = np.linalg.eigh(Z @ Z.T / n)
        evals = np.clip(evals, 0.0, None)
        proj = U.T @ y / n
        W = np.stack([Z.T @ (U @ inverse(evals, proj, a)) for a in alphas])
        spectrum = np.concatenate([np.zeros(K - n), evals])
        return W, spectrum
    gram, xty = np.zeros((K, K)), np.zeros(K)
    for s in range(0, n, _ROWS):
        Z = standardised(slice(s, s + _ROWS))
        gram += Z.T @ Z
        xty += Z.T @ y[s:s + _ROWS]
    evals, evecs = np.linalg.eigh(gram / n)
    evals = np.clip(evals, 0.0, None)  # round-off can make a null direction slightly negative
    proj = evecs.T @ (xty / n)
    W = np.stack([evecs @ inverse(evals, proj, a) for a in alphas])
    return W, evals


def fit_ridge(Z: np.ndarray, y: np.ndarray, alphas: Sequence[float]
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Standardise the features, centre the targets and solve the ridge for each penalty.

    Parameters
    ----------
    Z : numpy.ndarray
        Features.
    y : numpy.ndarray
        Targets.
    alphas : sequence of float
        Penalties (>= 0).

    Returns
    -------
    W : numpy.ndarray
        Coefficients on the standardised features, one row per penalty.
    mean, scale : numpy.ndarray
        The standardisation.
    intercept : float
        The mean target.

    Shapes
    ------
    Z: (n, K), y: (n,) -> (len(alphas), K), (K,), (K,), ()
    """
    mean, scale = column_standardisation(Z)
    y0 = float(y.mean())
    W, _ = ridge_path(Z, y - y0, alphas, center=mean, scale=scale)
    return W, mean, scale, y0


def validation_mae(Z: np.ndarray, y: np.ndarray, alphas: Sequence[float], Z_val: np.ndarray,
                   y_val: np.ndarray) -> np.ndarray:
    """Mean absolute error on a validation set of the ridge fitted with each penalty.

    Parameters
    ----------
    Z, y : numpy.ndarray
        Training features and targets.
    alphas : sequence of float
        Penalties.
    Z_val, y_val : numpy.ndarray
        Validation features and targets.

    Returns
    -------
    numpy.ndarray
        One error per penalty.

    Shapes
    ------
    Z: (n, K), y: (n,), Z_val: (m, K), y_val: (m,) -> (len(alphas),)
    """
    W, mean, scale, y0 = fit_ridge(Z, y, alphas)
    return np.abs(((Z_val - mean) / scale) @ W.T + y0 - y_val[:, None]).mean(axis=0)


def cross_validation_mae(Z: np.ndarray, y: np.ndarray, alphas: Sequence[float], cv: int,
                         random_state: int) -> np.ndarray:
    """Mean absolute error of each penalty over ``cv`` random folds.

    Parameters
    ----------
    Z, y : numpy.ndarray
        Features and targets.
    alphas : sequence of float
        Penalties.
    cv : int
        Folds (at least 2, at most the number of samples).
    random_state : int
        Seed of the split into folds.

    Returns
    -------
    numpy.ndarray
        One error per penalty, over all samples.

    Shapes
    ------
    Z: (n, K), y: (n,) -> (len(alphas),)
    """
    n = Z.shape[0]
    mae = np.zeros(len(alphas))
    for fold in np.array_split(np.random.default_rng(random_state).permutation(n), cv):
        train = np.setdiff1d(np.arange(n), fold)
        W, mean, scale, y0 = fit_ridge(Z[train], y[train], alphas)
        mae += np.abs(((Z[fold] - mean) / scale) @ W.T + y0 - y[fold, None]).sum(axis=0)
    return mae / n
