"""Exact Fourier-domain subsampling on the filters' non-zero blocks.

The spectrum of ``(x * f)`` subsampled by ``k`` in space is the average of the
``k x k`` blocks of ``x_hat f_hat`` (aliasing). Filters are localised in
frequency, so most blocks of ``f_hat`` are numerically zero; they are dropped
once, when the filters are split into blocks, and the product is only ever
formed on the blocks (and the rectangles inside them) that carry energy.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from wavephase.scattering._workspace import Workspace

__all__ = [
    "FilterBlocks",
    "block",
    "filter_blocks",
    "kymatio_level",
    "paired",
    "periodized_product",
    "periodized_sum",
    "periodized_sum_adjoint",
]

# Blocks whose largest filter value is below this fraction of the filter's
# peak are skipped; their contribution is below float64 round-off of the sum.
BLOCK_TOLERANCE = 1e-9


@dataclass(frozen=True)
class FilterBlocks:
    """Where the non-negligible ``k x k`` frequency blocks of a stack of filters lie.

    Only the layout: the values are a tensor of their own (see
    :func:`filter_blocks`), which an ``nn.Module`` keeps as a buffer in the
    layout of the maps it multiplies.

    Attributes
    ----------
    k : int
        Subsampling factor.
    index : tuple of (int, int)
        Block coordinates ``(a, c)`` kept, largest support first.
    crops : tuple of (int, int, int, int)
        Per kept block, rows ``[r0, r1)`` and columns ``[c0, c1)`` of the
        rectangle outside which all its filters are zero.
    """

    k: int
    index: tuple[tuple[int, int], ...]
    crops: tuple[tuple[int, int, int, int], ...]

    @property
    def complete(self) -> bool:
        """Whether every block is kept (then an adjoint writes each element once)."""
        return len(self.index) == self.k**2


def filter_blocks(filters: torch.Tensor, k: int) -> tuple[FilterBlocks, torch.Tensor]:
    """Split filters into their non-negligible ``k x k`` frequency blocks.

    Filter values below ``BLOCK_TOLERANCE`` times the peak are set to zero (this
    also removes float32 denormals from the Gaussian tails, whose arithmetic is
    tens of times slower), blocks left all zero are dropped, and each kept block
    records the rectangle that holds its non-zero values, the only part of the
    block that products need to touch.

    Parameters
    ----------
    filters : torch.Tensor
        Real Fourier-domain filters ``(F..., M, N)``.
    k : int
        Subsampling factor; ``M`` and ``N`` must be divisible by ``k``.

    Returns
    -------
    blocks : FilterBlocks
        The layout of the kept blocks.
    values : torch.Tensor
        The kept blocks divided by ``k**2``, in the order of ``blocks.index``.

    Shapes
    ------
    filters: (F..., M, N) -> values (n_blocks, F..., M/k, N/k)
    """
    M, N = filters.shape[-2:]
    if M % k or N % k:
        raise ValueError(f"filter grid {(M, N)} is not divisible by the subsampling factor {k}.")
    m, n = M // k, N // k
    lead = filters.shape[:-2]
    parts = filters.reshape(*lead, k, m, k, n).movedim((-4, -2), (0, 1)).reshape(k * k, *lead, m, n)
    parts = parts.masked_fill(parts.abs() <= BLOCK_TOLERANCE * parts.abs().amax(), 0)
    support = (parts != 0).reshape(k * k, -1, m, n).any(dim=1)  # (k*k, m, n)
    crops = {}
    for b in torch.nonzero(support.flatten(1).any(dim=1)).flatten().tolist():
        rows = torch.nonzero(support[b].any(dim=1)).flatten()
        cols = torch.nonzero(support[b].any(dim=0)).flatten()
        crops[b] = (int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1)
    # Largest rectangle first: when it covers the whole block, the product starts
    # by writing it instead of zero-filling the output.
    keep = sorted(crops, key=lambda b: -(crops[b][1] - crops[b][0]) * (crops[b][3] - crops[b][2]))
    blocks = FilterBlocks(k, tuple((b // k, b % k) for b in keep), tuple(crops[b] for b in keep))
    return blocks, (parts[keep] / (k * k)).contiguous()


def paired(values: torch.Tensor) -> torch.Tensor:
    """Real filter values stored twice on a new last axis, for :func:`periodized_sum`.

    Complex spectra times real filters run fastest as real products on the
    spectra's ``(re, im)`` pairs; storing the filters in that layout once saves a
    copy per call.

    Parameters
    ----------
    values : torch.Tensor
        Real filter values.

    Returns
    -------
    torch.Tensor
        ``values`` repeated on a new last axis of size 2, contiguous.

    Shapes
    ------
    values: (...) -> (..., 2)
    """
    return values.unsqueeze(-1).expand(*values.shape, 2).contiguous()


def block(x: torch.Tensor, a: int, c: int, k: int, row_dim: int, col_dim: int = -1) -> torch.Tensor:
    """Block ``(a, c)`` of the ``k x k`` partition of the axes ``(row_dim, col_dim)``, as a view.

    Parameters
    ----------
    x : torch.Tensor
        Tensor whose axes ``row_dim`` and ``col_dim`` are divisible by ``k``.
    a, c : int
        Block row and column, in ``[0, k)``.
    k : int
        Blocks per axis.
    row_dim, col_dim : int
        The two axes.

    Returns
    -------
    torch.Tensor
        A view of ``x``.

    Shapes
    ------
    x: (..., M, ..., N, ...) -> (..., M/k, ..., N/k, ...)
    """
    m, n = x.shape[row_dim] // k, x.shape[col_dim] // k
    return x.narrow(row_dim, a * m, m).narrow(col_dim, c * n, n)


def _crop(x: torch.Tensor, crop: tuple[int, int, int, int], row_dim: int, col_dim: int) -> torch.Tensor:
    """Rows ``[r0, r1)`` and columns ``[c0, c1)`` of the axes ``(row_dim, col_dim)``."""
    r0, r1, c0, c1 = crop
    if r0 == 0 and c0 == 0 and r1 == x.shape[row_dim] and c1 == x.shape[col_dim]:
        return x  # the whole block: two views less per product (~6 us)
    return x.narrow(row_dim, r0, r1 - r0).narrow(col_dim, c0, c1 - c0)


def periodized_sum(x_hat: torch.Tensor, values: torch.Tensor, blocks: FilterBlocks, *, row_dim: int = -2,
                   col_dim: int = -1, is_paired: bool = False, workspace: Workspace | None = None) -> torch.Tensor:
    """Spectrum of ``(x * f)`` subsampled by ``k``: block sum of ``x_hat f_hat``, without autograd.

    Parameters
    ----------
    x_hat : torch.Tensor
        Spectra; complex, or real when the caller lays out real and imaginary
        parts itself (then ``values`` are real too).
    values : torch.Tensor
        Block values from :func:`filter_blocks`, in any layout whose entry
        ``values[b]`` broadcasts against the blocks of ``x_hat``.
    blocks : FilterBlocks
        Their layout.
    row_dim, col_dim : int
        Axes of ``x_hat`` holding the two frequencies; ``col_dim`` may differ
        from -1 for real ``x_hat`` only.
    is_paired : bool
        ``values`` are real and laid out by :func:`paired` (complex ``x_hat`` only).
    workspace : Workspace, optional
        The cascade's buffer pool: the result is its buffer ``"product"``.

    Returns
    -------
    torch.Tensor
        The subsampled spectra, of ``x_hat``'s kind.

    Shapes
    ------
    x_hat: (..., M, N), values (n_blocks, F..., M/k, N/k) -> (broadcast(..., F...), M/k, N/k)
    """
    x, v, rows, cols = x_hat, values, row_dim, col_dim
    if x_hat.is_complex() and not (values[..., 0] if is_paired else values).is_complex():
        # Real products on (re, im) pairs against the filters stored twice,
        # (..., n, 2), run about twice as fast as torch's complex-by-real kernel.
        x, rows, cols = torch.view_as_real(x_hat), row_dim - 1 if row_dim < 0 else row_dim, -2
        v = v.to(x.dtype) if is_paired else paired(values.to(x.dtype))
    # Axes counted from the end, where x's blocks and the filters align.
    rows = rows - x.dim() if rows >= 0 else rows
    cols = cols - x.dim() if cols >= 0 else cols
    k = blocks.k
    first = block(x, *blocks.index[0], k, rows, cols)
    # Sizes of broadcast-compatible shapes, aligned on the right (torch.broadcast_shapes
    # costs ~0.1 ms a call, as much as a small product).
    lead = (1,) * (v.dim() - 1 - first.dim())
    shape = [max(p, q) for p, q in zip(lead + first.shape, (1,) * (first.dim() - v.dim() + 1) + v.shape[1:])]
    out = (workspace or Workspace(False)).empty("product", shape, x.dtype, x.device)
    if blocks.crops[0] == (0, first.shape[rows], 0, first.shape[cols]):
        torch.mul(first, v[0], out=out)
        start = 1
    else:
        out.zero_()
        start = 0
    # In-place accumulation on each block's support: one pass over that part of
    # the output per block, no temporaries.
    for b in range(start, len(blocks.index)):
        crop = blocks.crops[b]
        _crop(out, crop, rows, cols).addcmul_(_crop(block(x, *blocks.index[b], k, rows, cols), crop, rows, cols),
                                              _crop(v[b], crop, rows, cols))
    return torch.view_as_complex(out) if x is not x_hat else out


def periodized_sum_adjoint(grad: torch.Tensor, values: torch.Tensor, blocks: FilterBlocks, row_dim: int,
                           x_shape: torch.Size) -> torch.Tensor:
    """Adjoint of :func:`periodized_sum` in ``x_hat``: the gradient of a loss with respect to ``x_hat``.

    Parameters
    ----------
    grad : torch.Tensor
        Gradient with respect to the subsampled spectra.
    values : torch.Tensor
        Block values (not paired), as given to :func:`periodized_sum`.
    blocks : FilterBlocks
        Their layout.
    row_dim : int
        Axis of ``x_hat`` holding the first frequency (the second is the last).
    x_shape : torch.Size
        Shape of ``x_hat``; axes along which it was broadcast are summed.

    Returns
    -------
    torch.Tensor
        Gradient with respect to ``x_hat``.

    Shapes
    ------
    grad: (broadcast(..., F...), M/k, N/k) -> x_shape (..., M, N)
    """
    lead = grad.dim() - len(x_shape)
    # Axes along which x_hat was broadcast are summed; with all blocks at once
    # this is one batched matrix product (about twice as fast as per-block sums).
    kept = [d for d in range(grad.dim()) if d >= lead and not (x_shape[d - lead] == 1 and grad.shape[d] > 1)]
    v_axes = list(range(grad.dim() - values.dim() + 1, grad.dim()))
    v = values.conj() if values.is_complex() else values.to(grad.dtype)
    per_block = torch.einsum(grad, list(range(grad.dim())), v, [grad.dim()] + v_axes, [grad.dim()] + kept)
    grad_x = grad.new_empty(x_shape) if blocks.complete else grad.new_zeros(x_shape)
    for b, (a, c) in enumerate(blocks.index):
        target = block(grad_x, a, c, blocks.k, row_dim)
        target.copy_(per_block[b].reshape(target.shape))
    return grad_x


class _PeriodizedProduct(torch.autograd.Function):
    """Block-summed product; the backward writes each block's gradient in place.

    Autograd's own backward of the sliced products would allocate and add a
    zero-filled full-size gradient per block.
    """

    @staticmethod
    def forward(ctx, x_hat: torch.Tensor, values: torch.Tensor, blocks: FilterBlocks,  # type: ignore[override]
                row_dim: int, is_paired: bool, workspace: Workspace | None) -> torch.Tensor:
        out = periodized_sum(x_hat, values, blocks, row_dim=row_dim, is_paired=is_paired, workspace=workspace)
        ctx.save_for_backward(values[..., 0] if is_paired else values)
        ctx.blocks, ctx.row_dim, ctx.x_shape = blocks, row_dim, x_hat.shape
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (values,) = ctx.saved_tensors
        grad_x = periodized_sum_adjoint(grad, values, ctx.blocks, ctx.row_dim, ctx.x_shape)
        return grad_x, None, None, None, None, None


def periodized_product(x_hat: torch.Tensor, values: torch.Tensor, blocks: FilterBlocks, *, row_dim: int = -2,
                       is_paired: bool = False, workspace: Workspace | None = None) -> torch.Tensor:
    """:func:`periodized_sum` of complex spectra, differentiable in ``x_hat`` (the filters are constants).

    Parameters
    ----------
    x_hat : torch.Tensor
        Complex spectra ``(..., M, N)``; broadcast against the filter dims.
    values : torch.Tensor
        Block values from :func:`filter_blocks` (possibly cast, moved, or laid
        out by :func:`paired`).
    blocks : FilterBlocks
        Their layout.
    row_dim : int
        Axis of ``x_hat`` holding the first frequency (the second is the last
        axis); ``values[b]`` must broadcast against ``x_hat``'s blocks.
    is_paired : bool
        ``values`` are laid out by :func:`paired`.
    workspace : Workspace, optional
        The cascade's buffer pool: the result is its buffer ``"product"``.

    Returns
    -------
    torch.Tensor
        Complex spectra at the subsampled resolution.

    Shapes
    ------
    x_hat: (..., M, N), filters (F..., M, N) -> (broadcast(..., F...), M/k, N/k)
    """
    return _PeriodizedProduct.apply(x_hat, values, blocks, row_dim, is_paired, workspace)


def kymatio_level(filters: torch.Tensor, r: int) -> torch.Tensor:
    """Restrict a Fourier filter to the band that a ``2**r``-subsampled grid holds.

    Keeps the frequencies ``|k| < M / 2**(r+1)`` on each axis and lays them out
    on the ``(M / 2**r, N / 2**r)`` grid, which is what ScatNet/Kymatio do with
    their mask-and-periodise step.

    Parameters
    ----------
    filters : torch.Tensor
        Fourier filters ``(..., M, N)``.
    r : int
        Resolution level (0 returns the filters unchanged).

    Returns
    -------
    torch.Tensor
        Filters on the coarser grid.

    Shapes
    ------
    filters: (..., M, N) -> (..., M / 2**r, N / 2**r)
    """
    if r == 0:
        return filters
    M, N = filters.shape[-2:]
    h, w = M >> (r + 1), N >> (r + 1)
    rows = torch.cat((torch.arange(h), torch.arange(M - h, M)))
    cols = torch.cat((torch.arange(w), torch.arange(N - w, N)))
    return filters[..., rows, :][..., cols]
