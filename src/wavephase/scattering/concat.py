"""Several invariant transforms of molecules, side by side, as one transform."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["ConcatInvariants"]


class ConcatInvariants(nn.Module):
    """Concatenate the outputs of named transforms of ``(positions, charges)``.

    Parameters
    ----------
    **parts : nn.Module
        Transforms mapping positions ``(..., A, 3)`` and charges ``(..., A)`` to
        ``(..., K_i)``, each with ``output_size`` and ``meta()``; kept in the order given.

    Shapes
    ------
    positions: (..., A, 3), charges: (..., A) -> (..., sum_i K_i)

    Examples
    --------
    >>> import torch
    >>> from wavephase.scattering.atom_spectrum import SolidHarmonicAtomSpectrum
    >>> part = dict(L=0, elements=(1, 6), scale_offsets=0)
    >>> T = ConcatInvariants(fine=SolidHarmonicAtomSpectrum(scales=(0.5,), **part),
    ...                      coarse=SolidHarmonicAtomSpectrum(scales=(2.0,), **part))
    >>> T(torch.zeros(1, 1, 3), torch.tensor([[6.0]])).shape
    torch.Size([1, 12])
    """

    def __init__(self, **parts: nn.Module) -> None:
        super().__init__()
        if not parts:
            raise ValueError("ConcatInvariants needs at least one transform, e.g. scattering=SolidHarmonicScattering3D().")
        for name, part in parts.items():
            if not isinstance(part, nn.Module) or not hasattr(part, "output_size") or not hasattr(part, "meta"):
                raise TypeError(f"{name} must be an nn.Module with output_size and meta(), got {type(part).__name__}.")
        self.parts = nn.ModuleDict(parts)

    @property
    def output_size(self) -> int:
        """Total number of invariants."""
        return sum(int(p.output_size) for p in self.parts.values())

    def slices(self) -> dict[str, slice]:
        """Output columns of each part.

        Returns
        -------
        dict of str to slice
        """
        out, start = {}, 0
        for name, part in self.parts.items():
            out[name] = slice(start, start + int(part.output_size))
            start += int(part.output_size)
        return out

    def meta(self) -> dict[str, np.ndarray]:
        """Description of each output column: ``part`` (the part's name) and the parts' own columns.

        Returns
        -------
        dict of str to numpy.ndarray
            Arrays of length ``output_size``; a column a part does not describe is -1
            (numbers) or ``""`` (names) on that part's rows.
        """
        metas = {name: part.meta() for name, part in self.parts.items()}
        keys = list(dict.fromkeys(k for m in metas.values() for k in m))
        text = {k for m in metas.values() for k, v in m.items() if v.dtype.kind in "OUS"}
        out: dict[str, list] = {"part": []}
        for name, part in self.parts.items():
            n = int(part.output_size)
            out["part"] += [name] * n
            for k in keys:
                fill = "" if k in text else -1
                out.setdefault(k, []).extend(metas[name][k].tolist() if k in metas[name] else [fill] * n)
        return {k: np.array(v, dtype=str if k == "part" or k in text else None) for k, v in out.items()}

    def forward(self, positions: torch.Tensor, charges: torch.Tensor) -> torch.Tensor:
        """Invariants of every part, concatenated.

        Parameters
        ----------
        positions : torch.Tensor
            ``(..., A, 3)`` atom positions.
        charges : torch.Tensor
            ``(..., A)`` atomic numbers, 0 for padding.

        Returns
        -------
        torch.Tensor
            ``(..., output_size)``; parts of different dtypes are promoted.
        """
        outs = [part(positions, charges) for part in self.parts.values()]
        dtype = outs[0].dtype
        for o in outs[1:]:
            dtype = torch.promote_types(dtype, o.dtype)
        return torch.cat([o.to(dtype) for o in outs], -1)
