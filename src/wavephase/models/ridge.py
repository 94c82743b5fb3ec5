"""Ridge regression for many penalties at once, on features too large to standardise in one piece.

The penalty is per sample (``mean((y - Z w)**2) + alpha ||w||**2``), so a penalty
chosen on one training size means the same on another. Every pass over the
features goes by blocks of rows, so the temporaries stay ``_ROWS * K`` floats
whatever the number of samples, and float32 features are never copied whole to
float64. :class:`RidgeStatistics` holds all a fit needs (a float64 Gram matrix,
sums, ranges) and is accumulated from blocks that may come one at a time from
disk: the features themselves need never be in memory at once.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["RidgeStatistics", "column_standardisation", "cross_validation_mae", "fit_ridge", "ridge_path",
           "ridge_predict", "validation_mae"]

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
    return mean, _unit_scale(var, mean)


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

    if n < K:
        # Fewer samples than features: the same solutions from the n x n Gram matrix,
        # w = Z^T (Z Z^T / n + alpha)^-1 y / n, much cheaper than a K x K eigenproblem.
        Z = standardised(slice(None))
        evals, U = np.linalg.eigh(Z @ Z.T / n)
        evals = np.clip(evals, 0.0, None)
        proj = U.T @ y / n
        W = np.stack([Z.T @ (U @ _spectral_inverse(evals, proj, a)) for a in alphas])
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
    W = np.stack([evecs @ _spectral_inverse(evals, proj, a) for a in alphas])
    return W, evals


def _spectral_inverse(evals: np.ndarray, proj: np.ndarray, a: float) -> np.ndarray:
    """``proj / (evals + a)``; without a penalty, the pseudo-inverse (null directions get zero)."""
    if a > 0:
        return proj / (evals + a)
    return np.where(evals > 1e-12 * evals.max(), proj / np.maximum(evals, 1e-300), 0.0)


def _unit_scale(var: np.ndarray, mean: np.ndarray) -> np.ndarray:
    scale = np.sqrt(np.clip(var, 0.0, None))
    # Constant features carry no information; a unit scale keeps them at exactly zero.
    return np.where(scale > 1e-12 * max(1.0, float(np.abs(mean).max(initial=0.0))), scale, 1.0)


def _solve_path(C: np.ndarray, b: np.ndarray, alphas: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Solutions of ``(C + alpha) w = b`` for each penalty; ``C`` is overwritten."""
    import scipy.linalg

    # evr returns the eigenvectors apart from C, with O(K) workspace (evd needs 2 K^2 more).
    evals, evecs = scipy.linalg.eigh(C, overwrite_a=True, check_finite=False, driver="evr")
    del C
    evals = np.clip(evals, 0.0, None)  # round-off can make a null direction slightly negative
    proj = evecs.T @ b
    W = np.empty((len(alphas), b.shape[0]))
    for i, a in enumerate(alphas):
        W[i] = evecs @ _spectral_inverse(evals, proj, a)
    return W, evals


class RidgeStatistics:
    """What a ridge fit needs from its data, accumulated block by block in float64.

    Rows are shifted by the mean of the first block before they are summed, so the
    centred Gram matrix ``sum (z - mean)(z - mean)^T`` comes out of one pass without
    the cancellation of ``sum z z^T - n mean mean^T``. Per-column minima and maxima
    are kept for the applicability domain of the fitted model.

    Parameters
    ----------
    n_features : int
        Columns ``K`` of the blocks.

    Attributes
    ----------
    n : int
        Rows seen.
    low, high : numpy.ndarray
        Shape (K,): column minima and maxima seen.

    Shapes
    ------
    update(Z: (m, K), y: (m,)); gram (K, K) float64
    """

    def __init__(self, n_features: int) -> None:
        K = int(n_features)
        self.n = 0
        self._shift: np.ndarray | None = None
        self._yshift = 0.0
        self._sum, self._xty = np.zeros(K), np.zeros(K)
        self._ysum = 0.0
        self.gram = np.zeros((K, K))
        self.low, self.high = np.full(K, np.inf), np.full(K, -np.inf)

    def update(self, Z: np.ndarray, y: np.ndarray) -> "RidgeStatistics":
        """Add rows (any float dtype; converted to float64 ``_ROWS`` rows at a time).

        Parameters
        ----------
        Z : numpy.ndarray
            Shape (m, K) features.
        y : numpy.ndarray
            Shape (m,) targets.

        Returns
        -------
        RidgeStatistics
            ``self``.
        """
        y = np.asarray(y, dtype=np.float64)
        for s in range(0, Z.shape[0], _ROWS):
            D = np.array(Z[s:s + _ROWS], dtype=np.float64)  # a copy: shifted in place below
            if self._shift is None:
                self._shift, self._yshift = D.mean(axis=0), float(y[s:s + _ROWS].mean())
            self.low = np.minimum(self.low, D.min(axis=0))
            self.high = np.maximum(self.high, D.max(axis=0))
            D -= self._shift
            e = y[s:s + _ROWS] - self._yshift
            self._sum += D.sum(axis=0)
            self._ysum += float(e.sum())
            self.gram += D.T @ D
            self._xty += D.T @ e
            self.n += D.shape[0]
        return self

    def standardisation(self) -> tuple[np.ndarray, np.ndarray, float]:
        """Column means and spreads (as :func:`column_standardisation`) and the mean target.

        Returns
        -------
        mean, scale : numpy.ndarray
            Shape (K,), float64.
        y0 : float
            Mean target.
        """
        if self.n < 2 or self._shift is None:
            raise ValueError(f"a ridge fit needs at least 2 rows; {self.n} were given.")
        d = self._sum / self.n
        mean = self._shift + d
        return mean, _unit_scale(np.diag(self.gram) / self.n - d * d, mean), self._yshift + self._ysum / self.n

    def standardised_covariance(self) -> np.ndarray:
        """Correlation-like matrix ``Z_s^T Z_s / n`` of the standardised columns (a new array).

        Returns
        -------
        numpy.ndarray
            Shape (K, K), float64.
        """
        mean, scale, _ = self.standardisation()
        d = self._sum / self.n
        C = self.gram / self.n
        C -= np.outer(d, d)
        C /= scale[:, None]
        C /= scale[None, :]
        return C

    def solve(self, alphas: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """Ridge coefficients on the standardised features, one row per penalty.

        Returns
        -------
        W : numpy.ndarray
            Shape (len(alphas), K).
        mean, scale : numpy.ndarray
            Shape (K,): the standardisation.
        intercept : float
            The mean target.
        """
        mean, scale, y0 = self.standardisation()
        d = self._sum / self.n
        b = (self._xty / self.n - d * (self._ysum / self.n)) / scale
        W, _ = _solve_path(self.standardised_covariance(), b, alphas)
        return W, mean, scale, y0


def fit_ridge(Z: np.ndarray, y: np.ndarray, alphas: Sequence[float]
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Standardise the features, centre the targets and solve the ridge for each penalty.

    With at least as many rows as columns, one blocked pass accumulates
    :class:`RidgeStatistics` (a float64 ``K x K`` Gram matrix; the features stay in
    their dtype); with fewer, the ``n x n`` dual problem of :func:`ridge_path`.

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
    if Z.shape[0] >= Z.shape[1]:
        return RidgeStatistics(Z.shape[1]).update(Z, y).solve(alphas)
    mean, scale = column_standardisation(Z)
    y0 = float(y.mean())
    W, _ = ridge_path(Z, y - y0, alphas, center=mean, scale=scale)
    return W, mean, scale, y0


def ridge_predict(Z: np.ndarray, W: np.ndarray, mean: np.ndarray, scale: np.ndarray, y0: float) -> np.ndarray:
    """Predictions of the ridge solutions of :func:`fit_ridge`, block by block in float64.

    Parameters
    ----------
    Z : numpy.ndarray
        Features (any float dtype).
    W : numpy.ndarray
        Coefficients, one row per penalty.
    mean, scale : numpy.ndarray
        The standardisation.
    y0 : float
        The intercept.

    Returns
    -------
    numpy.ndarray
        One column of predictions per penalty.

    Shapes
    ------
    Z: (n, K), W: (p, K) -> (n, p)
    """
    out = np.empty((Z.shape[0], W.shape[0]))
    for s in range(0, Z.shape[0], _ROWS):
        out[s:s + _ROWS] = ((np.asarray(Z[s:s + _ROWS], dtype=np.float64) - mean) / scale) @ W.T + y0
    return out


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
    return np.abs(ridge_predict(Z_val, *fit_ridge(Z, y, alphas)) - y_val[:, None]).mean(axis=0)


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
        mae += np.abs(ridge_predict(Z[fold], W, mean, scale, y0) - y[fold, None]).sum(axis=0)
    return mae / n
