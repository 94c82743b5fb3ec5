"""Molecular energies from invariant features: ridge regression with forces by autograd.

* :class:`MoleculeEnergyRegressor` — a scikit-learn estimator: molecules enter as
  ``X``, a :class:`~wavephase.data.molecules.Molecules` container (or precomputed
  invariants), energies as ``y``. Invariant features (by default
  :func:`~wavephase.models.molecule_features.qm9_invariants`: the solid-harmonic 3D
  scattering and the atom-centred wavelet spectra) → optional expansion →
  standardisation → ridge regression, the penalty chosen on a validation set or
  by K-fold cross-validation. The model stays *linear in the invariants*: any
  non-linearity comes from the transform (its q-exponents) or the fixed expansion.
* :class:`MoleculeEnergyModel` — the fitted predictor as a torch ``nn.Module``
  (transform, standardiser and linear map), so that forces ``-dE/dpositions``
  come from autograd through every stage.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Callable, Sequence

import numpy as np
import scipy.sparse
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import DataConversionWarning
from sklearn.utils.validation import check_is_fitted
from torch import nn
from tqdm.auto import tqdm

from wavephase.data.molecules import Molecules, check_molecule_inputs
from wavephase.models.molecule_features import (FEATURE_MAPS, QuadraticTerms, expand_features, expand_invariants,
                                                qm9_invariants)
from wavephase.models.ridge import cross_validation_mae, fit_ridge, validation_mae
from wavephase.validation import as_float_array, check_positive_int, check_random_state

__all__ = ["DEFAULT_ALPHAS", "MoleculeEnergyModel", "MoleculeEnergyRegressor"]

#: Ridge penalties tried when ``alphas`` is None: 1e-12 to 1e2, one per decade.
DEFAULT_ALPHAS: tuple[float, ...] = tuple(float(a) for a in np.logspace(-12, 2, 15))


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


class MoleculeEnergyRegressor(RegressorMixin, BaseEstimator):
    """Energy regression, linear in invariant features, with forces by autograd.

    Parameters
    ----------
    invariants : nn.Module, optional
        The invariant transform: maps positions (B, A, 3) Å and charges (B, A) to
        invariants (B, K); default ``qm9_invariants("fast")`` (first-order
        scattering and atom-centred spectra). Not called ``transform``: scikit-learn
        would take the estimator for a transformer.
    alphas : sequence of float, optional
        Ridge penalties tried (per-sample penalty on standardised features);
        default :data:`DEFAULT_ALPHAS`. On all of QM9 the validation picks the
        smallest ones: 1e-12 gave a test MAE of 3.19 kcal/mol where 1e-8 gave 3.54
        (full preset, ``"linear+sqrt"``).
    feature_map : str
        ``"linear"``, ``"linear+sqrt"`` (invariants and their smooth square
        roots) or ``"quadratic"`` (``"linear+sqrt"`` plus the pairwise products of
        its ``n_components`` leading whitened principal components, see
        :class:`~wavephase.models.molecule_features.QuadraticTerms`). The model is
        linear in its weights in every case.
    cv : int
        Folds of the cross-validation used when ``fit`` gets no validation set.
    batch_size : int
        Molecules per transform call.
    progress : bool
        Show a progress bar while computing features.
    n_components : int
        Principal components multiplied pairwise by ``feature_map="quadratic"``.
    random_state : int
        Seed of the split into cross-validation folds.

    Attributes
    ----------
    alpha_ : float
        Selected penalty.
    scores_ : dict
        Validation (or cross-validation) MAE for each penalty.
    model_ : MoleculeEnergyModel
        The fitted predictor as a torch module.
    invariants_ : nn.Module
        The invariant transform used (``invariants``, or the default one).
    quadratic_ : QuadraticTerms or None
        The fitted products of ``feature_map="quadratic"``.
    n_features_in_ : int
        Number of invariants per molecule.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.model_selection import cross_val_score
    >>> from wavephase.data import Molecules
    >>> from wavephase.testing import random_molecule
    >>> mols = [random_molecule(5 + i % 3, random_state=i) for i in range(12)]
    >>> X = Molecules([p for p, _ in mols], [z for _, z in mols])
    >>> y = -100.0 * X.n_atoms
    >>> reg = MoleculeEnergyRegressor(cv=2).fit(X, y)
    >>> reg.predict(X[:2]).shape, reg.predict_forces(X[:2]).shape
    ((2,), (2, 7, 3))
    """

    def __init__(self, invariants: nn.Module | None = None, alphas: Sequence[float] | None = None,
                 feature_map: str = "linear", cv: int = 5, batch_size: int = 256, progress: bool = False,
                 n_components: int = 64, random_state: int = 0) -> None:
        self.invariants = invariants
        self.alphas = alphas
        self.feature_map = feature_map
        self.cv = cv
        self.batch_size = batch_size
        self.progress = progress
        self.n_components = n_components
        self.random_state = random_state

    # -- features ---------------------------------------------------------------------------------

    def _current_invariants(self) -> nn.Module:
        if hasattr(self, "invariants_"):
            return self.invariants_
        return self.invariants if self.invariants is not None else qm9_invariants()

    def compute_features(self, X: Molecules) -> np.ndarray:
        """Invariants of molecules, in batches, without gradients.

        Parameters
        ----------
        X : Molecules
            The molecules.

        Returns
        -------
        numpy.ndarray
            float64 invariants of the fitted transform (or of ``invariants`` before ``fit``).

        Shapes
        ------
        X: (n, A) molecules -> (n, K)
        """
        if not isinstance(X, Molecules):
            raise TypeError(f"X must be a Molecules container, got {type(X).__name__}; wrap positions and charges "
                            f"with wavephase.data.Molecules(positions, charges).")
        return self._compute(self._current_invariants(), X)

    def _compute(self, transform: nn.Module, X: Molecules) -> np.ndarray:
        bs = check_positive_int(self.batch_size, "batch_size")
        pos, ch = X.tensors()
        starts = range(0, len(X), bs) if len(X) else [0]  # an empty batch still gives (0, K)
        out = []
        with torch.no_grad():
            for s in tqdm(starts, disable=not self.progress, desc="invariants", unit="batch"):
                out.append(transform(pos[s:s + bs], ch[s:s + bs]).detach().to("cpu", torch.float64).numpy())
        return np.concatenate(out)

    def _features(self, transform: nn.Module, X: Any, name: str) -> np.ndarray:
        """Invariants of ``X``: computed for molecules, checked for precomputed ones."""
        if isinstance(X, Molecules):
            return self._compute(transform, X)
        if scipy.sparse.issparse(X):
            raise TypeError(f"{name} is a sparse matrix, and sparse input is not supported; pass {name}.toarray().")
        F = as_float_array(X, name)
        if not F.flags.writeable:  # torch shares only writable memory
            F = F.copy()
        if F.ndim != 2:
            raise ValueError(f"{name} must be a Molecules container or precomputed invariants of shape (n, K), got an "
                             f"array of shape {F.shape}. Reshape your data to (n, K), or wrap positions and charges "
                             f"as Molecules(positions, charges).")
        if F.shape[1] == 0:
            raise ValueError(f"{name} has 0 feature(s) (shape={F.shape}) while a minimum of 1 is required.")
        return F

    def _expand(self, F: np.ndarray) -> np.ndarray:
        return expand_invariants(torch.from_numpy(F), self.feature_map, self.quadratic_).numpy()

    def _targets(self, y: Any, n: int, name: str) -> np.ndarray:
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None.")
        y = as_float_array(y, name).astype(np.float64, copy=False)
        if y.ndim == 2 and y.shape[1] == 1:
            warnings.warn(f"A column-vector y was passed when a 1d array was expected ({name} of shape (n, 1)); "
                          f"it is raveled to (n,).", DataConversionWarning, stacklevel=3)
            y = y.ravel()
        if y.ndim != 1:
            raise ValueError(f"{name} must be one energy per molecule, shape (n,), got shape {y.shape}.")
        if y.shape[0] != n:
            raise ValueError(f"{name} has {y.shape[0]} entries for {n} molecules.")
        return y

    # -- fit / predict ----------------------------------------------------------------------------

    def fit(self, X: Any, y: Any, validation: tuple[Any, Any] | None = None) -> "MoleculeEnergyRegressor":
        """Fit the standardiser and the ridge model; choose the penalty.

        Parameters
        ----------
        X : Molecules or array-like
            The training molecules, or their precomputed invariants ``(n, K)``
            (float32 ones stay float32: the ridge works in float64 block by block).
        y : array-like
            Energies (e.g. atomization energies in kcal/mol).
        validation : tuple, optional
            ``(X_val, y_val)``, molecules or invariants and their energies: the
            penalty with the lowest validation MAE is kept. Without it,
            ``cv``-fold cross-validation picks the penalty.

        Returns
        -------
        MoleculeEnergyRegressor
            ``self``.

        Shapes
        ------
        X: (n, A) molecules or (n, K), y: (n,)
        """
        if self.feature_map not in FEATURE_MAPS:
            raise ValueError(f"feature_map must be one of {FEATURE_MAPS}, got {self.feature_map!r}.")
        alphas = np.asarray(DEFAULT_ALPHAS if self.alphas is None else self.alphas, dtype=np.float64).ravel()
        if alphas.size == 0 or np.any(~np.isfinite(alphas)) or np.any(alphas < 0):
            raise ValueError(f"alphas must be a non-empty list of finite penalties >= 0, got {self.alphas!r}.")
        cv = check_positive_int(self.cv, "cv", minimum=2)
        check_positive_int(self.n_components, "n_components")
        random_state = check_random_state(self.random_state)
        if validation is not None and (not isinstance(validation, (tuple, list)) or len(validation) != 2):
            raise ValueError("validation must be a pair (X_val, y_val).")
        transform = self.invariants if self.invariants is not None else qm9_invariants()
        F = self._features(transform, X, "X")
        y = self._targets(y, F.shape[0], "y")
        if F.shape[0] < 2:
            raise ValueError(f"X holds {F.shape[0]} molecule(s) (n_samples = {F.shape[0]}); fit needs at least 2.")
        quadratic = self.feature_map == "quadratic"
        if quadratic:
            F = F.astype(np.float64, copy=False)
        base = expand_features(torch.from_numpy(F), "linear+sqrt" if quadratic else self.feature_map)
        self.quadratic_ = QuadraticTerms.fit(base.numpy(), self.n_components) if quadratic else None
        Z = (self.quadratic_(base) if quadratic else base).numpy()
        if validation is not None:
            Fv = self._features(transform, validation[0], "validation X")
            yv = self._targets(validation[1], Fv.shape[0], "validation y")
            if Fv.shape[1] != F.shape[1]:
                raise ValueError(f"validation X has {Fv.shape[1]} invariants; X has {F.shape[1]}.")
            mae = validation_mae(Z, y, alphas, self._expand(Fv), yv)
        else:
            if F.shape[0] < cv:
                raise ValueError(f"cross-validation with cv={cv} needs at least {cv} molecules; pass validation=.")
            mae = cross_validation_mae(Z, y, alphas, cv, random_state)
        best = int(np.argmin(mae))
        self.alpha_ = float(alphas[best])
        self.scores_ = {float(a): float(m) for a, m in zip(alphas, mae)}
        W, mean, scale, y0 = fit_ridge(Z, y, alphas[best:best + 1])
        self.n_features_in_ = F.shape[1]
        self.invariants_ = transform
        self.model_ = MoleculeEnergyModel(transform, torch.from_numpy(mean), torch.from_numpy(scale),
                                          torch.from_numpy(W[0]), y0, self.feature_map, self.quadratic_)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predict energies.

        Parameters
        ----------
        X : Molecules or array-like
            Molecules, or their precomputed invariants ``(n, K)``.

        Returns
        -------
        numpy.ndarray
            float64 energies.

        Shapes
        ------
        X: (n, A) molecules or (n, K) -> (n,)
        """
        check_is_fitted(self, "model_")
        F = self._features(self.invariants_, X, "X")
        if F.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {F.shape[1]} features, but {type(self).__name__} is expecting "
                             f"{self.n_features_in_} features as input (the invariants it was fitted on).")
        with torch.no_grad():
            # float64: the weights of a weakly penalised ridge cancel over thousands of terms.
            return self.model_.energy_from_features(torch.from_numpy(F.astype(np.float64, copy=False))).numpy()

    def predict_forces(self, X: Molecules) -> np.ndarray:
        """Forces ``-dE/dpositions`` by autograd through transform, standardiser and linear map.

        Parameters
        ----------
        X : Molecules
            The molecules; float64 positions for finite-difference comparisons.

        Returns
        -------
        numpy.ndarray
            Energy units per Å (kcal/mol/Å for QM9 targets), in the dtype of the
            positions; zero on padding slots.

        Shapes
        ------
        X: (n, A) molecules -> (n, A, 3)
        """
        check_is_fitted(self, "model_")
        if not isinstance(X, Molecules):
            raise TypeError(f"predict_forces needs molecules: X must be a Molecules container, got "
                            f"{type(X).__name__}.")
        bs = check_positive_int(self.batch_size, "batch_size")
        pos, ch = X.tensors()
        forces = np.zeros(pos.shape, dtype=X.positions.dtype)
        for s in range(0, len(X), bs):
            p = pos[s:s + bs].detach().clone().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.model_(p, ch[s:s + bs]).sum(), p)
            forces[s:s + bs] = (-grad * (ch[s:s + bs] > 0).unsqueeze(-1).to(grad.dtype)).numpy()
        return forces
