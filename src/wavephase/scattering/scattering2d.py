"""2D scattering transform: cascade of wavelet modulus operators and averaging.

``S x = (x * phi, |x * psi_l1| * phi, ||x * psi_l1| * psi_l2| * phi)`` subsampled by
``2**J``. Padding, subsampling and coefficient order are those of Kymatio 0.3.0,
so that with default filters the coefficients agree with Kymatio's to float
precision. Each scale is one batched operation over all angles (and, at order
2, over all pairs of angles); spectra of real signals use real FFTs. Small
images take the matrix-product path of :mod:`wavephase.scattering.dense`, which
computes the same coefficients faster on grids of a few dozen pixels.
"""

from __future__ import annotations

import functools
from typing import Literal

import torch
from torch import nn

from wavephase.filters.bank import FilterBank, morlet_bank
from wavephase.filters.morlet import gaussian_fourier
from wavephase.scattering.dense import DenseScattering
from wavephase.scattering.threads import in_worker, parallel_map, worker_workspaces
from wavephase.scattering.fourier import (
    FilterBlocks,
    Workspace,
    kymatio_level,
    lowpass_matrices,
    modulus,
    paired,
    periodized_product,
    reflect_indices,
)
from wavephase.validation import check_image_shape, check_positive_int, check_real_tensor, check_same_device

__all__ = ["Scattering2D"]

RotationMode = Literal["none", "average", "fourier"]
Backend = Literal["auto", "fft", "matmul"]

# Largest padded side for which backend="auto" picks the matrix-product DFTs: their
# cost grows as n^3 against n^2 log n, and they break even with FFTs near 64-80.
MATMUL_MAX_SIZE = 64
# The matrix-product path works on chunks whose intermediates stay in cache.
MATMUL_CHUNK_BYTES = 4 * 2**20
# Chunk sizes of the one-thread workers that scatter parts of a batch side by side
# (see :mod:`wavephase.scattering.threads`), without and with autograd; the fastest
# on case (a) (256 images of 28 x 28), whose parts then run in 2 and 4 chunks.
WORKER_CHUNK_BYTES = 11 * 2**20
WORKER_GRAD_CHUNK_BYTES = 6 * 2**20
# Smallest part worth a worker: on 28 x 28 images, 32 images in two parts of 16 ran
# forward and backward slower than in torch's threads, 64 in two parts of 32 faster.
WORKER_MIN_PART_BYTES = 4 * 2**20


def padded_size(size: int, J: int) -> int:
    """Kymatio's padded length: the next multiple of ``2**J`` plus one ``2**J`` margin."""
    return ((size + 2**J) // 2**J + 1) * 2**J


class Scattering2D(nn.Module):
    """2D scattering transform of order 0, 1 (and 2), translation invariant up to ``2**J``.

    Parameters
    ----------
    J : int
        Number of dyadic scales; averaging over ``2**J`` pixels.
    shape : (int, int)
        Image size ``(M, N)``; each side at least ``2**J``.
    L : int
        Number of orientations in ``[0, pi)``.
    max_order : int
        1 or 2.
    pad_mode : {"reflect", "zeros"}
        Boundary extension before the periodic convolutions.
    rotation : {"none", "average", "fourier"}
        ``"none"``: Kymatio's channels. ``"average"``: average over a global
        rotation of the angles (order 1: over theta1; order 2: over theta1 at fixed
        theta2 - theta1). ``"fourier"``: modulus of the DFT over theta1 instead of
        the average (keeps more information, still invariant to rotations by pi/L).
    filters : FilterBank, optional
        A bank built on the padded grid ``(padded_size(M, J), padded_size(N, J))``;
        default Morlet filters of :func:`wavephase.filters.morlet_bank` otherwise.
    dtype : torch.dtype
        Precision in which the filters are stored (they are computed in float64).
        Inputs of the other float dtype are accepted; their filters are cast on
        the fly, so build with ``torch.float64`` for full float64 accuracy.
    sigma0, xi0, slant : float, optional
        Morlet parameters passed to :func:`morlet_bank` when ``filters`` is None.
    chunk_bytes : int
        Images are processed in chunks whose largest intermediate (the order-2
        wavelet coefficients at the finest pair of scales) stays below this size,
        which bounds the peak memory of large images without slowing small ones.
        The matrix-product backend caps it at ``MATMUL_CHUNK_BYTES`` (4 MiB), or
        at ``WORKER_CHUNK_BYTES`` (11 MiB; ``WORKER_GRAD_CHUNK_BYTES``, 6 MiB, when
        a graph is recorded) in the one-thread workers that scatter parts of a
        batch side by side when torch has several CPU threads
        (:mod:`wavephase.scattering.threads`).
    backend : {"auto", "fft", "matmul"}
        How Fourier transforms are computed: FFTs, or dense DFT matrices
        (:class:`~wavephase.scattering.dense.DenseScattering`), faster on small
        grids. ``"auto"`` uses matrices when both padded sides are at most
        ``MATMUL_MAX_SIZE`` (64). Both give the same coefficients.

    Shapes
    ------
    x: (..., M, N) real -> (..., C, M // 2**J, N // 2**J), with
    C = 1 + L J + L^2 J (J - 1) / 2 for max_order 2 and rotation "none".
    """

    def __init__(
        self,
        J: int,
        shape: tuple[int, int],
        L: int = 8,
        max_order: int = 2,
        pad_mode: str = "reflect",
        rotation: RotationMode = "none",
        filters: FilterBank | None = None,
        *,
        dtype: torch.dtype = torch.float32,
        sigma0: float = 0.8,
        xi0: float = 3 * 3.141592653589793 / 4,
        slant: float | None = None,
        chunk_bytes: int = 16 * 2**20,
        backend: Backend = "auto",
    ) -> None:
        super().__init__()
        self.J = check_positive_int(J, "J")
        self.shape = check_image_shape(shape, self.J)
        self.L = check_positive_int(L, "L")
        if max_order not in (1, 2):
            raise ValueError(f"max_order must be 1 or 2, got {max_order!r}.")
        if pad_mode not in ("reflect", "zeros"):
            raise ValueError(f"pad_mode must be 'reflect' or 'zeros', got {pad_mode!r}.")
        if rotation not in ("none", "average", "fourier"):
            raise ValueError(f"rotation must be 'none', 'average' or 'fourier', got {rotation!r}.")
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype}.")
        if backend not in ("auto", "fft", "matmul"):
            raise ValueError(f"backend must be 'auto', 'fft' or 'matmul', got {backend!r}.")
        self.max_order = max_order
        self.chunk_bytes = check_positive_int(chunk_bytes, "chunk_bytes")
        self.pad_mode = pad_mode
        self.rotation = rotation

        M, N = self.shape
        self.padded_shape = (padded_size(M, J), padded_size(N, J))
        if filters is None:
            # Cached in the module's precision (the float32 blocks built from it are the same);
            # the low-pass is recomputed in float64, where it is separable to round-off:
            # rounded to float32 its low-pass matrices would need rank 6-10 instead of 1.
            filters = morlet_bank(self.padded_shape, J, L, sigma0=sigma0, xi0=xi0, slant=slant, dtype=dtype)
            phi = gaussian_fourier(self.padded_shape, filters.sigma_phi, device=filters.phi.device)
        else:
            phi = filters.phi
        if tuple(filters.psi.shape[:2]) != (J, L) or filters.shape != self.padded_shape:
            raise ValueError(
                f"filters must be a bank of {J} scales x {L} angles on the padded grid {self.padded_shape}, "
                f"got psi of shape {tuple(filters.psi.shape)}."
            )
        self.bank = filters
        if backend == "auto":
            backend = "matmul" if max(self.padded_shape) <= MATMUL_MAX_SIZE else "fft"
        self.backend = backend
        self._build_padding()
        if backend == "matmul":
            self._dense = DenseScattering(filters.psi, phi, self.shape, pad_mode, max_order, dtype)
        else:
            self._build_filter_blocks(filters.psi, phi.double(), dtype)
        self._build_rotation_index()

    # ------------------------------------------------------------------ set-up
    def _build_padding(self) -> None:
        (M, N), (Mp, Np) = self.shape, self.padded_shape
        top, left = (Mp - M) // 2, (Np - N) // 2
        self._zero_pad = (left, Np - N - left, top, Mp - M - top)
        self.register_buffer("_rows", reflect_indices(M, top, Mp - M - top), persistent=False)
        self.register_buffer("_cols", reflect_indices(N, left, Np - N - left), persistent=False)

    def _add_blocks(self, name: str, filters: torch.Tensor, k: int, dtype: torch.dtype) -> None:
        blocks = FilterBlocks(filters.double(), k)  # one group at a time in float64: a low build peak
        self._blocks[name] = blocks
        self.register_buffer(name, paired(blocks.values.to(dtype)), persistent=False)

    def _build_filter_blocks(self, psi: torch.Tensor, phi: torch.Tensor, dtype: torch.dtype) -> None:
        J = self.J
        self._blocks: dict[str, FilterBlocks] = {}
        for r in range(J):
            rows, cols = lowpass_matrices(kymatio_level(phi, r), 2 ** (J - r))
            self.register_buffer(f"_phi_rows{r}", rows.to(dtype), persistent=False)
            self.register_buffer(f"_phi_cols{r}", cols.to(dtype), persistent=False)
            self._add_blocks(f"_psi{r}", psi[r], 2**r, dtype)
        if self.max_order == 2:
            # Level 0 keeps the full band: there the order-1 blocks serve order 2 as well.
            for j1 in range(1, J):
                for j2 in range(j1 + 1, J):
                    self._add_blocks(f"_psi{j2}_at{j1}", kymatio_level(psi[j2], j1), 2 ** (j2 - j1), dtype)

    def _build_rotation_index(self) -> None:
        J, L = self.J, self.L
        # order-2 channel (j1, t1, j2, t2) -> position of (j1, j2, (t2 - t1) mod L) when
        # theta1 is moved last: rotating the image shifts t1 and t2 together.
        perm = []
        pairs = [(j1, j2) for j1 in range(J) for j2 in range(j1 + 1, J)]
        offset = {}
        start = 0
        for j1 in range(J):
            offset[j1] = start
            start += L * (J - 1 - j1) * L
        for j1, j2 in pairs:
            for delta in range(L):
                for t1 in range(L):
                    t2 = (t1 + delta) % L
                    perm.append(offset[j1] + t1 * (J - 1 - j1) * L + (j2 - j1 - 1) * L + t2)
        self.register_buffer("_order2_perm", torch.tensor(perm, dtype=torch.long), persistent=False)

    # ------------------------------------------------------------- properties
    @property
    def output_channels(self) -> int:
        """Number of output channels ``C``."""
        J, L = self.J, self.L
        n2 = J * (J - 1) // 2 if self.max_order == 2 else 0
        if self.rotation == "none":
            return 1 + L * J + L * L * n2
        per_angle = 1 if self.rotation == "average" else L // 2 + 1
        return 1 + J * per_angle + n2 * L * per_angle

    @property
    def output_shape(self) -> tuple[int, int]:
        """Spatial size of the output, ``(M // 2**J, N // 2**J)``."""
        return (self.shape[0] // 2**self.J, self.shape[1] // 2**self.J)

    def meta(self) -> dict[str, torch.Tensor]:
        """Per-channel description of the output.

        Returns
        -------
        dict
            ``"order"`` (C,), ``"j"`` (C, 2) scales ``(j1, j2)`` and ``"theta"``
            (C, 2) angle indices ``(l1, l2)``, with -1 where unused; ``"angle"``
            (C, 2) orientations in radians (NaN where unused). With
            ``rotation="average"`` the theta columns hold ``(-1, l2 - l1 mod L)``;
            with ``"fourier"`` they hold ``(frequency over theta1, l2 - l1 mod L)``.

        Shapes
        ------
        -> order (C,), j (C, 2), theta (C, 2), angle (C, 2)
        """
        J, L = self.J, self.L
        rows: list[tuple[int, int, int, int, int]] = [(0, -1, -1, -1, -1)]
        if self.rotation == "none":
            rows += [(1, j, -1, t, -1) for j in range(J) for t in range(L)]
            if self.max_order == 2:
                rows += [(2, j1, j2, t1, t2) for j1 in range(J) for t1 in range(L)
                         for j2 in range(j1 + 1, J) for t2 in range(L)]
        else:
            freqs = [-1] if self.rotation == "average" else list(range(L // 2 + 1))
            rows += [(1, j, -1, f, -1) for j in range(J) for f in freqs]
            if self.max_order == 2:
                rows += [(2, j1, j2, f, d) for j1 in range(J) for j2 in range(j1 + 1, J)
                         for d in range(L) for f in freqs]
        table = torch.tensor(rows, dtype=torch.long)
        angles = self.bank.theta.to(torch.float64)
        angle = torch.full((len(rows), 2), float("nan"), dtype=torch.float64)
        if self.rotation == "none":
            for col in (0, 1):
                used = table[:, 3 + col] >= 0
                angle[used, col] = angles[table[used, 3 + col]]
        return {"order": table[:, 0], "j": table[:, 1:3], "theta": table[:, 3:5], "angle": angle}

    # ----------------------------------------------------------------- forward
    def _filters(self, name: str, like: torch.Tensor) -> torch.Tensor:
        buf = getattr(self, name)
        return buf if buf.dtype == like.dtype else buf.to(like.dtype)

    def _lowpass(self, u: torch.Tensor, r: int) -> torch.Tensor:
        """Average real signals at resolution r by phi, subsample to 2**J, crop the margin."""
        rows, cols = self._filters(f"_phi_rows{r}", u), self._filters(f"_phi_cols{r}", u)
        # Both products as flat (batch * rows, k) @ (k, n) matrix products: A^T @ (...) or a
        # non-contiguous left operand would make torch expand A over the batch (slow backward).
        out = None
        for a, b in zip(rows, cols):
            term = ((u @ b).transpose(-1, -2).contiguous() @ a).transpose(-1, -2)
            out = term if out is None else out + term
        return out

    def _wavelet_modulus(self, u_hat: torch.Tensor, name: str, work: Workspace, key: str) -> torch.Tensor:
        """|u * psi| for all filters of one group, subsampled, in space (buffer ``key``)."""
        y = periodized_product(u_hat, self._blocks[name], self._filters(name, u_hat.real), is_paired=True,
                               workspace=work)
        # ifft2 with out= runs ~1.5x slower than into a fresh tensor (measured).
        return modulus(torch.fft.ifft2(y), work, key)

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad_mode == "reflect":
            return x[..., self._rows, :][..., self._cols]
        return nn.functional.pad(x, self._zero_pad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scattering coefficients of ``x``.

        Parameters
        ----------
        x : torch.Tensor
            Real images, float32 or float64.

        Returns
        -------
        torch.Tensor
            Scattering coefficients, same dtype as ``x``.

        Shapes
        ------
        x: (..., M, N) -> (..., C, M // 2**J, N // 2**J)
        """
        if isinstance(x, torch.Tensor):
            check_same_device(x, self._rows, "x", "Scattering2D")
        check_real_tensor(x, "x", min_ndim=2)
        if tuple(x.shape[-2:]) != self.shape:
            raise ValueError(
                f"x has spatial shape {tuple(x.shape[-2:])} but this Scattering2D was built for {self.shape}; "
                f"build Scattering2D(J={self.J}, shape={tuple(x.shape[-2:])}) or resize the input."
            )
        batch_shape = x.shape[:-2]
        x = x.reshape(-1, *self.shape)
        n_parts = self._thread_parts(x)
        if n_parts == 1:
            out = self._scatter_chunks(x)
        elif torch.is_grad_enabled() and x.requires_grad:
            out = parallel_map(self._scatter_chunks, x, n_parts)
        else:
            out = parallel_map(self._scatter_chunks, x, n_parts,
                               out=x.new_empty(len(x), self._dense.channels, *self.output_shape))
        out = self._pool_rotations(out)
        return out.reshape(*batch_shape, *out.shape[-3:])

    def _thread_parts(self, x: torch.Tensor) -> int:
        """Parts of the batch scattered side by side by one-thread workers (1: torch's own threads).

        Only the matrix-product path on the CPU gains, and only with parts of at
        least ``WORKER_MIN_PART_BYTES`` each.
        """
        if self.backend != "matmul" or x.device.type != "cpu" or in_worker():
            return 1
        smallest = max(1, min(self.chunk_bytes, WORKER_MIN_PART_BYTES) // self._bytes_per_image(x.dtype))
        return max(1, min(torch.get_num_threads(), len(x) // smallest))

    def _chunk_images(self, dtype: torch.dtype, worker: bool, record: bool = False) -> int:
        """Most images per chunk: ``chunk_bytes``, capped on the matrix-product path by the chunk
        size that runs fastest there (measured on case (a)), larger in a one-thread worker."""
        limit = self.chunk_bytes
        if self.backend == "matmul":
            worker_limit = WORKER_GRAD_CHUNK_BYTES if record else WORKER_CHUNK_BYTES
            limit = min(limit, worker_limit if worker else MATMUL_CHUNK_BYTES)
        return max(1, limit // self._bytes_per_image(dtype))

    def _scatter_chunks(self, x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """Coefficients of a flat batch ``(B, M, N)``, chunk by chunk (into ``out`` when given, without autograd)."""
        work, scratch = Workspace(not (torch.is_grad_enabled() and x.requires_grad)), Workspace(True)
        if in_worker():
            # A worker scatters only a few chunks per call: it keeps its own buffers from
            # call to call instead of faulting fresh ones in (~10 % of its time on case (a)).
            own_work, scratch = worker_workspaces()
            work = own_work if work.enabled else work
        if self.backend == "fft":
            scatter = functools.partial(self._scatter, work=work)
        else:
            scatter = functools.partial(self._dense, work=work, scratch=scratch)
        # Chunks of equal size: a short last chunk runs at a lower rate.
        n_chunks = -(-len(x) // self._chunk_images(x.dtype, in_worker(), not work.enabled))
        if self.backend == "matmul" and work.enabled:
            # Without autograd the chunks write straight into the result: one copy less.
            out = x.new_empty(len(x), self._dense.channels, *self.output_shape) if out is None else out
            for part, rows in zip(x.tensor_split(n_chunks), out.tensor_split(n_chunks)):
                scatter(part, out=rows)
            return out
        if n_chunks == 1:
            return scatter(x)
        return torch.cat([scatter(part) for part in x.tensor_split(n_chunks)])

    def _bytes_per_image(self, dtype: torch.dtype) -> int:
        """Size of the largest complex intermediate for one image."""
        Mp, Np = self.padded_shape
        complex_bytes = 2 * torch.finfo(dtype).bits // 8
        order2 = self.L * self.L * (Mp // 2) * (Np // 2) if self.max_order == 2 and self.J > 1 else 0
        return complex_bytes * max(self.L * Mp * Np, order2)

    def _scatter(self, x: torch.Tensor, work: Workspace) -> torch.Tensor:
        """Scattering of a batch ``(B, M, N)`` -> ``(B, C, m, n)`` (no rotation pooling)."""
        J = self.J
        x = self._pad(x[:, None])
        # fft2 of a real tensor is torch's real-to-complex FFT with the full output: 2-3x faster
        # (forward and backward) than rfft2 followed by Hermitian mirroring.
        x_hat = torch.fft.fft2(x)  # (B, 1, Mp, Np)
        order0 = self._lowpass(x, 0)  # (B, 1, m, n)
        order1, order2 = [], []
        for j1 in range(J):
            u1 = self._wavelet_modulus(x_hat, f"_psi{j1}", work, "u1")  # (B, L, Mp/2^j1, Np/2^j1)
            order1.append(self._lowpass(u1, j1))
            if self.max_order == 2 and j1 < J - 1:
                u1_hat = torch.fft.fft2(u1, out=work.out("spectrum", u1.shape, x_hat.dtype, u1.device))[:, :, None]
                paths = []
                for j2 in range(j1 + 1, J):
                    name = f"_psi{j2}_at{j1}" if j1 else f"_psi{j2}"
                    u2 = self._wavelet_modulus(u1_hat, name, work, "u2")  # (B, L, L, ...)
                    paths.append(self._lowpass(u2, j2))
                order2.append(torch.cat(paths, dim=2).flatten(1, 2))  # (B, L * (J-1-j1) * L, m, n)
        return torch.cat([order0, *order1, *order2], dim=1)

    def _pool_rotations(self, s: torch.Tensor) -> torch.Tensor:
        if self.rotation == "none":
            return s
        J, L = self.J, self.L
        B, _, m, n = s.shape
        order0, order1, order2 = s[:, :1], s[:, 1:1 + J * L], s[:, 1 + J * L:]
        groups = [order1.reshape(B, J, L, m, n)]
        if self.max_order == 2:
            groups.append(order2[:, self._order2_perm].reshape(B, -1, L, m, n))
        pooled = []
        for g in groups:
            if self.rotation == "average":
                pooled.append(g.mean(dim=2))
            else:
                pooled.append(torch.fft.rfft(g, dim=2).abs().flatten(1, 2))
        return torch.cat([order0, *pooled], dim=1)

    def extra_repr(self) -> str:
        return (f"J={self.J}, shape={self.shape}, L={self.L}, max_order={self.max_order}, "
                f"pad_mode={self.pad_mode!r}, rotation={self.rotation!r}, backend={self.backend!r}")
