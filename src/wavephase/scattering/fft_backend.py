"""The cascade's steps with FFTs: the backend for large images.

Maps are laid out ``(B, angles..., M, N)``. Spectra of real images come from
``fft2`` of a real tensor, Fourier-domain subsampling from
:func:`~wavephase.scattering.periodize.periodized_product` on the filters'
non-zero blocks, and every low-pass (with its subsampling and Kymatio's crop) is
two small matrix products, as the Gaussian low-pass is separable.
"""

from __future__ import annotations

import torch
from torch import nn

from wavephase.scattering._workspace import Workspace
from wavephase.scattering.cascade import CascadeBackend
from wavephase.scattering.matrices import reflect_indices
from wavephase.scattering.modulus import modulus
from wavephase.scattering.periodize import FilterBlocks, filter_blocks, kymatio_level, paired, periodized_product

__all__ = ["FFTBackend"]


class FFTBackend(CascadeBackend):
    """Cascade steps with FFTs (see :class:`~wavephase.scattering.cascade.CascadeBackend`).

    Parameters
    ----------
    psi : torch.Tensor
        Fourier-domain wavelets on the padded grid ``(J, L, Mp, Np)``.
    phi : torch.Tensor
        Fourier-domain low-pass on the padded grid ``(Mp, Np)``; give it in
        float64, where the Gaussian is separable to round-off.
    shape : (int, int)
        Image size ``(M, N)``.
    pad_mode : {"reflect", "zeros"}
        Boundary extension.
    max_order : int
        1 or 2.
    dtype : torch.dtype
        Precision of the stored filters and matrices.

    Shapes
    ------
    x: (B, M, N) -> (B, C, M // 2**J, N // 2**J) through :func:`~wavephase.scattering.cascade.scatter`
    """

    def __init__(self, psi: torch.Tensor, phi: torch.Tensor, shape: tuple[int, int], pad_mode: str,
                 max_order: int, dtype: torch.dtype) -> None:
        J, L, Mp, Np = psi.shape
        super().__init__(J, L, shape, (Mp, Np), max_order)
        M, N = shape
        top, left = (Mp - M) // 2, (Np - N) // 2
        self.pad_mode = pad_mode
        self._zero_pad = (left, Np - N - left, top, Mp - M - top)
        self.register_buffer("_rows", reflect_indices(M, top, Mp - M - top), persistent=False)
        self.register_buffer("_cols", reflect_indices(N, left, Np - N - left), persistent=False)
        self._blocks: dict[str, FilterBlocks] = {}
        for r, (rows, cols) in enumerate(self.lowpass_levels(phi.double())):
            self.register_buffer(f"_phi_rows{r}", rows.to(dtype), persistent=False)
            self.register_buffer(f"_phi_cols{r}", cols.to(dtype), persistent=False)
        for j, r in self.block_levels():
            self._add_blocks(f"_psi{j}_at{r}", kymatio_level(psi[j], r), 2 ** (j - r), dtype)

    def _add_blocks(self, name: str, filters: torch.Tensor, k: int, dtype: torch.dtype) -> None:
        blocks, values = filter_blocks(filters.double(), k)  # one group at a time in float64: a low build peak
        self._blocks[name] = blocks
        self.register_buffer(name, paired(values.to(dtype)), persistent=False)

    def prepare(self, x: torch.Tensor, work: Workspace, scratch: Workspace) -> tuple[torch.Tensor, torch.Tensor]:
        """Padded images ``(B, 1, Mp, Np)`` and their spectra."""
        x = x[:, None]
        x = x[..., self._rows, :][..., self._cols] if self.pad_mode == "reflect" else nn.functional.pad(x, self._zero_pad)
        # fft2 of a real tensor is torch's real-to-complex FFT with the full output: 2-3x faster
        # (forward and backward) than rfft2 followed by Hermitian mirroring.
        return x, torch.fft.fft2(x)

    def lowpass_input(self, x: torch.Tensor, work: Workspace) -> torch.Tensor:
        """Order 0 ``(B, 1, m, n)`` from the padded images."""
        return self.lowpass(x, 0, work)

    def wavelet_modulus(self, u_hat: torch.Tensor, j: int, level: int, work: Workspace, scratch: Workspace,
                        key: str) -> torch.Tensor:
        """``(B, ..., L, Mp / 2**j, Np / 2**j)`` from spectra ``(B, ..., 1, Mp / 2**level, Np / 2**level)``."""
        name = f"_psi{j}_at{level}"
        y = periodized_product(u_hat, self.buffer(name, u_hat.real.dtype), self._blocks[name], is_paired=True,
                               workspace=work)
        z = torch.fft.ifft2(y)  # with out= it runs ~1.5x slower than into a fresh tensor (measured)
        return modulus(z, work.out(key, z.shape, z.real.dtype, z.device))

    def spectrum(self, u: torch.Tensor, level: int, work: Workspace, scratch: Workspace) -> torch.Tensor:
        """Spectra ``(B, L, 1, m, n)`` of the order-1 maps ``(B, L, m, n)``."""
        complex_dtype = torch.complex64 if u.dtype == torch.float32 else torch.complex128
        return torch.fft.fft2(u, out=work.out("spectrum", u.shape, complex_dtype, u.device))[:, :, None]

    def lowpass(self, u: torch.Tensor, level: int, work: Workspace) -> torch.Tensor:
        """Real maps ``(B, ..., m, n)`` averaged by phi, subsampled to ``2**J`` and cropped."""
        rows, cols = self.buffer(f"_phi_rows{level}", u.dtype), self.buffer(f"_phi_cols{level}", u.dtype)
        # Both products as flat (batch * rows, k) @ (k, n) matrix products: A^T @ (...) or a
        # non-contiguous left operand would make torch expand A over the batch (slow backward).
        out = None
        for a, b in zip(rows, cols):
            term = ((u @ b).transpose(-1, -2).contiguous() @ a).transpose(-1, -2)
            out = term if out is None else out + term
        return out

    def assemble(self, order0: torch.Tensor, order1: list[torch.Tensor], order2: list[list[torch.Tensor]],
                 out: torch.Tensor | None = None) -> torch.Tensor:
        """Channels ``(B, C, m, n)``: order 0, order 1 by ``(j1, l1)``, order 2 by ``(j1, l1, j2, l2)``."""
        # paths (B, L1, L2, m, n) side by side on the L2 axis give the order (l1, j2, l2) within j1.
        pieces = [order0, *order1, *(torch.cat(paths, dim=2).flatten(1, 2) for paths in order2)]
        return torch.cat(pieces, dim=1) if out is None else torch.cat(pieces, dim=1, out=out)
