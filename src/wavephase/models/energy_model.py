"""The fitted molecular energy predictor as a differentiable torch module.

``E = w · ((phi(S(positions, charges)) - mean) / scale) + b``: forces
``-dE/dpositions`` come from autograd through transform, expansion, standardiser
and linear map. :class:`~wavephase.models.molecules.MoleculeEnergyRegressor`
builds it when it fits.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from wavephase.data.molecules import check_molecule_inputs
from wavephase.models.molecule_features import QuadraticTerms, expand_invariants

__all__ = ["MoleculeEnergyModel"]


class MoleculeEnergyModel(nn.Module):
    """Fitted energy predictor as a differentiable torch module.

    ``E = w · ((phi(S(positions, charges)) - mean) / scale) + b`` with ``S`` the
    invariant transform and ``phi`` the expansion
    (:func:`~wavephase.models.molecule_features.expand_invariants`).

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
        One of :data:`~wavephase.models.molecule_features.FEATURE_MAPS`.
    quadratic : QuadraticTerms, optional
        Fitted products, required by (and only used with) ``feature_map="quadratic"``.

    Shapes
    ------
    positions: (..., A, 3), charges: (..., A) -> (...)
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
            Invariants of the fitted transform.

        Returns
        -------
        torch.Tensor
            Same dtype as ``features``.

        Shapes
        ------
        features: (..., K) -> (...)
        """
        z = expand_invariants(features, self.feature_map, self.quadratic)
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
            Atom positions, Å (float32 or float64).
        charges : torch.Tensor
            Atomic numbers, 0 = padding.

        Returns
        -------
        torch.Tensor
            Energies in the units of the training targets, dtype of ``positions``.

        Shapes
        ------
        positions: (..., A, 3), charges: (..., A) -> (...)
        """
        positions, z = check_molecule_inputs(positions, charges)
        lead, n_atoms = positions.shape[:-2], positions.shape[-2]
        n = math.prod(lead)
        feats = self.transform(positions.reshape(n, n_atoms, 3), z.to(positions.dtype).reshape(n, n_atoms))
        return self.energy_from_features(feats.to(positions.dtype)).reshape(lead)
