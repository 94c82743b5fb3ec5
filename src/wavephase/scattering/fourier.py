"""Fourier-domain primitives shared by the scattering transforms.

``periodized_product`` is the heart of exact Fourier-domain subsampling: the
spectrum of ``(x * f)`` subsampled by ``k`` in space is the average of the
``k x k`` blocks of ``x_hat f_hat`` (aliasing). Filters are localised in
frequency, so most blocks of ``f_hat`` are numerically zero; they are dropped
once, when the module is built, and the product is only ever formed on the
blocks that carry energy.
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "FilterBlocks",
    "Workspace",
    "grad_over_modulus",
    "kymatio_level",
    "lowpass_matrices",
    "modulus",
    "modulus_of_parts",
    "paired",
    "periodized_product",
    "reflect_indices",
]

# Blocks whose largest filter value is below this fraction of the filter's
# peak are skipped; their contribution is below float64 round-off of the sum.
BLOCK_TOLERANCE = 1e-9


class FilterBlocks:
    """The non-negligible ``k x k`` frequency blocks of a stack of filters.

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

    Attributes
    ----------
    index : list of (int, int)
        Block coordinates ``(a, c)`` kept, largest support first.
    crops : list of (int, int, int, int)
        Per kept block, rows ``[r0, r1)`` and columns ``[c0, c1)`` of the
        rectangle outside which all its filters are zero.
    values : torch.Tensor
        Kept blocks divided by ``k**2``, shape ``(n_blocks, F..., M/k, N/k)``.

    Shapes
    ------
    filters: (F..., M, N) -> values (n_blocks, F..., M/k, N/k)
    """

    def __init__(self, filters: torch.Tensor, k: int) -> None:
        M, N = filters.shape[-2:]
        if M % k or N % k:
            raise ValueError(f"filter grid {(M, N)} is not divisible by the subsampling factor {k}.")
        m, n = M // k, N // k
        lead = filters.shape[:-2]
        blocks = filters.reshape(*lead, k, m, k, n).movedim((-4, -2), (0, 1)).reshape(k * k, *lead, m, n)
        blocks = blocks.masked_fill(blocks.abs() <= BLOCK_TOLERANCE * blocks.abs().amax(), 0)
        support = (blocks != 0).reshape(k * k, -1, m, n).any(dim=1)  # (k*k, m, n)
        crops = {}
        for b in torch.nonzero(support.flatten(1).any(dim=1)).flatten().tolist():
            rows = torch.nonzero(support[b].any(dim=1)).flatten()
            cols = torch.nonzero(support[b].any(dim=0)).flatten()
            crops[b] = (int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1)
        # Largest rectangle first: when it covers the whole block, the product starts
        # by writing it instead of zero-filling the output.
        keep = sorted(crops, key=lambda b: -(crops[b][1] - crops[b][0]) * (crops[b][3] - crops[b][2]))
        self.k = k
        self.index = [(b // k, b % k) for b in keep]
        self.crops = [crops[b] for b in keep]
        self.values = (blocks[keep] / (k * k)).contiguous()


class Workspace:
    """Output buffers reused by the chunks of one forward pass.

    Without autograd, every chunk of images has intermediates of the same
    shapes. Handing out the same memory each time avoids the page faults of
    fresh allocations: glibc gives freed multi-megabyte blocks back to the
    system between chunks, and faulting them in again cost about 20 % of the
    CPU time of a 256 x 256 transform. Each role (key) owns one block of
    memory, sized for its largest request, so the intermediates of all scales
    share it. With autograd the buffers would be overwritten while still saved
    for the backward pass, so a disabled workspace allocates afresh on every
    request.

    Parameters
    ----------
    enabled : bool
        Reuse buffers (only when no autograd graph is recorded).
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._buffers: dict[tuple[str, torch.device], torch.Tensor] = {}
        # The last view handed out per key: chunks repeat the same requests, and
        # building a view costs ~10 us, a few percent of a small chunk.
        self._views: dict[tuple[str, torch.device], tuple[tuple[int, ...], torch.dtype, torch.Tensor]] = {}

    def empty(self, key: str, shape: tuple[int, ...] | torch.Size, dtype: torch.dtype,
              device: torch.device) -> torch.Tensor:
        """An uninitialised tensor in the memory of ``key`` when enabled (a new one otherwise).

        Parameters
        ----------
        key : str
            Role of the buffer: a request overwrites what the previous request
            with the same key returned, so tensors alive at the same time need
            different keys.
        shape : tuple of int
            Shape of the buffer.
        dtype : torch.dtype
            Its dtype.
        device : torch.device
            Its device.

        Returns
        -------
        torch.Tensor
            Contiguous tensor of the requested shape.

        Shapes
        ------
        -> shape
        """
        if not self.enabled:
            return torch.empty(shape, dtype=dtype, device=device)
        shape = tuple(shape)
        last = self._views.get((key, device))
        if last is not None and last[0] == shape and last[1] == dtype:
            return last[2]
        nbytes = math.prod(shape) * dtype.itemsize
        memory = self._buffers.get((key, device))
        if memory is None or memory.numel() < nbytes:
            memory = self._buffers[(key, device)] = torch.empty(nbytes, dtype=torch.uint8, device=device)
        view = memory[:nbytes].view(dtype).view(shape)
        self._views[(key, device)] = (shape, dtype, view)
        return view

    def out(self, key: str, shape: tuple[int, ...] | torch.Size, dtype: torch.dtype,
            device: torch.device) -> torch.Tensor | None:
        """:meth:`empty` when enabled, else None: the ``out=`` argument of a torch function.

        Parameters
        ----------
        key, shape, dtype, device
            As for :meth:`empty`.

        Returns
        -------
        torch.Tensor or None
            A reused buffer, or None (let the function allocate and record its graph).

        Shapes
        ------
        -> shape
        """
        return self.empty(key, shape, dtype, device) if self.enabled else None


def paired(values: torch.Tensor) -> torch.Tensor:
    """Real filter values stored twice on a new last axis, for :func:`periodized_product`.

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


def periodized_product(x_hat: torch.Tensor, blocks: FilterBlocks, values: torch.Tensor | None = None,
                       row_dim: int = -2, is_paired: bool = False, workspace: Workspace | None = None) -> torch.Tensor:
    """Spectrum of ``(x * f)`` subsampled by ``k``: block average of ``x_hat f_hat``.

    Parameters
    ----------
    x_hat : torch.Tensor
        Complex spectra ``(..., M, N)``; broadcast against the filter dims.
    blocks : FilterBlocks
        Filter blocks (see :class:`FilterBlocks`).
    values : torch.Tensor, optional
        Replacement for ``blocks.values`` (same blocks, possibly laid out
        differently), e.g. the module's buffer cast to the input dtype or moved
        to its device.
    row_dim : int
        Axis of ``x_hat`` holding the first frequency (the second is the last
        axis); ``values[b]`` must broadcast against ``x_hat``'s blocks.
    is_paired : bool
        ``values`` are real and laid out by :func:`paired` (complex ``x_hat`` only).
    workspace : Workspace, optional
        Where the result is written (the buffer ``"product"``).

    Returns
    -------
    torch.Tensor
        Complex spectra at the subsampled resolution. Differentiable in
        ``x_hat``; the filters are constants.

    Shapes
    ------
    x_hat: (..., M, N), filters (F..., M, N) -> (broadcast(..., F...), M/k, N/k)
    """
    vals = blocks.values if values is None else values
    return _PeriodizedProduct.apply(x_hat, vals, blocks, row_dim, is_paired, workspace or Workspace(False))


def _block(x: torch.Tensor, a: int, c: int, k: int, row_dim: int, col_dim: int = -1) -> torch.Tensor:
    """Block ``(a, c)`` of a ``k x k`` partition of the axes ``(row_dim, col_dim)``."""
    m, n = x.shape[row_dim] // k, x.shape[col_dim] // k
    return x.narrow(row_dim, a * m, m).narrow(col_dim, c * n, n)


def _crop(x: torch.Tensor, crop: tuple[int, int, int, int], row_dim: int, col_dim: int) -> torch.Tensor:
    """Rows ``[r0, r1)`` and columns ``[c0, c1)`` of the axes ``(row_dim, col_dim)``."""
    r0, r1, c0, c1 = crop
    if r0 == 0 and c0 == 0 and r1 == x.shape[row_dim] and c1 == x.shape[col_dim]:
        return x  # the whole block: two views less per product (~6 us)
    return x.narrow(row_dim, r0, r1 - r0).narrow(col_dim, c0, c1 - c0)


def _periodized_sum(x_hat: torch.Tensor, vals: torch.Tensor, blocks: FilterBlocks, row_dim: int, is_paired: bool,
                    workspace: Workspace, col_dim: int = -1) -> torch.Tensor:
    """Forward pass of :func:`periodized_product` (no autograd); the result is the buffer ``"product"``.

    ``col_dim`` (axis of the second frequency) may differ from -1 for real ``x_hat`` only.
    """
    x, v, rows, cols = x_hat, vals, row_dim, col_dim
    if x_hat.is_complex() and not (vals[..., 0] if is_paired else vals).is_complex():
        # Real products on (re, im) pairs against the filters stored twice,
        # (..., n, 2), run about twice as fast as torch's complex-by-real kernel.
        x, rows, cols = torch.view_as_real(x_hat), row_dim - 1 if row_dim < 0 else row_dim, -2
        v = v.to(x.dtype) if is_paired else paired(vals.to(x.dtype))
    # Axes counted from the end, where x's blocks and the filters align.
    rows = rows - x.dim() if rows >= 0 else rows
    cols = cols - x.dim() if cols >= 0 else cols
    k = blocks.k
    first = _block(x, *blocks.index[0], k, rows, cols)
    # Sizes of broadcast-compatible shapes, aligned on the right (torch.broadcast_shapes
    # costs ~0.1 ms a call, as much as a small product).
    lead = (1,) * (v.dim() - 1 - first.dim())
    shape = [max(p, q) for p, q in zip(lead + first.shape, (1,) * (first.dim() - v.dim() + 1) + v.shape[1:])]
    out = workspace.empty("product", shape, x.dtype, x.device)
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
        _crop(out, crop, rows, cols).addcmul_(_crop(_block(x, *blocks.index[b], k, rows, cols), crop, rows, cols),
                                              _crop(v[b], crop, rows, cols))
    return torch.view_as_complex(out) if x is not x_hat else out


def _periodized_sum_adjoint(grad: torch.Tensor, vals: torch.Tensor, blocks: FilterBlocks, row_dim: int,
                            x_shape: torch.Size) -> torch.Tensor:
    """Gradient of :func:`_periodized_sum` with respect to ``x_hat`` (``vals`` not paired)."""
    lead = grad.dim() - len(x_shape)
    # Axes along which x_hat was broadcast are summed; with all blocks at once
    # this is one batched matrix product (about twice as fast as per-block sums).
    kept = [d for d in range(grad.dim()) if d >= lead and not (x_shape[d - lead] == 1 and grad.shape[d] > 1)]
    v_axes = list(range(grad.dim() - vals.dim() + 1, grad.dim()))
    v = vals.conj() if vals.is_complex() else vals.to(grad.dtype)
    per_block = torch.einsum(grad, list(range(grad.dim())), v, [grad.dim()] + v_axes, [grad.dim()] + kept)
    covered = len(blocks.index) == blocks.k**2
    grad_x = grad.new_empty(x_shape) if covered else grad.new_zeros(x_shape)
    for b, (a, c) in enumerate(blocks.index):
        target = _block(grad_x, a, c, blocks.k, row_dim)
        target.copy_(per_block[b].reshape(target.shape))
    return grad_x


class _PeriodizedProduct(torch.autograd.Function):
    """Block-summed product; the backward writes each block's gradient in place.

    Autograd's own backward of the sliced products would allocate and add a
    zero-filled full-size gradient per block.
    """

    @staticmethod
    def forward(ctx, x_hat: torch.Tensor, vals: torch.Tensor, blocks: FilterBlocks,  # type: ignore[override]
                row_dim: int, is_paired: bool, workspace: Workspace) -> torch.Tensor:
        out = _periodized_sum(x_hat, vals, blocks, row_dim, is_paired, workspace)
        ctx.save_for_backward(vals[..., 0] if is_paired else vals)
        ctx.blocks, ctx.row_dim, ctx.x_shape = blocks, row_dim, x_hat.shape
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (vals,) = ctx.saved_tensors
        return _periodized_sum_adjoint(grad, vals, ctx.blocks, ctx.row_dim, ctx.x_shape), None, None, None, None, None


def lowpass_matrices(phi_hat: torch.Tensor, k: int, crop: int = 1, tol: float = 1e-9) -> tuple[torch.Tensor, torch.Tensor]:
    """Write "convolve with phi, subsample by k, crop" as ``A^T U B`` (sums of such).

    A periodic convolution followed by subsampling is linear in each axis when the
    filter is separable; Gaussian low-passes are. A non-separable (even) filter is
    split into rank-one terms by an SVD of its spatial kernel, keeping singular
    values above ``tol`` times the largest. Applying the low-pass then costs two
    small matrix products instead of an FFT, a product and an inverse FFT.

    Parameters
    ----------
    phi_hat : torch.Tensor
        Real, even Fourier-domain low-pass ``(M, N)``.
    k : int
        Subsampling factor.
    crop : int
        Output samples dropped on each side (Kymatio's unpadding).
    tol : float
        Relative singular-value threshold.

    Returns
    -------
    (torch.Tensor, torch.Tensor)
        ``A`` of shape ``(R, M, M/k - 2 crop)`` and ``B`` of shape ``(R, N, N/k - 2 crop)``
        with ``lowpass(U) = sum_r A[r]^T U B[r]``.

    Shapes
    ------
    phi_hat: (M, N) -> A (R, M, m), B (R, N, n)
    """
    M, N = phi_hat.shape
    kernel = torch.fft.ifft2(phi_hat.to(torch.complex128)).real
    u, sv, vh = torch.linalg.svd(kernel)
    rank = int((sv > tol * sv[0]).sum())
    a = u[:, :rank] * sv[:rank]  # (M, R)
    b = vh[:rank].T  # (N, R)

    def circulant(vectors: torch.Tensor, size: int) -> torch.Tensor:
        # out[r, i, p] = vectors[(p k - i) mod size, r]: convolution evaluated at p k.
        p = torch.arange(crop, size // k - crop)
        i = torch.arange(size)
        idx = (p[None, :] * k - i[:, None]) % size
        return vectors.T[:, idx]

    return circulant(a, M), circulant(b, N)


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


def reflect_indices(size: int, before: int, after: int) -> torch.Tensor:
    """Indices of a symmetric (edge-not-repeated) reflection padding.

    Valid for any padding up to ``size`` on each side, where a plain reflection
    pad would need a pad smaller than the size.

    Parameters
    ----------
    size : int
        Signal length.
    before, after : int
        Padding on each side.

    Returns
    -------
    torch.Tensor
        int64 indices into the signal.

    Shapes
    ------
    -> (before + size + after,)
    """
    i = torch.arange(-before, size + after)
    if size == 1:
        return torch.zeros_like(i)
    period = 2 * (size - 1)
    i = i.abs() % period
    return torch.where(i >= size, period - i, i)


def grad_over_modulus(grad: torch.Tensor, out: torch.Tensor, buffer: torch.Tensor | None = None) -> torch.Tensor:
    """``grad / max(|z|, sqrt(tiny))``: the factor of ``z`` in the modulus' gradient.

    The floor keeps the gradient finite and of norm at most 1 where ``|z|``
    underflows (it is exact above ``1e-19`` in float32), is 0 at ``z = 0``, and
    unlike a ``where(|z| > 0, ...)`` mask it runs as two vectorised passes.

    Parameters
    ----------
    grad : torch.Tensor
        Gradient with respect to ``|z|``.
    out : torch.Tensor
        ``|z|``, same shape.
    buffer : torch.Tensor, optional
        Contiguous tensor of the same shape to write the result to.

    Returns
    -------
    torch.Tensor
        ``grad / max(out, sqrt(tiny))`` (``buffer`` when given).

    Shapes
    ------
    grad, out: (...) -> (...)
    """
    floor = torch.finfo(out.dtype).tiny ** 0.5
    if buffer is None:
        return grad / out.clamp_min(floor)
    return torch.div(grad, torch.clamp_min(out, floor, out=buffer), out=buffer)


def modulus_of_parts(re: torch.Tensor, im: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """``sqrt(re^2 + im^2)``, the forward pass of the modulus functions.

    On CPU, three vectorised passes, about 2.5x faster than ``torch.hypot``. Where
    a square overflows (``|z|`` above ~1e19 in float32) the result is recomputed
    with ``hypot``, which does not; squares that underflow only lose accuracy
    below ~1e-19, far under any coefficient's rounding error.

    Parameters
    ----------
    re, im : torch.Tensor
        Real and imaginary parts, same shape and real dtype (any strides).
    out : torch.Tensor, optional
        Contiguous tensor of the same shape to write the result to.

    Returns
    -------
    torch.Tensor
        The modulus, contiguous (``out`` when given).

    Shapes
    ------
    re, im: (...) -> (...)
    """
    if re.device.type != "cpu":
        # Off the CPU (GPUs) both cost one memory pass, and the overflow check would synchronise.
        return torch.hypot(re, im, out=out)
    out = torch.mul(re, re, out=out).addcmul_(im, im).sqrt_()
    if out.numel() and not math.isfinite(out.amax().item()):
        torch.hypot(re, im, out=out)
    return out


class _Modulus(torch.autograd.Function):
    """|z| with gradient z/|z| (0 at z = 0, a valid subgradient); see :func:`grad_over_modulus`."""

    @staticmethod
    def forward(ctx, z: torch.Tensor, workspace: Workspace, key: str) -> torch.Tensor:  # type: ignore[override]
        out = modulus_of_parts(z.real, z.imag, workspace.out(key, z.shape, z.real.dtype, z.device))
        ctx.save_for_backward(z, out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:  # type: ignore[override]
        z, out = ctx.saved_tensors
        return z * grad_over_modulus(grad, out), None, None


def modulus(z: torch.Tensor, workspace: Workspace | None = None, key: str = "modulus") -> torch.Tensor:
    """Complex modulus with a finite, well-defined gradient everywhere.

    Parameters
    ----------
    z : torch.Tensor
        Complex tensor.
    workspace : Workspace, optional
        Where the result is written, as the buffer ``key``.
    key : str
        Workspace key of the result.

    Returns
    -------
    torch.Tensor
        ``|z|``, real. Its gradient is ``z / |z|`` and 0 at ``z = 0``.

    Shapes
    ------
    z: (...) complex -> (...) real
    """
    return _Modulus.apply(z, workspace or Workspace(False), key)
