"""Molecules as padded arrays: the ``Molecules`` container and the checks every molecule transform shares.

A batch of molecules is two arrays: atom positions ``(n, A, 3)`` in angstrom and
atomic numbers ``(n, A)``, where charge 0 marks a padding slot, so molecules of
different sizes share one array. :class:`Molecules` holds the two arrays as one
object that scikit-learn can split (``len``, ``shape`` and row indexing), which
is how molecules enter estimators such as
:class:`~wavephase.models.molecules.MoleculeEnergyRegressor`.
:func:`check_molecule_inputs` is the one check of the tensors that the
molecule operators (:mod:`wavephase.scattering`) receive.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from wavephase.validation import as_float_array, check_real_tensor

__all__ = ["Molecules", "check_molecule_inputs", "DEFAULT_VALENCE", "ELEMENT_SYMBOLS"]

#: Valence electrons of the QM9 elements H, C, N, O, F.
DEFAULT_VALENCE: dict[int, int] = {1: 1, 6: 4, 7: 5, 8: 6, 9: 7}
#: Element symbols of the first three periods and their atomic numbers.
ELEMENT_SYMBOLS: dict[str, int] = {
    sym: z for z, sym in enumerate("H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar".split(), start=1)}


def _check_layout(positions: torch.Tensor, z: torch.Tensor) -> None:
    """Shapes, integer charges >= 0 and no empty molecule (``z`` float64, same leading shape)."""
    if positions.ndim < 2 or positions.shape[-1] != 3:
        raise ValueError(f"positions must have shape (..., A, 3), got {tuple(positions.shape)}.")
    if tuple(z.shape) != tuple(positions.shape[:-1]):
        raise ValueError(f"charges must have shape positions.shape[:-1] = {tuple(positions.shape[:-1])} "
                         f"(one atomic number per atom, 0 for padding), got {tuple(z.shape)}.")
    if positions.shape[-2] == 0 and math.prod(positions.shape[:-2]) > 0:
        raise ValueError("positions has no atoms (A = 0); pass at least one atom per molecule.")
    if not bool(torch.isfinite(z).all()) or bool((z != torch.round(z)).any()):
        raise ValueError("charges must be integer atomic numbers (0 for padding), got non-integer values.")
    if bool((z < 0).any()):
        raise ValueError("charges must be >= 0 (atomic numbers, 0 for padding).")
    empty = ~(z > 0).any(-1)
    if bool(empty.any()):
        raise ValueError(f"charges has {int(empty.sum())} empty molecule(s) (all charges 0); drop them first.")


def check_molecule_inputs(positions: object, charges: object, elements: Iterable[int] | None = None,
                          fix: str = "pass the missing elements to the constructor",
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """Check a batch of molecules given as tensors, as the molecule operators receive it.

    Parameters
    ----------
    positions : torch.Tensor
        Real atom positions (float32 or float64).
    charges : torch.Tensor
        Integer-valued atomic numbers, 0 for padding (any real dtype).
    elements : iterable of int, optional
        Atomic numbers the caller knows; None accepts every element.
    fix : str
        What to do about an unknown element (ends the error message).

    Returns
    -------
    positions : torch.Tensor
        The input, unchanged.
    z : torch.Tensor
        float64 copy of the charges, detached, on the positions' device.

    Raises
    ------
    TypeError
        For positions that are not a float tensor, or charges that are not a real tensor.
    ValueError
        For mismatched shapes, non-finite positions, non-integer, negative or unknown
        charges, a molecule without atoms, or two atoms at the same place.

    Shapes
    ------
    positions: (..., A, 3), charges: (..., A) -> (..., A, 3), (..., A)
    """
    check_real_tensor(positions, "positions", min_ndim=2, finite=False)
    assert isinstance(positions, torch.Tensor)
    if not isinstance(charges, torch.Tensor):
        raise TypeError(f"charges must be a torch.Tensor, got {type(charges).__name__}; "
                        "convert it with torch.as_tensor(charges).")
    if charges.is_complex() or charges.dtype == torch.bool:
        raise TypeError(f"charges must hold real atomic numbers, got dtype {charges.dtype}.")
    if charges.device != positions.device:
        raise ValueError(f"charges is on {charges.device} but positions is on {positions.device}; "
                         "move both to the same device.")
    if not bool(torch.isfinite(positions.detach()).all()):
        raise ValueError("positions contains NaN or infinite coordinates; remove or fix those atoms "
                         "(padding atoms need finite coordinates too, e.g. 0, with charge 0).")
    z = charges.detach().to(torch.float64)
    _check_layout(positions, z)
    if elements is not None:
        known_elements = sorted({int(e) for e in elements})
        known = torch.tensor([0] + known_elements, dtype=torch.float64, device=z.device)
        unknown = ~torch.isin(z, known)
        if bool(unknown.any()):
            bad = sorted({int(v) for v in z[unknown].unique().tolist()})
            raise ValueError(f"charges contains element(s) {bad} unknown to this transform (known: "
                             f"{known_elements}); {fix}.")
    # Coincident atoms make the density degenerate (and are never physical).
    n, n_atoms = math.prod(positions.shape[:-2]), positions.shape[-2]
    pos = positions.detach().to(torch.float64).reshape(n, n_atoms, 3)
    present = (z > 0).reshape(n, n_atoms)
    both = present[:, :, None] & present[:, None, :]
    both &= ~torch.eye(n_atoms, dtype=torch.bool, device=pos.device)
    if bool((both & (torch.cdist(pos, pos) < 1e-6)).any()):
        raise ValueError("positions has two atoms at distance 0 (< 1e-6 angstrom) in the same molecule; "
                         "remove duplicated atoms.")
    return positions, z


def _pad(parts: Sequence[Any], name: str, trailing: tuple[int, ...]) -> np.ndarray:
    """Stack per-molecule arrays ``(A_i, *trailing)`` into ``(n, max A_i, *trailing)``, zero-padded."""
    arrays = [np.asarray(p) for p in parts]
    for i, a in enumerate(arrays):
        if a.ndim != 1 + len(trailing) or a.shape[1:] != trailing:
            raise ValueError(f"{name}[{i}] must have shape (A, {', '.join(map(str, trailing))})"
                             if trailing else f"{name}[{i}] must be one-dimensional (A,)")
    dtype = np.result_type(*arrays) if arrays else np.float64
    out = np.zeros((len(arrays), max((len(a) for a in arrays), default=0), *trailing), dtype=dtype)
    for i, a in enumerate(arrays):
        out[i, :len(a)] = a
    return out


def _is_ragged_list(x: object) -> bool:
    """A list or tuple of per-molecule arrays (as opposed to one nested array)."""
    return isinstance(x, (list, tuple)) and len(x) > 0 and all(
        isinstance(p, (np.ndarray, torch.Tensor, list, tuple)) for p in x) and not _is_rectangular(x)


def _is_rectangular(x: Sequence[Any]) -> bool:
    try:
        np.asarray(x, dtype=np.float64)
    except (ValueError, TypeError):
        return False
    return True


class Molecules:
    """A batch of molecules: padded positions and atomic numbers, indexable by rows.

    Parameters
    ----------
    positions : array-like or sequence of array-like
        ``(n, A, 3)`` atom positions in angstrom, or a list of ``(A_i, 3)`` arrays,
        one per molecule (padded with zeros to the largest ``A_i``). float64 stays
        float64; other real input becomes float32.
    charges : array-like or sequence of array-like
        ``(n, A)`` atomic numbers, 0 for padding slots, or a list of ``(A_i,)``
        arrays; integer-valued, stored as int64.

    Attributes
    ----------
    positions : numpy.ndarray
        ``(n, A, 3)`` float32 or float64.
    charges : numpy.ndarray
        ``(n, A)`` int64.

    Shapes
    ------
    positions: (n, A, 3), charges: (n, A); ``shape`` is ``(n, A)``.

    Examples
    --------
    >>> import numpy as np
    >>> water = (np.array([[0.0, 0.0, 0.0], [0.96, 0.0, 0.0], [-0.24, 0.93, 0.0]]), np.array([8, 1, 1]))
    >>> h2 = (np.array([[0.0, 0.0, 0.0], [0.74, 0.0, 0.0]]), np.array([1, 1]))
    >>> mols = Molecules([water[0], h2[0]], [water[1], h2[1]])
    >>> len(mols), mols.shape, mols.n_atoms.tolist()
    (2, (2, 3), [3, 2])
    >>> mols[[1]].charges.tolist()
    [[1, 1, 0]]
    """

    __slots__ = ("positions", "charges")

    def __init__(self, positions: Any, charges: Any) -> None:
        if _is_ragged_list(positions):
            positions = _pad(positions, "positions", (3,))
        if _is_ragged_list(charges):
            charges = _pad(charges, "charges", ())
        pos = np.ascontiguousarray(as_float_array(positions, "positions"))
        if pos.ndim != 3:
            raise ValueError(f"positions must have shape (n, A, 3), got {pos.shape}; pass one molecule as "
                             f"positions[None] or a list of (A_i, 3) arrays.")
        z = np.asarray(charges.detach().cpu() if isinstance(charges, torch.Tensor) else charges)
        if z.dtype == object or z.dtype.kind not in "iuf":
            raise TypeError(f"charges must be a numeric array of atomic numbers, got dtype {z.dtype}.")
        _check_layout(torch.from_numpy(pos), torch.from_numpy(np.asarray(z, dtype=np.float64)))
        self.positions = pos
        self.charges = np.ascontiguousarray(z, dtype=np.int64)

    @classmethod
    def _checked(cls, positions: np.ndarray, charges: np.ndarray) -> "Molecules":
        """A container of arrays that are already valid (rows of another container)."""
        out = cls.__new__(cls)
        out.positions, out.charges = positions, charges
        return out

    def __len__(self) -> int:
        return self.positions.shape[0]

    @property
    def shape(self) -> tuple[int, int]:
        """``(n, A)``: molecules and atom slots per molecule."""
        return self.charges.shape  # type: ignore[return-value]

    @property
    def n_atoms(self) -> np.ndarray:
        """``(n,)`` int64: the real atoms of each molecule."""
        return (self.charges > 0).sum(axis=1)

    def __getitem__(self, key: Any) -> "Molecules":
        """Rows ``key``: an int, a slice, an array of indices or a boolean mask.

        An int gives a container of one molecule, so indexing always returns
        :class:`Molecules`. ``mols[key, ...]`` (scikit-learn's row indexing) is the same.
        """
        if isinstance(key, tuple):
            if len(key) == 2 and key[1] is Ellipsis:
                key = key[0]
            else:
                raise IndexError("Molecules are indexed by rows only: mols[rows].")
        if isinstance(key, (int, np.integer)):
            if not -len(self) <= key < len(self):
                raise IndexError(f"index {key} is out of range for {len(self)} molecules.")
            key = slice(int(key) % len(self), int(key) % len(self) + 1)
        if isinstance(key, torch.Tensor):
            key = key.cpu().numpy()
        if isinstance(key, list):
            key = np.asarray(key, dtype=np.bool_ if key and all(isinstance(k, bool) for k in key) else np.int64)
        return Molecules._checked(self.positions[key], self.charges[key])

    def __repr__(self) -> str:
        return f"Molecules(n={len(self)}, max_atoms={self.shape[1]}, dtype={self.positions.dtype})"

    def trim(self) -> "Molecules":
        """The same molecules without the atom slots that are padding in every one of them.

        Returns
        -------
        Molecules
            ``(n, max n_atoms)``; the arrays are views when nothing is dropped.
        """
        used = np.flatnonzero((self.charges != 0).any(axis=0))
        keep = int(used[-1]) + 1 if used.size else self.shape[1]
        return Molecules._checked(self.positions[:, :keep], self.charges[:, :keep])

    def tensors(self, device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Positions and charges as tensors, as the molecule operators take them.

        Parameters
        ----------
        device : torch.device or str, optional
            Where the tensors go (default: the CPU, sharing memory with the arrays).

        Returns
        -------
        positions : torch.Tensor
            ``(n, A, 3)`` in the dtype of :attr:`positions`.
        charges : torch.Tensor
            ``(n, A)`` atomic numbers in the same float dtype.
        """
        pos = torch.from_numpy(self.positions)
        charges = torch.from_numpy(self.charges).to(pos.dtype)
        if device is not None:
            pos, charges = pos.to(device), charges.to(device)
        return pos, charges
