"""Molecular energies from invariant features: ridge regression with forces by autograd.

* :class:`MoleculeEnergyRegressor` — scikit-learn style estimator: invariant
  features of ``(positions, charges)`` (by default :func:`qm9_invariants`: the
  solid-harmonic 3D scattering and the atom-centred wavelet spectra) → optional
  square-root expansion → standardisation → ridge
  regression, the ridge penalty chosen on a validation set (or by K-fold
  cross-validation when none is given). The model stays *linear in the
  invariants*: any non-linearity comes from the transform (its q-exponents) or
  the fixed square-root expansion.
* :class:`MoleculeEnergyModel` — the fitted predictor re-expressed as a torch
  ``nn.Module`` (transform, standardiser and linear map), so that forces
  ``-dE/dpositions`` come from autograd through every stage.
* :func:`run_qm9` — QM9 end to end: data, cached features (through
  :func:`wavephase.distributed.extract_features`), fit, test MAE/RMSE, learning
  curve, parity plot, forces on one molecule with a finite-difference check.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from torch import nn
from tqdm.auto import tqdm

from wavephase.validation import as_float_tensor, check_positive_int

__all__ = [
    "FEATURE_MAPS",
    "QM9_PRESETS",
    "expand_features",
    "QuadraticTerms",
    "MoleculeEnergyModel",
    "MoleculeEnergyRegressor",
    "ridge_path",
    "qm9_invariants",
    "run_qm9",
]

FEATURE_MAPS = ("linear", "linear+sqrt", "quadratic")
# Offset inside the square root: keeps the derivative finite (1 / (2 sqrt(eps))) for
# invariants at or near zero, which padding and isolated atoms produce.
_SQRT_EPS = 1e-6


def expand_features(features: torch.Tensor, feature_map: str) -> torch.Tensor:
    """Apply the fixed feature expansion of the regressor.

    Parameters
    ----------
    features : torch.Tensor
        Shape (..., K) invariants.
    feature_map : str
        ``"linear"`` (identity) or ``"linear+sqrt"`` (append
        ``sign(x) (sqrt(|x| + eps) - sqrt(eps))``, a smooth square root). The
        ``"quadratic"`` map of the regressor is ``"linear+sqrt"`` followed by a
        fitted :class:`QuadraticTerms`.

    Returns
    -------
    torch.Tensor
        Shape (..., K) or (..., 2K).
    """
    if feature_map == "linear":
        return features
    if feature_map == "linear+sqrt":
        root = torch.sign(features) * (torch.sqrt(features.abs() + _SQRT_EPS) - math.sqrt(_SQRT_EPS))
        return torch.cat([features, root], dim=-1)
    raise ValueError(f"feature_map must be one of {FEATURE_MAPS[:2]}, got {feature_map!r}.")


# Rows per block in the ridge's passes over the features: bounds the temporaries to
# ``_ROWS * K`` floats whatever the training set size.
_ROWS = 8192


def _standardisation(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and spreads of ``(n, K)`` features; constant columns get a unit spread."""
    mean = Z.mean(axis=0, dtype=np.float64)
    var = sum(((Z[s:s + _ROWS] - mean) ** 2).sum(axis=0) for s in range(0, Z.shape[0], _ROWS)) / Z.shape[0]
    scale = np.sqrt(var)
    # Constant invariants carry no information; a unit scale keeps them at exactly zero.
    scale = np.where(scale > 1e-12 * max(1.0, float(np.abs(mean).max(initial=0.0))), scale, 1.0)
    return mean, scale


class QuadraticTerms(nn.Module):
    """Append the pairwise products of the leading whitened principal components.

    A multilinear regression in the sense of Eickenberg et al. (2018): the model
    stays linear in its weights, over the invariants and the products
    ``u_i u_j`` (``i <= j``) of ``u = ((z - center) / spread) @ projection``, the
    ``k`` leading principal components of the training invariants, whitened.

    Parameters
    ----------
    center, spread : torch.Tensor
        Shape (K,): standardisation of the invariants.
    projection : torch.Tensor
        Shape (K, k): whitened principal directions.

    Shapes
    ------
    z: (..., K) -> (..., K + k (k + 1) / 2)
    """

    def __init__(self, center: torch.Tensor, spread: torch.Tensor, projection: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("center", torch.as_tensor(center, dtype=torch.float64).clone())
        self.register_buffer("spread", torch.as_tensor(spread, dtype=torch.float64).clone())
        self.register_buffer("projection", torch.as_tensor(projection, dtype=torch.float64).clone())
        k = self.projection.shape[1]
        self.register_buffer("pairs", torch.triu_indices(k, k))

    @classmethod
    def fit(cls, Z: np.ndarray, n_components: int) -> "QuadraticTerms":
        """Principal directions of training invariants.

        Parameters
        ----------
        Z : numpy.ndarray
            Shape (n, K) training invariants (already expanded).
        n_components : int
            Components ``k`` kept (at most ``K``).

        Returns
        -------
        QuadraticTerms
        """
        k = min(check_positive_int(n_components, "n_components"), Z.shape[1])
        center, spread = _standardisation(Z)
        S = (Z - center) / spread
        evals, evecs = np.linalg.eigh(S.T @ S / S.shape[0])
        top = np.argsort(evals)[::-1][:k]
        projection = evecs[:, top] / np.sqrt(np.maximum(evals[top], 1e-12 * evals.max()))
        return cls(torch.from_numpy(center), torch.from_numpy(spread), torch.from_numpy(projection))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Invariants followed by the products of their leading components.

        Parameters
        ----------
        z : torch.Tensor
            Shape (..., K).

        Returns
        -------
        torch.Tensor
            Shape (..., K + k (k + 1) / 2), dtype of ``z``.
        """
        dt = z.dtype
        u = ((z - self.center.to(dt)) / self.spread.to(dt)) @ self.projection.to(dt)
        return torch.cat([z, u[..., self.pairs[0]] * u[..., self.pairs[1]]], dim=-1)


# Invariants for QM9: keyword arguments of SolidHarmonicScattering3D ("scattering") and
# of SolidHarmonicAtomSpectrum ("spectrum"), None to leave one out. Measured cost and test
# MAE on all of QM9 (110k training molecules, linear ridge) are in BENCHMARKS.md: "fast"
# (the spectra, 3.3 ms per molecule on one core, plus a first-order scattering: J=2, L=2,
# coarse grid, 3.5 ms) 0.84 kcal/mol; "cpu" (the spectra plus the scattering defaults with
# grid step 0.8 instead of 0.6 and margin 4, 21 ms) 0.83; "full" (the scattering's own
# defaults, 74 ms); the spectra alone 0.85, the "cpu" scattering alone 3.85.
QM9_PRESETS: dict[str, dict[str, dict[str, Any] | None]] = {
    "fast": {"scattering": {"J": 2, "L": 2, "max_order": 1, "grid_step": 1.0}, "spectrum": {}},
    "cpu": {"scattering": {"grid_step": 0.8, "margin": 4.0}, "spectrum": {}},
    "full": {"scattering": {}, "spectrum": {}},
    "spectrum": {"scattering": None, "spectrum": {}},
    "scattering": {"scattering": {"grid_step": 0.8, "margin": 4.0}, "spectrum": None},
}


def qm9_invariants(preset: str | dict[str, dict[str, Any] | None] = "fast", *, chunk_size: int | None = None,
                   dtype: torch.dtype | None = None) -> nn.Module:
    """The invariant transform of a QM9 preset.

    Parameters
    ----------
    preset : str or dict
        A name of :data:`QM9_PRESETS`, or settings in its format:
        ``{"scattering": kwargs or None, "spectrum": kwargs or None}``.
    chunk_size : int, optional
        Molecules each part processes together.
    dtype : torch.dtype, optional
        Precision of every part (default: theirs, float32).

    Returns
    -------
    wavephase.scattering.concat.ConcatInvariants
        Parts ``"scattering"`` (:class:`~wavephase.scattering.solid_harmonic3d.SolidHarmonicScattering3D`)
        and/or ``"spectrum"`` (:class:`~wavephase.scattering.atom_spectrum.SolidHarmonicAtomSpectrum`);
        ``(positions (..., A, 3), charges (..., A)) -> (..., K)``.
    """
    from wavephase.scattering.atom_spectrum import SolidHarmonicAtomSpectrum
    from wavephase.scattering.concat import ConcatInvariants
    from wavephase.scattering.solid_harmonic3d import SolidHarmonicScattering3D

    if isinstance(preset, str):
        if preset not in QM9_PRESETS:
            raise ValueError(f"preset must be one of {tuple(QM9_PRESETS)}, got {preset!r}.")
        settings = QM9_PRESETS[preset]
    else:
        settings = preset
    parts_known = ("scattering", "spectrum")
    if not isinstance(settings, dict) or set(settings) - set(parts_known) or all(
            settings.get(k) is None for k in parts_known):
        raise ValueError(f"preset settings must be {{'scattering': kwargs or None, 'spectrum': kwargs or None}} with "
                         f"at least one part, got {preset!r}.")
    common = {k: v for k, v in (("chunk_size", chunk_size), ("dtype", dtype)) if v is not None}
    parts = {name: cls(**kwargs, **common) for name, cls in (("scattering", SolidHarmonicScattering3D),
                                                            ("spectrum", SolidHarmonicAtomSpectrum))
             if (kwargs := settings.get(name)) is not None}
    return ConcatInvariants(**parts)


def _check_molecules(positions: Any, charges: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Convert and check ``positions`` (..., A, 3) and ``charges`` (..., A)."""
    pos = as_float_tensor(positions, "positions")
    if pos.ndim < 2 or pos.shape[-1] != 3:
        raise ValueError(f"positions must have shape (..., A, 3) in Å, got {tuple(pos.shape)}.")
    if isinstance(charges, torch.Tensor):
        ch = charges
    else:
        arr = np.asarray(charges)
        if arr.dtype == object or np.iscomplexobj(arr):
            raise TypeError("charges must be a real numeric array of atomic numbers.")
        ch = torch.from_numpy(np.ascontiguousarray(arr))
    if ch.is_complex() or ch.dtype == torch.bool:
        raise TypeError(f"charges must hold atomic numbers (int or float), got dtype {ch.dtype}.")
    if tuple(ch.shape) != tuple(pos.shape[:-1]):
        raise ValueError(
            f"charges must have shape positions.shape[:-1] = {tuple(pos.shape[:-1])} (one atomic number per "
            f"atom, 0 = padding), got {tuple(ch.shape)}."
        )
    if ch.is_floating_point() and not bool(torch.isfinite(ch).all()):
        raise ValueError("charges contains NaN or inf; use 0 for padding atoms.")
    if ch.numel() and bool((ch < 0).any()):
        raise ValueError("charges must be >= 0 (atomic numbers, 0 = padding).")
    return pos, ch.to(device=pos.device, dtype=pos.dtype)


class MoleculeEnergyModel(nn.Module):
    """Fitted energy predictor as a differentiable torch module.

    ``E = w · ((phi(S(positions, charges)) - mean) / scale) + b`` with ``S`` the
    invariant transform and ``phi`` the expansion (:func:`expand_features`, then
    ``quadratic`` if given).

    Parameters
    ----------
    transform : nn.Module or callable
        Maps positions (B, A, 3) and charges (B, A) to invariants (B, K).
    mean, scale : torch.Tensor
        Shape (K',): standardisation of the expanded features.
    weight : torch.Tensor
        Shape (K',): ridge coefficients on the standardised features.
    bias : float
        Intercept (mean training energy).
    feature_map : str
        One of :data:`FEATURE_MAPS`.
    quadratic : QuadraticTerms, optional
        Fitted products, required by (and only used with) ``feature_map="quadratic"``.
    """

    def __init__(self, transform: Callable[..., torch.Tensor], mean: torch.Tensor, scale: torch.Tensor,
                 weight: torch.Tensor, bias: float, feature_map: str = "linear",
                 quadratic: QuadraticTerms | None = None) -> None:
        super().__init__()
        if (feature_map == "quadratic") != (quadratic is not None):
            raise ValueError("quadratic terms go with feature_map='quadratic' and only with it.")
        self.transform = transform
        self.feature_map = feature_map
        self.quadratic = quadratic
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float64).clone())
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float64).clone())
        self.register_buffer("weight", torch.as_tensor(weight, dtype=torch.float64).clone())
        self.register_buffer("bias", torch.tensor(float(bias), dtype=torch.float64))

    def energy_from_features(self, features: torch.Tensor) -> torch.Tensor:
        """Energies from precomputed invariants.

        Parameters
        ----------
        features : torch.Tensor
            Shape (..., K).

        Returns
        -------
        torch.Tensor
            Shape (...,), same dtype as ``features``.
        """
        z = _expand(features, self.feature_map, self.quadratic)
        if z.shape[-1] != self.weight.shape[0]:
            raise ValueError(f"features have {features.shape[-1]} columns, which is not the fitted transform's "
                             f"output size; use features of the transform this model was fitted with.")
        dt = features.dtype
        return ((z - self.mean.to(dt)) / self.scale.to(dt)) @ self.weight.to(dt) + self.bias.to(dt)

    def forward(self, positions: torch.Tensor, charges: torch.Tensor) -> torch.Tensor:
        """Predict energies.

        Parameters
        ----------
        positions : torch.Tensor
            Shape (..., A, 3), Å.
        charges : torch.Tensor
            Shape (..., A), atomic numbers, 0 = padding.

        Returns
        -------
        torch.Tensor
            Shape (...,) energies in the units of the training targets.
        """
        pos, ch = _check_molecules(positions, charges)
        lead = pos.shape[:-2]
        feats = self.transform(pos.reshape(-1, *pos.shape[-2:]), ch.reshape(-1, ch.shape[-1]))
        return self.energy_from_features(feats.to(pos.dtype)).reshape(lead)


def _expand(features: torch.Tensor, feature_map: str, quadratic: QuadraticTerms | None) -> torch.Tensor:
    """The regressor's full expansion: :func:`expand_features`, then the fitted products."""
    if feature_map != "quadratic":
        return expand_features(features, feature_map)
    z = expand_features(features, "linear+sqrt")
    if quadratic is None or z.shape[-1] != quadratic.center.shape[0]:
        raise ValueError(f"features have {features.shape[-1]} columns, which is not the fitted transform's output "
                         "size; use features of the transform this model was fitted with.")
    return quadratic(z)


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


class MoleculeEnergyRegressor(BaseEstimator, RegressorMixin):
    """Energy regression, linear in invariant features, with forces by autograd.

    Parameters
    ----------
    transform : nn.Module, optional
        Maps positions (B, A, 3) Å and charges (B, A) to invariants (B, K);
        default ``qm9_invariants("fast")`` (first-order scattering and atom-centred spectra).
    alphas : array-like of float
        Ridge penalties tried (per-sample penalty on standardised features). On
        all of QM9 the validation picks the smallest ones: 1e-12 gave a test MAE
        of 3.19 kcal/mol where 1e-8 gave 3.54 (full preset, ``"linear+sqrt"``).
    feature_map : str
        ``"linear"``, ``"linear+sqrt"`` (invariants and their smooth square
        roots) or ``"quadratic"`` (``"linear+sqrt"`` plus the pairwise products of
        its ``n_components`` leading whitened principal components, see
        :class:`QuadraticTerms`). The model is linear in its weights in every case.
    cv : int
        Folds of the cross-validation used when ``fit`` gets no validation set.
    batch_size : int
        Molecules per transform call.
    progress : bool
        Show a progress bar while computing features.
    n_components : int
        Principal components multiplied pairwise by ``feature_map="quadratic"``.

    Attributes
    ----------
    alpha_ : float
        Selected penalty.
    scores_ : dict
        Validation (or cross-validation) MAE for each penalty.
    model_ : MoleculeEnergyModel
        The fitted predictor as a torch module.
    """

    def __init__(self, transform: nn.Module | None = None, alphas: Sequence[float] = np.logspace(-12, 2, 15),
                 feature_map: str = "linear", cv: int = 5, batch_size: int = 256, progress: bool = False,
                 n_components: int = 64) -> None:
        self.transform = transform
        self.alphas = alphas
        self.feature_map = feature_map
        self.n_components = n_components
        self.cv = cv
        self.batch_size = batch_size
        self.progress = progress

    # -- features ---------------------------------------------------------------------------------

    def _transform(self) -> nn.Module:
        # The default is built once and kept as transform_, leaving the constructor
        # parameter untouched (scikit-learn's get_params/clone contract).
        if self.transform is not None:
            return self.transform
        if getattr(self, "transform_", None) is None:
            self.transform_ = qm9_invariants()
        return self.transform_

    def compute_features(self, positions: Any, charges: Any) -> np.ndarray:
        """Invariants of a set of molecules, in batches, without gradients.

        Parameters
        ----------
        positions : array-like
            Shape (n, A, 3), Å.
        charges : array-like
            Shape (n, A), atomic numbers, 0 = padding.

        Returns
        -------
        numpy.ndarray
            Shape (n, K) float64.
        """
        pos, ch = _check_molecules(positions, charges)
        if pos.ndim != 3:
            raise ValueError(f"positions must have shape (n, A, 3), got {tuple(pos.shape)}.")
        bs = check_positive_int(self.batch_size, "batch_size")
        transform = self._transform()
        out = []
        with torch.no_grad():
            for s in tqdm(range(0, pos.shape[0], bs), disable=not self.progress, desc="invariants", unit="batch"):
                out.append(transform(pos[s:s + bs], ch[s:s + bs]).detach().to("cpu", torch.float64).numpy())
        return np.concatenate(out) if out else np.zeros((0, 0))

    def _features(self, positions: Any, charges: Any, features: Any, what: str) -> np.ndarray:
        if features is None:
            if positions is None or charges is None:
                raise ValueError(f"{what}: pass positions and charges, or precomputed features=.")
            return self.compute_features(positions, charges)
        F = np.asarray(features)
        if F.dtype != np.float32:
            F = np.asarray(F, dtype=np.float64)
        if F.ndim != 2:
            raise ValueError(f"{what}: features must have shape (n, K), got {F.shape}.")
        if not np.all(np.isfinite(F)):
            raise ValueError(f"{what}: features contain NaN or inf; recompute them.")
        return F

    def _expand(self, F: np.ndarray) -> np.ndarray:
        return _expand(torch.from_numpy(F), self.feature_map, getattr(self, "quadratic_", None)).numpy()

    # -- fit / predict ----------------------------------------------------------------------------

    def fit(self, positions: Any, charges: Any, energies: Any, *, validation: tuple | None = None,
            features: Any = None, validation_features: Any = None) -> "MoleculeEnergyRegressor":
        """Fit the standardiser and the ridge model; choose the penalty.

        Parameters
        ----------
        positions : array-like or None
            Shape (n, A, 3) Å (may be None when ``features`` is given).
        charges : array-like or None
            Shape (n, A) atomic numbers, 0 = padding.
        energies : array-like
            Shape (n,) targets (e.g. atomization energies in kcal/mol).
        validation : tuple, optional
            ``(positions, charges, energies)`` of a validation set; the penalty with
            the lowest validation MAE is kept. Without it, ``cv``-fold
            cross-validation picks the penalty. With ``validation_features`` the
            positions and charges of the tuple may be None.
        features : array-like, optional
            Shape (n, K) precomputed invariants of the training molecules; float32 ones are
            kept in float32 (the ridge works in float64 block by block).
        validation_features : array-like, optional
            Shape (n_val, K) precomputed invariants of the validation molecules.

        Returns
        -------
        MoleculeEnergyRegressor
            ``self``.
        """
        if self.feature_map not in FEATURE_MAPS:
            raise ValueError(f"feature_map must be one of {FEATURE_MAPS}, got {self.feature_map!r}.")
        alphas = np.asarray(self.alphas, dtype=np.float64).ravel()
        if alphas.size == 0 or np.any(~np.isfinite(alphas)) or np.any(alphas < 0):
            raise ValueError(f"alphas must be a non-empty list of finite penalties >= 0, got {self.alphas!r}.")
        F = self._features(positions, charges, features, "fit")
        quadratic = self.feature_map == "quadratic"
        if quadratic:
            F = F.astype(np.float64, copy=False)
        y = np.asarray(energies, dtype=np.float64).ravel()
        if y.shape[0] != F.shape[0]:
            raise ValueError(f"energies has {y.shape[0]} entries for {F.shape[0]} molecules.")
        if not np.all(np.isfinite(y)):
            raise ValueError("energies contain NaN or inf.")
        if F.shape[0] < 2:
            raise ValueError(f"fit needs at least 2 molecules, got {F.shape[0]}.")
        base = expand_features(torch.from_numpy(F), "linear+sqrt" if quadratic else self.feature_map)
        self.quadratic_ = QuadraticTerms.fit(base.numpy(), self.n_components) if quadratic else None
        Z = (self.quadratic_(base) if quadratic else base).numpy()
        if validation is not None:
            if len(validation) != 3:
                raise ValueError("validation must be a tuple (positions, charges, energies).")
            Fv = self._features(validation[0], validation[1], validation_features, "validation")
            yv = np.asarray(validation[2], dtype=np.float64).ravel()
            if yv.shape[0] != Fv.shape[0] or Fv.shape[1] != F.shape[1]:
                raise ValueError(f"validation: {Fv.shape[0]} molecules with {Fv.shape[1]} invariants for "
                                 f"{yv.shape[0]} energies; training has {F.shape[1]} invariants.")
            W, mean, scale, y0 = self._solve(Z, y, alphas)
            mae = np.abs(((self._expand(Fv) - mean) / scale) @ W.T + y0 - yv[:, None]).mean(axis=0)
        else:
            k = check_positive_int(self.cv, "cv", minimum=2)
            if F.shape[0] < k:
                raise ValueError(f"cross-validation with cv={k} needs at least {k} molecules; pass validation=.")
            folds = np.array_split(np.random.default_rng(0).permutation(F.shape[0]), k)
            mae = np.zeros(alphas.size)
            for fold in folds:
                train = np.setdiff1d(np.arange(F.shape[0]), fold)
                W, mean, scale, y0 = self._solve(Z[train], y[train], alphas)
                mae += np.abs(((Z[fold] - mean) / scale) @ W.T + y0 - y[fold, None]).sum(axis=0)
            mae /= F.shape[0]
        best = int(np.argmin(mae))
        self.alpha_ = float(alphas[best])
        self.scores_ = {float(a): float(m) for a, m in zip(alphas, mae)}
        W, mean, scale, y0 = self._solve(Z, y, alphas[best:best + 1])
        self.n_features_in_ = F.shape[1]
        self.model_ = MoleculeEnergyModel(self._transform(), torch.from_numpy(mean), torch.from_numpy(scale),
                                          torch.from_numpy(W[0]), y0, self.feature_map, self.quadratic_)
        return self

    @staticmethod
    def _solve(Z: np.ndarray, y: np.ndarray, alphas: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        mean, scale = _standardisation(Z)
        y0 = float(y.mean())
        W, _ = ridge_path(Z, y - y0, alphas, center=mean, scale=scale)
        return W, mean, scale, y0

    def _check_fitted(self) -> MoleculeEnergyModel:
        if not hasattr(self, "model_"):
            raise RuntimeError("this MoleculeEnergyRegressor is not fitted yet; call fit(...) first.")
        return self.model_

    def predict(self, positions: Any = None, charges: Any = None, *, features: Any = None) -> np.ndarray:
        """Predict energies.

        Parameters
        ----------
        positions : array-like, optional
            Shape (n, A, 3) Å.
        charges : array-like, optional
            Shape (n, A) atomic numbers.
        features : array-like, optional
            Shape (n, K) precomputed invariants (instead of positions and charges).

        Returns
        -------
        numpy.ndarray
            Shape (n,) float64.
        """
        model = self._check_fitted()
        F = self._features(positions, charges, features, "predict")
        if F.shape[1] != self.n_features_in_:
            raise ValueError(f"predict: features have {F.shape[1]} columns, the model was fitted on "
                             f"{self.n_features_in_}.")
        with torch.no_grad():
            # float64: the weights of a weakly penalised ridge cancel over thousands of terms.
            return model.energy_from_features(torch.from_numpy(F.astype(np.float64, copy=False))).numpy()

    def predict_forces(self, positions: Any, charges: Any) -> torch.Tensor:
        """Forces ``-dE/dpositions`` by autograd through transform, standardiser and linear map.

        Parameters
        ----------
        positions : array-like or torch.Tensor
            Shape (..., A, 3) Å; use float64 for finite-difference comparisons.
        charges : array-like or torch.Tensor
            Shape (..., A) atomic numbers, 0 = padding.

        Returns
        -------
        torch.Tensor
            Shape (..., A, 3), energy units per Å (kcal/mol/Å for QM9 targets);
            zero on padding atoms.
        """
        model = self._check_fitted()
        pos, ch = _check_molecules(positions, charges)
        pos = pos.detach().clone().requires_grad_(True)
        energy = model(pos, ch)
        (grad,) = torch.autograd.grad(energy.sum(), pos)
        return -grad * (ch > 0).unsqueeze(-1).to(grad.dtype)


# -- QM9 end to end ------------------------------------------------------------------------------

_CURVE_SIZES = (1_000, 10_000, 110_000)


def _qm9_sizes(limit: int | None, train_size: int | None) -> tuple[int, int, int]:
    """(train, validation, test) sizes: the full split, or ``limit`` molecules split 70/10/20."""
    from wavephase.data.qm9 import SPLIT_SIZES

    n_train_max, n_val, n_test = SPLIT_SIZES[0], SPLIT_SIZES[1], 10_831
    if limit is not None:
        limit = check_positive_int(limit, "limit", minimum=20)
        n_test = min(n_test, max(1, round(0.2 * limit)))
        n_val = min(n_val, max(1, round(0.1 * limit)))
        n_train_max = min(n_train_max, limit - n_test - n_val)
    if train_size is None:
        train_size = n_train_max
    train_size = check_positive_int(train_size, "train_size", minimum=2)
    if train_size > n_train_max:
        raise ValueError(f"train_size={train_size} exceeds the {n_train_max} training molecules available"
                         f"{'' if limit is None else f' with limit={limit}'}; lower it or raise --limit.")
    return train_size, n_val, n_test


def _split_rows(n_train: int, n_val: int, n_test: int) -> dict[str, np.ndarray]:
    """Rows of a QM9 feature store (molecules in train, validation, test order) used by a run."""
    from wavephase.data.qm9 import SPLIT_SIZES

    v0, t0 = SPLIT_SIZES[0], SPLIT_SIZES[0] + SPLIT_SIZES[1]
    return {"train": np.arange(n_train), "validation": np.arange(v0, v0 + n_val), "test": np.arange(t0, t0 + n_test)}


def _force_check(model: MoleculeEnergyModel, positions: np.ndarray, charges: np.ndarray,
                 step: float = 1e-5) -> dict[str, Any]:
    """Autograd forces on one molecule against central finite differences, in float64.

    The step is small because grid-based invariants are only piecewise smooth: the
    sampling grid follows the bounding box, whose extreme atoms change at kinks
    that a QM9 atom may lie within ~1e-4 Å of.
    """
    import copy

    m64 = copy.deepcopy(model).double()
    if isinstance(m64.transform, nn.Module):
        for part in m64.transform.modules():
            if isinstance(getattr(part, "dtype", None), torch.dtype):
                part.dtype = torch.float64  # transforms (and their parts) that cast inputs to a working dtype
    n_atoms = int((charges > 0).sum())
    pos = torch.from_numpy(positions[:n_atoms].astype(np.float64))[None]
    ch = torch.from_numpy(charges[:n_atoms].astype(np.float64))[None]
    p = pos.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(m64(p, ch).sum(), p)
    forces = -grad[0]
    # All 2 * 3 * n_atoms displaced copies go through the transform as one batch.
    eye = torch.eye(3 * n_atoms, dtype=torch.float64).reshape(3 * n_atoms, n_atoms, 3) * step
    batch = torch.cat([pos + eye, pos - eye])
    with torch.no_grad():
        e = m64(batch, ch.expand(batch.shape[0], -1))
    fd = -((e[: 3 * n_atoms] - e[3 * n_atoms:]) / (2 * step)).reshape(n_atoms, 3)
    err = float((forces - fd).abs().max())
    return {
        "n_atoms": n_atoms,
        "forces_kcal_mol_per_angstrom": forces.tolist(),
        "finite_difference_step_angstrom": step,
        "max_abs_force": float(forces.abs().max()),
        "max_abs_error_vs_finite_difference": err,
        "relative_error_vs_finite_difference": err / max(float(fd.abs().max()), 1e-300),
        "norm_of_force_sum": float(forces.sum(0).norm()),
    }


def _plots(out: Path, y_true: np.ndarray, y_pred: np.ndarray, curve: list[dict[str, float]], mae: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.scatter(y_true, y_pred, s=3, alpha=0.4)
    lo, hi = float(min(y_true.min(), y_pred.min())), float(max(y_true.max(), y_pred.max()))
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    ax.set_xlabel("DFT atomization energy (kcal/mol)")
    ax.set_ylabel("predicted (kcal/mol)")
    ax.set_title(f"QM9 test, MAE {mae:.2f} kcal/mol")
    fig.tight_layout()
    fig.savefig(out / "parity.png", dpi=120)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    ax.loglog([c["train_size"] for c in curve], [c["mae_kcal_mol"] for c in curve], "o-")
    ax.set_xlabel("training molecules")
    ax.set_ylabel("test MAE (kcal/mol)")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "learning_curve.png", dpi=120)
    plt.close(fig)


def run_qm9(
    out_dir: str | os.PathLike[str],
    *,
    train_size: int | None = None,
    limit: int | None = None,
    scheduler: str | None = None,
    progress: bool = True,
    transform: nn.Module | None = None,
    preset: str = "fast",
    feature_map: str = "linear",
    chunk_size: int = 50,
    n_workers: int = 2,
    features_path: str | os.PathLike[str] | None = None,
    device: str = "cpu",
    batch_size: int | None = None,
) -> dict[str, Any]:
    """QM9 atomization energies from invariant features, end to end.

    Features of the molecules needed are computed (or read back) with
    :func:`wavephase.distributed.extract_features` into a zarr store kept under
    ``cache_dir("qm9")``, in the order of the fixed split (train, validation,
    test), so runs of any size share and extend one cache. The ridge penalty is
    chosen on the validation set; the test set is used once per training size.

    Parameters
    ----------
    out_dir : path-like
        Receives ``metrics.json``, ``parity.png`` and ``learning_curve.png``.
    train_size : int, optional
        Training molecules (a prefix of the fixed random training set); default all
        available (110,000, or 70 % of ``limit``).
    limit : int, optional
        Use only ``limit`` molecules in all: 70 % train, 10 % validation, 20 % test
        prefixes of the fixed split (for quick runs, e.g. ``limit=3000``).
    scheduler : str, optional
        Passed to :func:`~wavephase.distributed.extract_features` (``None``: local
        cluster; ``"tcp://HOST:PORT"``; ``"serial"``).
    progress : bool
        Progress bars.
    transform : nn.Module, optional
        Invariant transform; default ``qm9_invariants(preset)``.
    preset : str
        A name of :data:`QM9_PRESETS` (default ``"fast"``; ignored with ``transform``).
    feature_map : str
        ``"linear"`` (default), ``"linear+sqrt"`` or ``"quadratic"``, see
        :class:`MoleculeEnergyRegressor`. With the scattering alone (the former
        ``full`` preset, 110,000 training molecules) these gave 3.88 (penalties from
        1e-8), 3.19 and 2.19 kcal/mol test MAE; the spectra need no expansion (see
        BENCHMARKS.md).
    chunk_size : int
        Molecules per feature task (and zarr chunk).
    n_workers : int
        Local worker processes.
    features_path : path-like, optional
        Feature store (default: ``cache_dir("qm9")/features-<transform hash>.zarr``).
    device : str
        Where the transform runs (``"cuda"`` for a GPU, best with
        ``scheduler="serial"``); the features do not depend on it beyond rounding.
    batch_size : int, optional
        Molecules the default transform processes together (its ``chunk_size``;
        default 16, suited to a CPU; a GPU wants hundreds). It does not change the
        features, nor the cache they are kept in.

    Returns
    -------
    dict
        The metrics also written to ``metrics.json``: ``mae_kcal_mol``,
        ``rmse_kcal_mol``, ``train_size``, ``n_validation``, ``n_test``, ``alpha``,
        ``feature_seconds_per_molecule`` (compute time of one worker process per
        molecule, from the chunk markers), ``feature_wall_seconds`` (this run),
        ``learning_curve``, ``forces`` (one test molecule, with its
        finite-difference check), ...
    """
    from wavephase.data.cache import cache_dir
    from wavephase.io import atomic_write_bytes
    from wavephase.data.qm9 import SPLIT_SIZES, load_qm9
    from wavephase.distributed import chunk_status, extract_features, read_features, transform_fingerprint

    t_start = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n_train, n_val, n_test = _qm9_sizes(limit, train_size)
    data = load_qm9()
    split = data["split"]
    order = np.concatenate([split["train"], split["validation"], split["test"]])
    positions = np.ascontiguousarray(data["positions"][order])
    charges = np.ascontiguousarray(data["charges"][order])
    energies = data["energy_kcal_mol"][order]
    rows = _split_rows(n_train, n_val, n_test)
    t0 = SPLIT_SIZES[0] + SPLIT_SIZES[1]  # first test molecule: the one whose forces are checked

    if transform is None:
        tf = qm9_invariants(preset, chunk_size=batch_size)
    elif batch_size is not None:
        raise ValueError("batch_size applies to the default transform only; set your transform's own batch size.")
    else:
        tf = transform
    store = Path(features_path) if features_path is not None else (
        cache_dir("qm9") / f"features-{transform_fingerprint(tf)[:16]}.zarr")
    before = set(chunk_status(store)) if store.exists() else set()
    t_feat = time.perf_counter()
    extract_features(tf, positions, charges, store, chunk_size=chunk_size, scheduler=scheduler,
                     n_workers=n_workers, rows=[(int(r[0]), int(r[-1]) + 1) for r in rows.values()],
                     progress=progress, overwrite=True, trim_padding=True, device=device)
    feature_wall = time.perf_counter() - t_feat
    status = chunk_status(store)
    needed = {int(c) for r in rows.values() for c in np.unique(r // chunk_size)}
    secs = sum(status[c]["seconds"] for c in needed)
    mols = sum(status[c]["stop"] - status[c]["start"] for c in needed)
    computed_now = sorted(set(status) - before)
    # Kept in the store's float32: the ridge standardises and accumulates its Gram
    # matrix in float64 block by block, so a float64 copy of 110k x 7.9k invariants
    # (7 GB) would only double the memory.
    F = {k: read_features(store, r) for k, r in rows.items()}
    y = {k: energies[r] for k, r in rows.items()}

    def fit(size: int) -> tuple[MoleculeEnergyRegressor, np.ndarray]:
        reg = MoleculeEnergyRegressor(tf, feature_map=feature_map)
        reg.fit(None, None, y["train"][:size], features=F["train"][:size],
                validation=(None, None, y["validation"]), validation_features=F["validation"])
        return reg, reg.predict(features=F["test"])

    curve = []
    for size in sorted({s for s in _CURVE_SIZES if s < n_train} | {n_train}):
        t_fit = time.perf_counter()
        reg, pred = fit(size)
        err = pred - y["test"]
        curve.append({"train_size": int(size), "mae_kcal_mol": float(np.abs(err).mean()),
                      "rmse_kcal_mol": float(np.sqrt((err**2).mean())), "alpha": reg.alpha_,
                      "fit_seconds": time.perf_counter() - t_fit})
    err = pred - y["test"]  # the last size of the curve is train_size itself
    forces = _force_check(reg.model_, positions[t0], charges[t0])
    forces["molecule_index"] = int(data["index"][order[t0]])
    metrics = {
        "dataset": "QM9 (qm9pack 1.0.3), atomization energy U0 - atomic references",
        "mae_kcal_mol": float(np.abs(err).mean()),
        "rmse_kcal_mol": float(np.sqrt((err**2).mean())),
        "train_size": int(n_train),
        "n_validation": int(n_val),
        "n_test": int(n_test),
        "limit": limit,
        "alpha": reg.alpha_,
        "validation_mae_by_alpha": {f"{a:.0e}": m for a, m in reg.scores_.items()},
        "feature_map": feature_map,
        "n_features": int(F["train"].shape[1]),
        "transform": repr(tf),
        "preset": None if transform is not None else preset,
        "feature_seconds_per_molecule": secs / max(mols, 1),
        "feature_wall_seconds": feature_wall,
        "feature_chunks_computed_this_run": len(computed_now),
        "feature_store": str(store),
        "scheduler": scheduler or f"LocalCluster({n_workers} processes)",
        "device": str(device),
        "learning_curve": curve,
        "forces": forces,
        "test_energy_std_kcal_mol": float(y["test"].std()),
        "seconds": time.perf_counter() - t_start,
    }
    _plots(out, y["test"], pred, curve, metrics["mae_kcal_mol"])
    atomic_write_bytes(out / "metrics.json", json.dumps(metrics, indent=2).encode())
    return metrics
