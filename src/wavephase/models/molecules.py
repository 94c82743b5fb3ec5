"""Molecular energies from invariant features: ridge regression with forces by autograd.

* :class:`MoleculeEnergyRegressor` — a scikit-learn estimator: molecules enter as
  ``X``, a :class:`~wavephase.data.molecules.Molecules` container (or precomputed
  invariants), energies as ``y``. Invariant features (by default
  :func:`~wavephase.models.molecule_features.qm9_invariants`: the solid-harmonic 3D
  scattering and the atom-centred wavelet spectra) → optional expansion →
  standardisation → ridge regression, the penalty chosen on a validation set or
  by K-fold cross-validation. The model stays *linear in the invariants*: any
  non-linearity comes from the transform (its q-exponents) or the fixed expansion.
* :class:`~wavephase.models.energy_model.MoleculeEnergyModel` (re-exported
  here) — the fitted predictor as a torch ``nn.Module``, so that forces
  ``-dE/dpositions`` come from autograd through every stage.
* The fitted model knows its applicability domain
  (:class:`~wavephase.models.applicability.Domain`): it refuses elements it never
  saw and charged species, and flags invariants outside the training range.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import scipy.sparse
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import DataConversionWarning
from sklearn.utils.validation import check_is_fitted
from torch import nn
from tqdm.auto import tqdm

from wavephase.data.molecules import Molecules
from wavephase.exceptions import OutOfDomainWarning
from wavephase.models.applicability import Domain
from wavephase.models.energy_model import MoleculeEnergyModel
from wavephase.models.molecule_features import (FEATURE_MAPS, QuadraticTerms, expand_features, expand_invariants,
                                                qm9_invariants)
from wavephase.models.ridge import RidgeStatistics, cross_validation_mae, fit_ridge, ridge_predict
from wavephase.validation import as_float_array, check_positive_int, check_random_state

__all__ = ["DEFAULT_ALPHAS", "MoleculeEnergyRegressor"]  # MoleculeEnergyModel stays importable from here

#: Ridge penalties tried when ``alphas`` is None: 1e-12 to 1e2, one per decade.
DEFAULT_ALPHAS: tuple[float, ...] = tuple(float(a) for a in np.logspace(-12, 2, 15))


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
        alphas, cv, random_state = self._check_params(validation)
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
            Fv, yv = self._validation(transform, validation, F.shape[1])
            # One fit for all penalties; the validation picks a row of it.
            fitted = fit_ridge(Z, y, alphas)
            mae = np.abs(ridge_predict(self._expand(Fv), *fitted) - yv[:, None]).mean(axis=0)
        else:
            if F.shape[0] < cv:
                raise ValueError(f"cross-validation with cv={cv} needs at least {cv} molecules; pass validation=.")
            mae = cross_validation_mae(Z, y, alphas, cv, random_state)
            best = int(np.argmin(mae))
            fitted = fit_ridge(Z, y, alphas[best:best + 1])
            fitted = (np.repeat(fitted[0], alphas.size, axis=0),) + fitted[1:]
        return self._finish(transform, alphas, mae, fitted, Domain.from_training(
            F.min(axis=0), F.max(axis=0), X if isinstance(X, Molecules) else None))

    def fit_blocks(self, blocks: Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]],
                   validation: tuple[Any, Any], molecules: Molecules | None = None) -> "MoleculeEnergyRegressor":
        """Fit from precomputed invariants that arrive in blocks (e.g. read from a feature store).

        The same model as :meth:`fit` on the concatenated blocks (up to round-off),
        without ever holding them together: memory is one ``K x K`` float64 Gram
        matrix plus one block. Fewer rows than columns in all are kept and solved as
        :meth:`fit` does, through the ``n x n`` dual problem (at most ``K`` rows held).
        ``"quadratic"`` reads the blocks twice.

        Parameters
        ----------
        blocks : callable
            Returns a fresh iterable of ``(F, y)`` pairs: invariants ``(m, K)``
            (any float dtype) and energies ``(m,)``.
        validation : tuple
            ``(X_val, y_val)`` as in :meth:`fit` (required: no cross-validation here).
        molecules : Molecules, optional
            The training molecules, for the applicability domain (elements, atom counts).

        Returns
        -------
        MoleculeEnergyRegressor
            ``self``.
        """
        if validation is None:
            raise ValueError("fit_blocks needs validation=(X_val, y_val): it does no cross-validation.")
        alphas, _, _ = self._check_params(validation)
        transform = self.invariants if self.invariants is not None else qm9_invariants()
        quadratic = self.feature_map == "quadratic"
        self.quadratic_ = None
        if quadratic:
            base = None
            for F, y in blocks():
                z = expand_features(torch.from_numpy(np.asarray(F, dtype=np.float64)), "linear+sqrt").numpy()
                base = (base or RidgeStatistics(z.shape[1])).update(z, self._targets(y, z.shape[0], "y"))
            if base is None:
                raise ValueError("blocks gave no rows; fit needs at least 2.")
            self.quadratic_ = QuadraticTerms.from_statistics(base, self.n_components)
        stats, n_in, kept = None, 0, []
        for F, y in blocks():
            F = self._features(transform, F, "X")
            z = self._expand(F.astype(np.float64) if quadratic else F)
            y = self._targets(y, z.shape[0], "y")
            n_in = F.shape[1]
            if stats is None and sum(len(k) for k, _ in kept) + len(z) < z.shape[1]:
                kept.append((z, y))  # fewer rows than columns so far: the n x n dual problem may serve (as fit)
                continue
            stats = stats or RidgeStatistics(z.shape[1])
            for z_part, y_part in [*kept, (z, y)]:
                stats.update(z_part, y_part)
            kept = []
        if stats is None and not kept:
            raise ValueError("blocks gave no rows; fit needs at least 2.")
        if stats is None:
            Z, Y = np.concatenate([z for z, _ in kept]), np.concatenate([y for _, y in kept])
            fitted, low, high = fit_ridge(Z, Y, alphas), Z[:, :n_in].min(axis=0), Z[:, :n_in].max(axis=0)
        else:
            fitted, low, high = stats.solve(alphas), stats.low[:n_in], stats.high[:n_in]
        Fv, yv = self._validation(transform, validation, n_in)
        mae = np.abs(ridge_predict(self._expand(Fv), *fitted) - yv[:, None]).mean(axis=0)
        return self._finish(transform, alphas, mae, fitted, Domain.from_training(
            low.astype(np.float64), high.astype(np.float64), molecules))

    def _check_params(self, validation: Any) -> tuple[np.ndarray, int, np.random.RandomState]:
        if self.feature_map not in FEATURE_MAPS:
            raise ValueError(f"feature_map must be one of {FEATURE_MAPS}, got {self.feature_map!r}.")
        alphas = np.asarray(DEFAULT_ALPHAS if self.alphas is None else self.alphas, dtype=np.float64).ravel()
        if alphas.size == 0 or np.any(~np.isfinite(alphas)) or np.any(alphas < 0):
            raise ValueError(f"alphas must be a non-empty list of finite penalties >= 0, got {self.alphas!r}.")
        cv = check_positive_int(self.cv, "cv", minimum=2)
        check_positive_int(self.n_components, "n_components")
        if validation is not None and (not isinstance(validation, (tuple, list)) or len(validation) != 2):
            raise ValueError("validation must be a pair (X_val, y_val).")
        return alphas, cv, check_random_state(self.random_state)

    def _validation(self, transform: nn.Module, validation: tuple[Any, Any], n_in: int
                    ) -> tuple[np.ndarray, np.ndarray]:
        Fv = self._features(transform, validation[0], "validation X")
        yv = self._targets(validation[1], Fv.shape[0], "validation y")
        if Fv.shape[1] != n_in:
            raise ValueError(f"validation X has {Fv.shape[1]} invariants; X has {n_in}.")
        return Fv, yv

    def _finish(self, transform: nn.Module, alphas: np.ndarray, mae: np.ndarray,
                fitted: tuple[np.ndarray, np.ndarray, np.ndarray, float], domain: Domain) -> "MoleculeEnergyRegressor":
        W, mean, scale, y0 = fitted
        best = int(np.argmin(mae))
        self.alpha_ = float(alphas[best])
        self.scores_ = {float(a): float(m) for a, m in zip(alphas, mae)}
        self.n_features_in_ = domain.low.shape[0]
        self.invariants_ = transform
        self.domain_ = domain
        self.model_ = MoleculeEnergyModel(transform, torch.from_numpy(mean), torch.from_numpy(scale),
                                          torch.from_numpy(np.ascontiguousarray(W[best])), y0, self.feature_map,
                                          self.quadratic_)
        return self

    def predict(self, X: Any, *, net_charge: Any = None, return_domain: bool = False
                ) -> np.ndarray | tuple[np.ndarray, dict[str, np.ndarray]]:
        """Predict energies; flag molecules outside the training domain.

        Parameters
        ----------
        X : Molecules or array-like
            Molecules, or their precomputed invariants ``(n, K)``.
        net_charge : int or array-like, optional
            Net charge of each molecule; anything but 0 is refused (the model knows
            neutral molecules only).
        return_domain : bool
            Also return the flags of :meth:`wavephase.models.applicability.Domain.flags`
            (invariants outside the training range, more atoms than in training,
            odd electron count).

        Returns
        -------
        numpy.ndarray
            float64 energies; with ``return_domain``, also the dict of flags.

        Raises
        ------
        UnsupportedMoleculeError
            For an element absent from training or a non-zero ``net_charge``.

        Warns
        -----
        OutOfDomainWarning
            When some molecules have invariants outside the training range.

        Shapes
        ------
        X: (n, A) molecules or (n, K) -> (n,)
        """
        check_is_fitted(self, "model_")
        mols = X if isinstance(X, Molecules) else None
        F = self._features(self.invariants_, X, "X") if mols is None else None
        self.domain_.check_molecules(mols, net_charge, len(mols) if mols is not None else F.shape[0])
        F = self._features(self.invariants_, X, "X") if F is None else F
        if F.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {F.shape[1]} features, but {type(self).__name__} is expecting "
                             f"{self.n_features_in_} features as input (the invariants it was fitted on).")
        flags = self.domain_.flags(F, mols)
        outside = int((flags["n_out_of_range"] > 0).sum())
        if outside:
            warnings.warn(f"{outside} of {F.shape[0]} molecule(s) have invariants outside the training range (the "
                          f"model extrapolates there); predict(..., return_domain=True) says which.",
                          OutOfDomainWarning, stacklevel=2)
        with torch.no_grad():
            # float64: the weights of a weakly penalised ridge cancel over thousands of terms.
            energy = self.model_.energy_from_features(torch.from_numpy(F.astype(np.float64, copy=False))).numpy()
        return (energy, flags) if return_domain else energy

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
        self.domain_.check_molecules(X)
        bs = check_positive_int(self.batch_size, "batch_size")
        pos, ch = X.tensors()
        forces = np.zeros(pos.shape, dtype=X.positions.dtype)
        for s in range(0, len(X), bs):
            p = pos[s:s + bs].detach().clone().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.model_(p, ch[s:s + bs]).sum(), p)
            forces[s:s + bs] = (-grad * (ch[s:s + bs] > 0).unsqueeze(-1).to(grad.dtype)).numpy()
        return forces
