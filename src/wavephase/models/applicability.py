"""The applicability domain of a fitted molecular model: what it saw in training, and what it refuses.

A linear model on invariants extrapolates without warning: a molecule with an
element it never saw gets an energy from weights that were never constrained,
and invariants beyond the training range (more atoms, a denser pair
distribution) take the model where no data checked it. :class:`Domain` records
the training elements, the largest molecule and every invariant's range, refuses
what the model cannot answer for with
:class:`~wavephase.exceptions.UnsupportedMoleculeError`, and counts, per molecule,
the invariants outside the training range.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from wavephase.data.molecules import Molecules
from wavephase.exceptions import UnsupportedMoleculeError

__all__ = ["Domain"]

# Relative slack on the training range: float32 storage and summation order move an
# invariant by ~1e-7 of its spread, which is not extrapolation.
_RANGE_SLACK = 1e-5


@dataclass
class Domain:
    """Training elements, largest molecule and invariant ranges of a fitted model.

    Parameters
    ----------
    low, high : numpy.ndarray
        Shape (K,): per-invariant minimum and maximum over the training molecules.
    elements : tuple of int, optional
        Atomic numbers present in training (None when fitted on invariants alone).
    max_atoms : int, optional
        Most atoms of a training molecule (None when unknown).
    """

    low: np.ndarray
    high: np.ndarray
    elements: tuple[int, ...] | None = None
    max_atoms: int | None = None

    @classmethod
    def from_training(cls, low: np.ndarray, high: np.ndarray, molecules: Molecules | None = None) -> "Domain":
        """The domain of a fit on invariants with these ranges and, if known, these molecules.

        Parameters
        ----------
        low, high : numpy.ndarray
            Shape (K,) ranges of the training invariants.
        molecules : Molecules, optional
            The training molecules (for the elements and atom counts).

        Returns
        -------
        Domain
        """
        if molecules is None:
            return cls(np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64))
        z = np.asarray(molecules.charges)
        return cls(np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64),
                   tuple(int(e) for e in np.unique(z[z > 0])), int(molecules.n_atoms.max(initial=0)))

    def check_molecules(self, X: Molecules | None, net_charge: Any = None, n: int | None = None) -> None:
        """Refuse molecules the model cannot answer for.

        Parameters
        ----------
        X : Molecules, optional
            The molecules (None for precomputed invariants: only the charge is checked).
        net_charge : int or array-like, optional
            Net charge of each molecule (default: all neutral). QM9-type models
            know neutral closed-shell molecules only.
        n : int, optional
            Number of molecules (default ``len(X)``).

        Raises
        ------
        UnsupportedMoleculeError
            For an element absent from training, or a non-zero net charge.
        """
        if net_charge is not None:
            try:
                q = np.broadcast_to(np.asarray(net_charge), (len(X) if n is None else n,))
            except ValueError:
                raise ValueError(f"net_charge must be one number or one per molecule ({len(X) if n is None else n}), "
                                 f"got shape {np.shape(net_charge)}.") from None
            if np.any(q != 0):
                first = int(np.flatnonzero(q != 0)[0])
                raise UnsupportedMoleculeError(
                    f"net_charge is {q[first].item()!r} for molecule {first}: the model was fitted on neutral "
                    f"molecules and has no term for a net charge; predict neutral species only (net_charge=0).")
        if self.elements is None or X is None:
            return
        z = np.asarray(X.charges)
        unknown = sorted(set(np.unique(z[z > 0]).astype(int).tolist()) - set(self.elements))
        if unknown:
            rows = np.flatnonzero(np.isin(z, unknown).any(axis=-1))
            raise UnsupportedMoleculeError(
                f"X holds element(s) {unknown} (atomic numbers; e.g. molecule {int(rows[0])}, {rows.size} molecule(s) "
                f"in all) that the model never saw in training (elements {list(self.elements)}); its weights say "
                f"nothing about them. Drop those molecules or fit on data that contain them.")

    def out_of_range(self, F: np.ndarray) -> np.ndarray:
        """Invariants of each molecule outside the training range (with a small relative slack).

        Parameters
        ----------
        F : numpy.ndarray
            Invariants.

        Returns
        -------
        numpy.ndarray
            int, the count per molecule (0: interpolation in every invariant).

        Shapes
        ------
        F: (n, K) -> (n,)
        """
        slack = _RANGE_SLACK * np.maximum(self.high - self.low, np.abs(self.high))
        return ((F < self.low - slack) | (F > self.high + slack)).sum(axis=1)

    def flags(self, F: np.ndarray, X: Molecules | None = None) -> dict[str, np.ndarray]:
        """Everything that marks a molecule as outside the training domain.

        Parameters
        ----------
        F : numpy.ndarray
            Invariants of the molecules.
        X : Molecules, optional
            The molecules themselves (for atom counts and electron parity).

        Returns
        -------
        dict of str to numpy.ndarray
            ``n_out_of_range`` (int, invariants beyond the training range);
            with ``X``, ``more_atoms_than_training`` and ``odd_electron_count``
            (bool: a radical or an ion given as a neutral molecule).

        Shapes
        ------
        F: (n, K) -> each (n,)
        """
        out = {"n_out_of_range": self.out_of_range(F)}
        if X is not None:
            out["more_atoms_than_training"] = (X.n_atoms > self.max_atoms if self.max_atoms is not None
                                               else np.zeros(len(X), dtype=bool))
            out["odd_electron_count"] = np.asarray(X.charges).sum(axis=-1).astype(np.int64) % 2 == 1
        return out
