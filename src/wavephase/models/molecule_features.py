"""Features of molecules for a linear energy model: the QM9 invariants and their fixed expansions.

* :func:`qm9_invariants` builds the invariant transform of a preset of
  :data:`QM9_PRESETS`: the solid-harmonic 3D scattering and the atom-centred
  wavelet spectra side by side.
* :func:`expand_features` appends smooth square roots of the invariants;
  :class:`QuadraticTerms` appends the products of their leading whitened
  principal components. The energy model stays linear in its weights.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from wavephase.models.ridge import RidgeStatistics, column_standardisation
from wavephase.scattering.atom_spectrum import SolidHarmonicAtomSpectrum
from wavephase.scattering.concat import ConcatInvariants
from wavephase.scattering.solid_harmonic3d import SolidHarmonicScattering3D
from wavephase.validation import check_positive_int

__all__ = ["FEATURE_MAPS", "QM9_PRESETS", "QuadraticTerms", "expand_features", "expand_invariants", "qm9_invariants"]

FEATURE_MAPS = ("linear", "linear+sqrt", "quadratic")
# Offset inside the square root: keeps the derivative finite (1 / (2 sqrt(eps))) for
# invariants at or near zero, which padding and isolated atoms produce.
_SQRT_EPS = 1e-6


def expand_features(features: torch.Tensor, feature_map: str) -> torch.Tensor:
    """Apply the fixed feature expansion of the regressor.

    Parameters
    ----------
    features : torch.Tensor
        Invariants.
    feature_map : str
        ``"linear"`` (identity) or ``"linear+sqrt"`` (append
        ``sign(x) (sqrt(|x| + eps) - sqrt(eps))``, a smooth square root). The
        ``"quadratic"`` map of the regressor is ``"linear+sqrt"`` followed by a
        fitted :class:`QuadraticTerms` (see :func:`expand_invariants`).

    Returns
    -------
    torch.Tensor
        The invariants, then their roots for ``"linear+sqrt"``.

    Shapes
    ------
    features: (..., K) -> (..., K) or (..., 2K)
    """
    if feature_map == "linear":
        return features
    if feature_map == "linear+sqrt":
        root = torch.sign(features) * (torch.sqrt(features.abs() + _SQRT_EPS) - math.sqrt(_SQRT_EPS))
        return torch.cat([features, root], dim=-1)
    raise ValueError(f"feature_map must be one of {FEATURE_MAPS[:2]}, got {feature_map!r}.")


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
        center, spread = column_standardisation(Z)
        S = (Z - center) / spread
        return cls._from_covariance(center, spread, S.T @ S / S.shape[0], k)

    @classmethod
    def from_statistics(cls, stats: RidgeStatistics, n_components: int) -> "QuadraticTerms":
        """Principal directions from training statistics accumulated block by block.

        Parameters
        ----------
        stats : RidgeStatistics
            Statistics of the (already expanded) training invariants.
        n_components : int
            Components ``k`` kept (at most ``K``).

        Returns
        -------
        QuadraticTerms
        """
        center, spread, _ = stats.standardisation()
        k = min(check_positive_int(n_components, "n_components"), center.shape[0])
        return cls._from_covariance(center, spread, stats.standardised_covariance(), k)

    @classmethod
    def _from_covariance(cls, center: np.ndarray, spread: np.ndarray, C: np.ndarray, k: int) -> "QuadraticTerms":
        evals, evecs = np.linalg.eigh(C)
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


def expand_invariants(features: torch.Tensor, feature_map: str, quadratic: QuadraticTerms | None = None
                      ) -> torch.Tensor:
    """The regressor's whole expansion: :func:`expand_features`, then the fitted products if any.

    Parameters
    ----------
    features : torch.Tensor
        Invariants.
    feature_map : str
        One of :data:`FEATURE_MAPS`.
    quadratic : QuadraticTerms, optional
        The fitted products, needed by ``feature_map="quadratic"``.

    Returns
    -------
    torch.Tensor
        The features the ridge weights apply to.

    Shapes
    ------
    features: (..., K) -> (..., K'), ``K' = K, 2K, 2K + k (k + 1) / 2``
    """
    if feature_map != "quadratic":
        return expand_features(features, feature_map)
    z = expand_features(features, "linear+sqrt")
    if quadratic is None or z.shape[-1] != quadratic.center.shape[0]:
        raise ValueError(f"features have {features.shape[-1]} columns, which is not the fitted transform's output "
                         "size; use features of the transform this model was fitted with.")
    return quadratic(z)


# Invariants for QM9: keyword arguments of SolidHarmonicScattering3D ("scattering") and
# of SolidHarmonicAtomSpectrum ("spectrum"), None to leave one out. Measured cost and test
# MAE on all of QM9 (110k training molecules, linear ridge) are in BENCHMARKS.md of 6949ff9: "fast"
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


def qm9_invariants(preset: str | dict[str, dict[str, Any] | None] = "fast", *,
                   chunk_size: int | None = None) -> ConcatInvariants:
    """The invariant transform of a QM9 preset.

    Parameters
    ----------
    preset : str or dict
        A name of :data:`QM9_PRESETS`, or settings in its format:
        ``{"scattering": kwargs or None, "spectrum": kwargs or None}``.
    chunk_size : int, optional
        Molecules each part processes together.

    Returns
    -------
    wavephase.scattering.concat.ConcatInvariants
        Parts ``"scattering"`` (:class:`~wavephase.scattering.solid_harmonic3d.SolidHarmonicScattering3D`)
        and/or ``"spectrum"`` (:class:`~wavephase.scattering.atom_spectrum.SolidHarmonicAtomSpectrum`);
        ``(positions (..., A, 3), charges (..., A)) -> (..., K)``, computed in the
        dtype of the positions.
    """
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
    common = {} if chunk_size is None else {"chunk_size": chunk_size}
    parts = {name: cls(**kwargs, **common) for name, cls in (("scattering", SolidHarmonicScattering3D),
                                                            ("spectrum", SolidHarmonicAtomSpectrum))
             if (kwargs := settings.get(name)) is not None}
    return ConcatInvariants(**parts)
