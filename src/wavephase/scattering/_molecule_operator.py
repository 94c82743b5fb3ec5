"""What the molecule transforms share: the checks, the batch layout (real atoms first), chunks of molecules."""

from __future__ import annotations

import math
from typing import Iterable

import torch
from torch import nn

from wavephase.data.molecules import check_molecule_inputs
from wavephase.validation import check_same_device

__all__ = ["MoleculeOperator", "chunk_plan", "flatten_real_atoms_first", "in_input_order"]


class MoleculeOperator(nn.Module):
    """Base of the operators on molecules: input checks, any batch shape, empty batches.

    A subclass sets ``output_size``, has at least one buffer, and implements
    :meth:`_invariants` on molecules laid out by :func:`flatten_real_atoms_first`.
    """

    output_size: int

    def _known_elements(self) -> tuple[Iterable[int], str]:
        """Atomic numbers the operator accepts, and what to do about others."""
        raise NotImplementedError

    def _invariants(self, pos: torch.Tensor, z: torch.Tensor, n_real: torch.Tensor) -> torch.Tensor:
        """``(N, output_size)`` invariants of ``N >= 1`` molecules ``(N, A, 3)``, ``(N, A)``."""
        raise NotImplementedError

    def forward(self, positions: torch.Tensor, charges: torch.Tensor) -> torch.Tensor:
        """Invariants of molecules.

        Parameters
        ----------
        positions : torch.Tensor
            Atom positions in angstrom (float32 or float64).
        charges : torch.Tensor
            Atomic numbers; 0 marks padding atoms (ignored).

        Returns
        -------
        torch.Tensor
            In the dtype and on the device of ``positions``, columns described by ``meta()``.

        Shapes
        ------
        positions: (..., A, 3), charges: (..., A) -> (..., output_size)
        """
        elements, fix = self._known_elements()
        positions, z = check_molecule_inputs(positions, charges, elements, fix)
        check_same_device(positions, next(self.buffers()), "positions", type(self).__name__)
        pos, z, n_real, batch_shape = flatten_real_atoms_first(positions, z)
        if pos.shape[0] == 0:
            return positions.new_zeros((*batch_shape, self.output_size))
        return self._invariants(pos, z, n_real).reshape(*batch_shape, self.output_size)


def flatten_real_atoms_first(positions: torch.Tensor, z: torch.Tensor
                             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Size]:
    """Molecules as one batch axis, each with its real atoms before its padding slots.

    Real atoms first lets each chunk drop the padding columns that none of its
    molecules needs. The order of the real atoms is kept.

    Parameters
    ----------
    positions : torch.Tensor
        Atom positions (checked).
    z : torch.Tensor
        Atomic numbers, 0 for padding.

    Returns
    -------
    positions : torch.Tensor
        ``(N, A, 3)``, atoms reordered.
    z : torch.Tensor
        ``(N, A)``, atoms reordered.
    n_real : torch.Tensor
        ``(N,)`` number of real atoms of each molecule.
    batch_shape : torch.Size
        The leading dimensions of the input, ``(...)``.

    Shapes
    ------
    positions: (..., A, 3), z: (..., A) -> (N, A, 3), (N, A), (N,)
    """
    batch_shape, n_atoms = positions.shape[:-2], positions.shape[-2]
    n = math.prod(batch_shape)  # not -1: an empty batch without atom slots has no inferable size
    pos = positions.reshape(n, n_atoms, 3)
    z = z.reshape(n, n_atoms)
    atom_order = torch.argsort((z == 0).to(torch.int8), dim=1, stable=True)
    pos = torch.gather(pos, 1, atom_order[..., None].expand(-1, -1, 3))
    z = torch.gather(z, 1, atom_order)
    return pos, z, (z > 0).sum(1), batch_shape


def chunk_plan(n_real: torch.Tensor, chunk_size: int, order: torch.Tensor | None = None
               ) -> list[tuple[torch.Tensor, int]]:
    """Chunks of at most ``chunk_size`` molecules, taken in ``order``, with the atom slots each needs.

    Parameters
    ----------
    n_real : torch.Tensor
        ``(N,)`` real atoms per molecule (real atoms first).
    chunk_size : int
        Molecules per chunk.
    order : torch.Tensor, optional
        ``(N,)`` permutation in which molecules are grouped (default: as given).

    Returns
    -------
    list of (torch.Tensor, int)
        Molecule indices of each chunk and the largest number of real atoms among them.
    """
    if order is None:
        order = torch.arange(n_real.shape[0], device=n_real.device)
    plan = []
    for start in range(0, order.shape[0], chunk_size):
        idx = order[start:start + chunk_size]
        plan.append((idx, int(n_real[idx].max())))
    return plan


def in_input_order(outputs: list[torch.Tensor], plan: list[tuple[torch.Tensor, int]]) -> torch.Tensor:
    """Results of the chunks of ``plan`` stacked back in the order of the molecules.

    Parameters
    ----------
    outputs : list of torch.Tensor
        ``(len(idx), ...)`` per chunk.
    plan : list of (torch.Tensor, int)
        The chunks (:func:`chunk_plan`).

    Returns
    -------
    torch.Tensor
        ``(N, ...)``.
    """
    order = torch.cat([idx for idx, _ in plan])
    return torch.cat(outputs, 0)[torch.argsort(order)]
