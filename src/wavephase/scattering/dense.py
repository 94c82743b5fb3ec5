"""Small-image path of :class:`~wavephase.Scattering2D`: every DFT as a dense matrix product.

On grids of a few dozen pixels an FFT spends its time in bookkeeping, while a 2D
DFT written as two matrix products, ``F X F^T``, runs near the machine's GEMM
peak. This module keeps every map in the layout ``(rows, batch, channels, cols)``
so that both products are single flat GEMMs without transposes: a map on the
columns is ``X @ A``, one on the rows is ``A @ X.reshape(rows, -1)``. Linear steps
are folded into the matrices: the boundary padding into the first DFT and into
the order-0 low-pass, the low-pass, its subsampling and crop into one matrix per
axis. Real inputs meet complex matrices through real GEMMs whose columns hold
interleaved or split real and imaginary parts, so no real map is ever cast to
complex. Fourier-domain subsampling uses the same filter blocks as the FFT path,
so both paths compute the same coefficients.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from wavephase.scattering.fourier import (
    FilterBlocks,
    Workspace,
    grad_over_modulus,
    kymatio_level,
    lowpass_matrices,
    _periodized_sum,
    _periodized_sum_adjoint,
    modulus_of_parts,
    reflect_indices,
)

__all__ = ["DenseScattering", "dft_matrix", "padding_matrix"]


def dft_matrix(n: int, inverse: bool = False) -> torch.Tensor:
    """The ``n``-point DFT as a complex128 matrix (``1/n``-normalised when inverse).

    Parameters
    ----------
    n : int
        Transform length.
    inverse : bool
        Inverse transform, as ``torch.fft.ifft``.

    Returns
    -------
    torch.Tensor
        ``F`` with ``fft(x) = F @ x``.

    Shapes
    ------
    -> (n, n) complex128
    """
    k = torch.arange(n)
    # Reducing k * l modulo n first keeps the phase exact for large products.
    phase = (k[:, None] * k[None, :] % n).to(torch.float64) * (2 * math.pi / n)
    f = torch.polar(torch.ones_like(phase), phase if inverse else -phase)
    return f / n if inverse else f


def padding_matrix(size: int, before: int, after: int, mode: str) -> torch.Tensor:
    """Boundary extension as a matrix: ``pad(x) = P @ x`` along one axis.

    Parameters
    ----------
    size : int
        Signal length.
    before, after : int
        Padding on each side.
    mode : {"reflect", "zeros"}
        Symmetric reflection (edge not repeated) or zeros.

    Returns
    -------
    torch.Tensor
        float64 matrix of zeros and ones.

    Shapes
    ------
    -> (before + size + after, size)
    """
    p = torch.zeros(before + size + after, size, dtype=torch.float64)
    if mode == "reflect":
        p[torch.arange(p.shape[0]), reflect_indices(size, before, after)] = 1.0
    else:
        p[before + torch.arange(size), torch.arange(size)] = 1.0
    return p


def _interleaved(a: torch.Tensor) -> torch.Tensor:
    """Real matrix whose product with a real ``x`` is ``x @ a`` in ``view_as_real`` layout."""
    return torch.stack((a.real, a.imag), dim=-1).flatten(-2)


def _split(a: torch.Tensor) -> torch.Tensor:
    """Real matrix taking a complex ``x`` in ``view_as_real`` layout to ``[Re(x @ a), Im(x @ a)]``."""
    n_in, n_out = a.shape
    r = a.real.new_zeros(n_in, 2, 2 * n_out)
    r[:, 0, :n_out], r[:, 1, :n_out] = a.real, -a.imag
    r[:, 0, n_out:], r[:, 1, n_out:] = a.imag, a.real
    return r.reshape(2 * n_in, 2 * n_out)


def _cols(u: torch.Tensor, a: torch.Tensor, work: Workspace | None = None, key: str = "") -> torch.Tensor:
    """``u @ a`` on the last axis of a real ``u``, as one GEMM over all other axes (into ``work[key]``)."""
    out = work.out(key, (*u.shape[:-1], a.shape[-1]), u.dtype, u.device) if work else None
    return torch.matmul(u, a, out=out)


def _rows(a: torch.Tensor, u: torch.Tensor, work: Workspace | None = None, key: str = "") -> torch.Tensor:
    """``a`` applied to the first axis of ``u``, as one GEMM (into ``work[key]``)."""
    shape = (a.shape[0], *u.shape[1:])
    out = work.out(key, shape, torch.promote_types(a.dtype, u.dtype), u.device) if work else None
    flat = torch.mm(a, u.reshape(u.shape[0], -1), out=None if out is None else out.view(a.shape[0], -1))
    return flat.view(shape)


class _WaveletModulus(torch.autograd.Function):
    """``|u * psi|`` of the matrix path (product, inverse DFT, modulus) as one autograd node.

    The backward pass needs only the modulus' input and output, so the product
    and the row transform write into reused buffers even while a graph is
    recorded, and autograd runs one node instead of about ten.
    """

    @staticmethod
    def forward(ctx, u_hat: torch.Tensor, values: torch.Tensor, blocks: FilterBlocks,  # type: ignore[override]
                inv_rows: torch.Tensor, inv_cols: torch.Tensor, work: Workspace, scratch: Workspace,
                key: str) -> torch.Tensor:
        y = _periodized_sum(u_hat, values, blocks, 0, False, scratch)
        y = _rows(inv_rows, y, scratch, "inverse_rows")
        parts = _cols(torch.view_as_real(y).flatten(-2), inv_cols, work, "inverse_cols")
        a, b = parts.chunk(2, dim=-1)
        out = modulus_of_parts(a, b, work.out(key, a.shape, a.dtype, a.device))
        ctx.save_for_backward(parts, out, values, inv_rows, inv_cols)
        ctx.blocks, ctx.u_shape = blocks, u_hat.shape
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        parts, out, values, inv_rows, inv_cols = ctx.saved_tensors
        scale = grad_over_modulus(grad, out)
        # One contiguous product against the scale written twice runs ~1.7x faster than
        # broadcasting it over a (2, n) split of the last axis.
        g = _cols(parts * torch.cat((scale, scale), dim=-1), inv_cols.T)
        g = _rows(inv_rows.mH, torch.view_as_complex(g.unflatten(-1, (-1, 2))))
        return _periodized_sum_adjoint(g, values, ctx.blocks, 0, ctx.u_shape), *[None] * 7


class DenseScattering(nn.Module):
    """Scattering cascade with matrix-product DFTs, for small images.

    Computes the same coefficients as the FFT path of
    :class:`~wavephase.Scattering2D` (Kymatio's padding, subsampling and order),
    from the same filters.

    Parameters
    ----------
    psi : torch.Tensor
        Fourier-domain wavelets on the padded grid ``(J, L, Mp, Np)``.
    phi : torch.Tensor
        Fourier-domain low-pass on the padded grid ``(Mp, Np)``.
    shape : (int, int)
        Image size ``(M, N)``.
    pad_mode : {"reflect", "zeros"}
        Boundary extension.
    max_order : int
        1 or 2.
    dtype : torch.dtype
        float32 or float64; complex matrices get the matching complex dtype.

    Shapes
    ------
    x: (B, M, N) -> (B, C, M // 2**J, N // 2**J)
    """

    def __init__(self, psi: torch.Tensor, phi: torch.Tensor, shape: tuple[int, int], pad_mode: str,
                 max_order: int, dtype: torch.dtype) -> None:
        super().__init__()
        J, L, Mp, Np = psi.shape
        M, N = shape
        self.J, self.L, self.max_order = J, L, max_order
        self._blocks: dict[str, FilterBlocks] = {}
        psi, phi = psi.double(), phi.double()
        complex_dtype = torch.complex64 if dtype == torch.float32 else torch.complex128

        def add(name: str, matrix: torch.Tensor) -> None:
            self.register_buffer(name, matrix.to(complex_dtype if matrix.is_complex() else dtype), persistent=False)

        pad_rows = padding_matrix(M, (Mp - M) // 2, Mp - M - (Mp - M) // 2, pad_mode)
        pad_cols = padding_matrix(N, (Np - N) // 2, Np - N - (Np - N) // 2, pad_mode)
        add("_x_cols", _interleaved(pad_cols.T.to(torch.complex128) @ dft_matrix(Np).T))
        add("_x_rows", dft_matrix(Mp) @ pad_rows.to(torch.complex128))
        for r in range(J):
            m, n = Mp >> r, Np >> r
            rows, cols = lowpass_matrices(kymatio_level(phi, r), 2 ** (J - r))
            if r == 0:  # order 0 is averaged straight from the unpadded input
                add("_phi_rows_x", (pad_rows.T @ rows).transpose(-1, -2))
                add("_phi_cols_x", pad_cols.T @ cols)
            add(f"_phi_rows{r}", rows.transpose(-1, -2))
            add(f"_phi_cols{r}", cols)
            add(f"_inv_rows{r}", dft_matrix(m, inverse=True))
            add(f"_inv_cols{r}", _split(dft_matrix(n, inverse=True).T))
            if max_order == 2 and r < J - 1:
                add(f"_fwd_cols{r}", _interleaved(dft_matrix(n).T.contiguous()))
                add(f"_fwd_rows{r}", dft_matrix(m))
            self._add_blocks(f"_psi{r}", psi[r], 2**r, dtype, batch_dims=1)
            if max_order == 2:
                for j1 in range(r):
                    self._add_blocks(f"_psi{r}_at{j1}", kymatio_level(psi[r], j1), 2 ** (r - j1), dtype, batch_dims=2)

    def _add_blocks(self, name: str, filters: torch.Tensor, k: int, dtype: torch.dtype, batch_dims: int) -> None:
        """Filter blocks laid out as the maps they multiply: ``(n_blocks, m, 1...1, L, n)``."""
        blocks = FilterBlocks(filters, k)
        self._blocks[name] = blocks
        nb, L, m, n = blocks.values.shape
        values = blocks.values.transpose(1, 2).reshape(nb, m, *[1] * batch_dims, L, n)
        self.register_buffer(name, values.contiguous().to(dtype), persistent=False)

    def _get(self, name: str, like: torch.Tensor) -> torch.Tensor:
        buf = getattr(self, name)
        real = like.real.dtype if like.is_complex() else like.dtype
        if buf.is_complex():
            target = torch.complex64 if real == torch.float32 else torch.complex128
        else:
            target = real
        return buf if buf.dtype == target else buf.to(target)

    def _lowpass(self, u: torch.Tensor, r: int | str, work: Workspace) -> torch.Tensor:
        """Low-pass, subsample and crop real maps ``(m, ..., n)`` at level ``r`` (``"_x"``: the input)."""
        rows, cols = self._get(f"_phi_rows{r}", u), self._get(f"_phi_cols{r}", u)
        out = None
        for a, b in zip(rows, cols):
            term = _rows(a, _cols(u, b, work, "lowpass"))  # a result: never a reused buffer
            out = term if out is None else out + term
        return out

    def _spectrum(self, u: torch.Tensor, r: int, work: Workspace) -> torch.Tensor:
        """2D DFT of real maps ``(m, ..., n)`` at level ``r``."""
        half = torch.view_as_complex(_cols(u, self._get(f"_fwd_cols{r}", u), work, "spectrum_cols").unflatten(-1, (-1, 2)))
        return _rows(self._get(f"_fwd_rows{r}", half), half, work, "spectrum")

    def _wavelet_modulus(self, u_hat: torch.Tensor, name: str, r: int, work: Workspace, scratch: Workspace,
                         key: str) -> torch.Tensor:
        """``|u * psi|`` for a group of filters, subsampled to level ``r``, as real maps (buffer ``key``)."""
        return _WaveletModulus.apply(u_hat, self._get(name, u_hat.real), self._blocks[name],
                                     self._get(f"_inv_rows{r}", u_hat), self._get(f"_inv_cols{r}", u_hat.real),
                                     work, scratch, key)

    def forward(self, x: torch.Tensor, work: Workspace | None = None, scratch: Workspace | None = None) -> torch.Tensor:
        """Scattering coefficients of a batch of images.

        Parameters
        ----------
        x : torch.Tensor
            Real images, float32 or float64 (checked by the caller).
        work : Workspace, optional
            Buffers for the intermediates, reused from call to call when enabled
            (only without autograd).
        scratch : Workspace, optional
            Buffers for the intermediates that no backward pass keeps, reused even
            while a graph is recorded.

        Returns
        -------
        torch.Tensor
            Coefficients in Kymatio's channel order.

        Shapes
        ------
        x: (B, M, N) -> (B, C, M // 2**J, N // 2**J)
        """
        J, work, scratch = self.J, work or Workspace(False), scratch or Workspace(True)
        x = x.transpose(0, 1).contiguous()  # (M, B, N)
        x_hat = torch.view_as_complex(_cols(x, self._get("_x_cols", x), work, "x_cols").unflatten(-1, (-1, 2)))
        x_hat = _rows(self._get("_x_rows", x_hat), x_hat, work, "x_hat")[:, :, None]  # (Mp, B, 1, Np)
        out = [self._lowpass(x[:, :, None], "_x", work)]
        order2 = []
        for j1 in range(J):
            u1 = self._wavelet_modulus(x_hat, f"_psi{j1}", j1, work, scratch, "u1")  # (m1, B, L, n1)
            out.append(self._lowpass(u1, j1, work))
            if self.max_order == 2 and j1 < J - 1:
                u1_hat = self._spectrum(u1, j1, work)[:, :, :, None]  # (m1, B, L, 1, n1)
                paths = [self._lowpass(self._wavelet_modulus(u1_hat, f"_psi{j2}_at{j1}", j2, work, scratch, "u2"), j2, work)
                         for j2 in range(j1 + 1, J)]  # (m, B, L, L, n) each
                order2.append(torch.cat(paths, dim=3).flatten(2, 3))
        return torch.cat(out + order2, dim=2).permute(1, 2, 0, 3)
