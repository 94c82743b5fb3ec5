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
    _block,
    grad_over_modulus,
    kymatio_level,
    lowpass_matrices,
    _periodized_sum,
    _periodized_sum_adjoint,
    modulus_of_parts,
    reflect_indices,
)
from wavephase.scattering.threads import in_worker, worker_workspaces

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


def _planar(a: torch.Tensor, out_ri_first: bool, in_ri_first: bool) -> torch.Tensor:
    """Real matrix acting as the complex ``a`` on vectors whose real and imaginary parts are separate entries.

    A vector of length ``2 n`` holds entry ``(i, part)`` at ``part * n + i`` when
    ``ri_first`` (two planes), else at ``2 i + part``.
    """
    m, n = a.shape
    r = a.real.new_zeros(2, m, 2, n)  # (part out, i, part in, j)
    r[0, :, 0], r[0, :, 1], r[1, :, 0], r[1, :, 1] = a.real, -a.imag, a.imag, a.real
    r = r if out_ri_first else r.transpose(0, 1)
    r = r if in_ri_first else r.transpose(-1, -2)
    return r.reshape(2 * m, 2 * n)


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
                inv_rows: torch.Tensor, inv_rows_adjoint: torch.Tensor, inv_cols: torch.Tensor, work: Workspace,
                scratch: Workspace, key: str) -> torch.Tensor:
        y = _periodized_sum(u_hat, values, blocks, 0, False, scratch)
        y = _rows(inv_rows, y, scratch, "inverse_first")
        parts = _cols(torch.view_as_real(y).flatten(-2), inv_cols, work, "parts")
        a, b = parts.chunk(2, dim=-1)
        out = modulus_of_parts(a, b, work.out(key, a.shape, a.dtype, a.device))
        ctx.save_for_backward(parts, out, values, inv_rows_adjoint, inv_cols)
        ctx.blocks, ctx.u_shape, ctx.scratch = blocks, u_hat.shape, scratch
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        parts, out, values, inv_rows_adjoint, inv_cols = ctx.saved_tensors
        work = _backward_workspace(ctx)
        scale = grad_over_modulus(grad, out, work.out("grad_scale", out.shape, out.dtype, out.device))
        # The scale written twice, then one contiguous product: faster than broadcasting it over (2, n).
        g = torch.cat((scale, scale), dim=-1, out=work.out("grad_parts", parts.shape, parts.dtype, parts.device))
        g = _cols(g.mul_(parts), inv_cols.T, work, "grad_first")
        # A stored conjugate transpose: torch's GEMM on a conjugated view runs ~1.8x slower.
        g = _rows(inv_rows_adjoint, torch.view_as_complex(g.unflatten(-1, (-1, 2))), work, "grad_second")
        return _periodized_sum_adjoint(g, values, ctx.blocks, 0, ctx.u_shape), *[None] * 8


def _backward_workspace(ctx) -> Workspace:
    """Buffers for a backward pass: the forward call's scratch (in a worker, the worker's own), unless the
    backward itself is recorded.

    Every new multi-megabyte intermediate costs its page faults (a GEMM writing
    into new memory took 2.3x as long as into a reused buffer in (a)), and the
    backward passes of the chunks run one after the other.
    """
    if torch.is_grad_enabled():
        return Workspace(False)
    # A part recorded by one worker may be differentiated by another: each uses its own.
    return worker_workspaces()[1] if in_worker() else ctx.scratch


class _PlanarWaveletModulus(torch.autograd.Function):
    """``|u * psi|`` at order 2 on planar maps ``(m, 2, n, ...)``: real and imaginary planes, batch last.

    With the batch axes innermost, the Fourier product multiplies runs of
    ``B L`` contiguous values by one filter value (the usual layout, frequencies
    last, gives runs of ``n`` values against a broadcast operand: ~1.5x slower),
    and the gradient of the product is a batched matrix product without a
    transposing copy. Both inverse transforms are real GEMMs on the planes.
    """

    @staticmethod
    def forward(ctx, u_hat: torch.Tensor, values: torch.Tensor, blocks: FilterBlocks,  # type: ignore[override]
                inv_rows: torch.Tensor, inv_cols: torch.Tensor, work: Workspace, scratch: Workspace,
                key: str) -> torch.Tensor:
        y = _periodized_sum(u_hat, values, blocks, 0, False, scratch, col_dim=2)  # (m, 2, n, L, BL)
        m, _, n, *rest = y.shape
        y = torch.matmul(inv_cols, y.view(m, 2 * n, -1),
                         out=scratch.empty("inverse_first", (m, 2 * n, y[0, 0, 0].numel()), y.dtype, y.device))
        parts = _rows(inv_rows, y.view(2 * m, -1), work, "parts").view(2, m, n, *rest)
        out = modulus_of_parts(parts[0], parts[1], work.out(key, parts.shape[1:], parts.dtype, parts.device))
        ctx.save_for_backward(parts, out, values, inv_rows, inv_cols)
        ctx.blocks, ctx.u_shape, ctx.scratch = blocks, u_hat.shape, scratch
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        parts, out, values, inv_rows, inv_cols = ctx.saved_tensors
        work = _backward_workspace(ctx)
        _, m, n, *rest = parts.shape
        size = parts[0, 0].numel()
        scale = grad_over_modulus(grad, out, work.out("grad_scale", out.shape, out.dtype, out.device))
        g = torch.mul(parts, scale, out=work.out("grad_parts", parts.shape, parts.dtype, parts.device))
        g = torch.mm(inv_rows.T, g.view(2 * m, -1), out=work.out("grad_first", (2 * m, size), g.dtype, g.device))
        g = torch.matmul(inv_cols.T, g.view(m, 2 * n, -1),
                         out=work.out("grad_second", (m, 2 * n, size // n), g.dtype, g.device))
        return _planar_product_adjoint(g.view(m, 2, n, *rest), values, ctx.blocks, ctx.u_shape, work), *[None] * 7


class _PlanarSpectrum(torch.autograd.Function):
    """2D DFT of real maps ``(m, ..., n)`` into planar spectra ``(m, 2, n, prod(...))``.

    No backward pass needs the spectra or the half-transformed maps (the
    transforms are linear and the order-2 node keeps only its own modulus), so
    both are written into reused buffers even while a graph is recorded.
    """

    @staticmethod
    def forward(ctx, u: torch.Tensor, cols: torch.Tensor, rows: torch.Tensor,  # type: ignore[override]
                scratch: Workspace) -> torch.Tensor:
        m, n = u.shape[0], u.shape[-1]
        size = u[0, ..., 0].numel()
        z = torch.matmul(cols, u.view(m, size, n).transpose(1, 2),
                         out=scratch.empty("spectrum_cols", (m, 2 * n, size), u.dtype, u.device))
        u_hat = torch.mm(rows, z.view(2 * m, -1), out=scratch.empty("spectrum", (2 * m, n * size), u.dtype, u.device))
        ctx.save_for_backward(cols, rows)
        ctx.u_shape, ctx.scratch = u.shape, scratch
        return u_hat.view(m, 2, n, size)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        cols, rows = ctx.saved_tensors
        work = _backward_workspace(ctx)
        m, _, n, size = grad.shape
        g = torch.mm(rows.T, grad.reshape(2 * m, -1), out=work.out("grad_spectrum", (2 * m, n * size), grad.dtype,
                                                                   grad.device))
        return torch.matmul(g.view(m, 2 * n, size).transpose(1, 2), cols).view(ctx.u_shape), None, None, None


def _planar_product_adjoint(grad: torch.Tensor, values: torch.Tensor, blocks: FilterBlocks,
                            u_shape: torch.Size, work: Workspace) -> torch.Tensor:
    """Gradient of the planar periodized product ``(m, 2, n, L, BL)`` with respect to its spectra ``u_shape``."""
    # Per (row, part, column), (blocks, L) @ (L, BL): batch axes leading, so no operand is
    # transposed (about twice as fast as the generic einsum adjoint).
    m, _, n, _, size = grad.shape
    per_block = torch.matmul(values.squeeze(-1).movedim(0, -2).to(grad.dtype), grad,
                             out=work.out("grad_blocks", (m, 2, n, len(blocks.index), size), grad.dtype, grad.device))
    grad_u = grad.new_empty(u_shape) if len(blocks.index) == blocks.k**2 else grad.new_zeros(u_shape)
    for b, (a, c) in enumerate(blocks.index):
        _block(grad_u, a, c, blocks.k, 0, 2).copy_(per_block[:, :, :, b, None])
    return grad_u


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
        self.channels = 1 + L * J + (L * L * J * (J - 1) // 2 if max_order == 2 else 0)
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
            add(f"_inv_rows{r}_adjoint", dft_matrix(m, inverse=True).mH.contiguous())
            add(f"_inv_cols{r}", _split(dft_matrix(n, inverse=True).T))
            self._add_blocks(f"_psi{r}", psi[r], 2**r, dtype)
            if max_order == 2 and r < J - 1:  # spectra of |U1| for order 2, planar
                f = dft_matrix(n)
                add(f"_fwd_cols{r}", torch.cat((f.real, f.imag)))
                add(f"_fwd_rows{r}", _planar(dft_matrix(m), out_ri_first=False, in_ri_first=False))
            if max_order == 2 and r > 0:
                add(f"_inv_rows{r}_planar", _planar(dft_matrix(m, inverse=True), out_ri_first=True, in_ri_first=False))
                add(f"_inv_cols{r}_planar", _planar(dft_matrix(n, inverse=True), out_ri_first=True, in_ri_first=True))
                for j1 in range(r):
                    self._add_blocks(f"_psi{r}_at{j1}", kymatio_level(psi[r], j1), 2 ** (r - j1), dtype, planar=True)

    def _add_blocks(self, name: str, filters: torch.Tensor, k: int, dtype: torch.dtype, planar: bool = False) -> None:
        """Filter blocks laid out as the maps they multiply.

        ``(n_blocks, m, 1, L, n)`` against spectra ``(m, B, 1, n)``, or when
        ``planar`` ``(n_blocks, m, 1, n, L, 1)`` against ``(m, 2, n, 1, B L)``.
        """
        blocks = FilterBlocks(filters, k)
        self._blocks[name] = blocks
        nb, L, m, n = blocks.values.shape
        if planar:
            values = blocks.values.permute(0, 2, 3, 1).reshape(nb, m, 1, n, L, 1)
        else:
            values = blocks.values.transpose(1, 2).reshape(nb, m, 1, L, n)
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

    def _lowpass_planar(self, u: torch.Tensor, r: int, work: Workspace) -> torch.Tensor:
        """Low-pass, subsample and crop real maps ``(m, n, ...)`` at level ``r`` -> ``(m', n', ...)``."""
        rows, cols = self._get(f"_phi_rows{r}", u), self._get(f"_phi_cols{r}", u)
        out = None
        for a, b in zip(rows, cols):
            t = _rows(a, u, work, "lowpass")
            term = torch.matmul(b.T, t.view(*t.shape[:2], -1)).view(a.shape[0], b.shape[1], *u.shape[2:])
            out = term if out is None else out + term
        return out

    def _spectrum(self, u: torch.Tensor, r: int, scratch: Workspace) -> torch.Tensor:
        """2D DFT of real maps ``(m, ..., n)`` at level ``r``, planar: ``(m, 2, n, prod(...))`` (buffer ``"spectrum"``)."""
        return _PlanarSpectrum.apply(u, self._get(f"_fwd_cols{r}", u), self._get(f"_fwd_rows{r}", u), scratch)

    def _planar_wavelet_modulus(self, u_hat: torch.Tensor, name: str, r: int, work: Workspace, scratch: Workspace,
                                key: str) -> torch.Tensor:
        """``|u * psi|`` from planar spectra ``(m, 2, n, 1, BL)``, subsampled to level ``r``: ``(m', n', L, BL)``."""
        return _PlanarWaveletModulus.apply(u_hat, self._get(name, u_hat), self._blocks[name],
                                           self._get(f"_inv_rows{r}_planar", u_hat),
                                           self._get(f"_inv_cols{r}_planar", u_hat), work, scratch, key)

    def _wavelet_modulus(self, u_hat: torch.Tensor, name: str, r: int, work: Workspace, scratch: Workspace,
                         key: str) -> torch.Tensor:
        """``|u * psi|`` for a group of filters, subsampled to level ``r``, as real maps (buffer ``key``)."""
        return _WaveletModulus.apply(u_hat, self._get(name, u_hat.real), self._blocks[name],
                                     self._get(f"_inv_rows{r}", u_hat), self._get(f"_inv_rows{r}_adjoint", u_hat),
                                     self._get(f"_inv_cols{r}", u_hat.real), work, scratch, key)

    def forward(self, x: torch.Tensor, work: Workspace | None = None, scratch: Workspace | None = None,
                out: torch.Tensor | None = None) -> torch.Tensor:
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
        out : torch.Tensor, optional
            Tensor of the result's shape to write the coefficients into (only
            without autograd).

        Returns
        -------
        torch.Tensor
            Coefficients in Kymatio's channel order (``out`` when given).

        Shapes
        ------
        x: (B, M, N) -> (B, C, M // 2**J, N // 2**J)
        """
        J, work, scratch = self.J, work or Workspace(False), scratch or Workspace(True)
        x = x.transpose(0, 1).contiguous()  # (M, B, N)
        x_hat = torch.view_as_complex(_cols(x, self._get("_x_cols", x), work, "x_cols").unflatten(-1, (-1, 2)))
        x_hat = _rows(self._get("_x_rows", x_hat), x_hat, work, "x_hat")[:, :, None]  # (Mp, B, 1, Np)
        orders01 = [self._lowpass(x[:, :, None], "_x", work)]
        order2 = []
        for j1 in range(J):
            u1 = self._wavelet_modulus(x_hat, f"_psi{j1}", j1, work, scratch, "u1")  # (m1, B, L, n1)
            orders01.append(self._lowpass(u1, j1, work))
            if self.max_order == 2 and j1 < J - 1:
                u1_hat = self._spectrum(u1, j1, scratch)[:, :, :, None]  # (m1, 2, n1, 1, B L)
                paths = []
                for j2 in range(j1 + 1, J):
                    u2 = self._planar_wavelet_modulus(u1_hat, f"_psi{j2}_at{j1}", j2, work, scratch, "u2")
                    s2 = self._lowpass_planar(u2, j2, work)  # (m, n, L2, B L1)
                    paths.append(s2.view(*s2.shape[:3], -1, self.L).permute(0, 3, 4, 2, 1))  # (m, B, L1, L2, n)
                order2.append(torch.cat(paths, dim=3).flatten(2, 3))
        if out is None:
            return torch.cat(orders01 + order2, dim=2).permute(1, 2, 0, 3)
        torch.cat(orders01 + order2, dim=2, out=out.permute(2, 0, 1, 3))
        return out
