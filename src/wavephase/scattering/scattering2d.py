"""2D scattering transform: the front end (checks, filters, metadata, rotation pooling).

``S x = (x * phi, |x * psi_l1| * phi, ||x * psi_l1| * psi_l2| * phi)`` subsampled by
``2**J``. Padding, subsampling and coefficient order are those of Kymatio 0.3.0,
so that with default filters the coefficients agree with Kymatio's to float
precision. The cascade itself is :func:`wavephase.scattering.cascade.scatter`,
run on the FFT backend (large images) or the matrix-product backend (small
images), which compute the same coefficients.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import nn

from wavephase.filters.bank import FilterBank, morlet_bank
from wavephase.filters.morlet import gaussian_fourier
from wavephase.scattering._batching import scatter_batch
from wavephase.scattering._tuning import DEFAULT_CHUNK_BYTES, MATMUL_MAX_SIZE
from wavephase.scattering.cascade import CascadeBackend, channel_count
from wavephase.scattering.fft_backend import FFTBackend
from wavephase.scattering.matmul_backend import MatmulBackend
from wavephase.resources import check_memory
from wavephase.validation import check_image_shape, check_positive_int, check_real_tensor, check_same_device

__all__ = ["Scattering2D", "padded_size"]

RotationMode = Literal["none", "average", "fourier"]
Backend = Literal["auto", "fft", "matmul"]


def padded_size(size: int, J: int) -> int:
    """Kymatio's padded length: the next multiple of ``2**J`` plus one ``2**J`` margin.

    Parameters
    ----------
    size : int
        Image side.
    J : int
        Number of scales.

    Returns
    -------
    int
        The side of the grid the filters live on.
    """
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
        The matrix-product backend caps it further at the chunk sizes that run
        fastest there.
    backend : {"auto", "fft", "matmul"}
        How Fourier transforms are computed: FFTs, or dense DFT matrices, faster
        on small grids. ``"auto"`` uses matrices when both padded sides are at
        most 64. Both give the same coefficients.

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
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
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
        Mp, Np = self.padded_shape
        # The complex filter bank, and the complex first-order planes of one image (the
        # smallest chunk the cascade runs), are allocated whatever the batch size.
        itemsize = torch.finfo(dtype).bits // 8
        check_memory(2.0 * itemsize * Mp * Np * (J * L + 2 * (1 + J * L)),
                     f"Scattering2D(J={J}, L={L}) on the padded {Mp}x{Np} grid", fix="use a smaller shape, J or L",
                     argument=False)
        if filters is None:
            # Cached in the module's precision (the float32 blocks built from it are the same);
            # the low-pass is recomputed in float64, where it is separable to round-off.
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
        make = MatmulBackend if backend == "matmul" else FFTBackend
        self.cascade: CascadeBackend = make(filters.psi, phi, self.shape, pad_mode, max_order, dtype)
        self.register_buffer("_order2_perm", self._order2_permutation(), persistent=False)

    def _order2_permutation(self) -> torch.Tensor:
        """Order-2 channel ``(j1, t1, j2, t2)`` -> position of ``(j1, j2, (t2 - t1) mod L, t1)``.

        Rotating the image shifts t1 and t2 together, so with theta1 moved last
        the rotation acts along one axis only.
        """
        J, L = self.J, self.L
        offset = [L * L * sum(J - 1 - j for j in range(j1)) for j1 in range(J)]
        perm = [offset[j1] + t1 * (J - 1 - j1) * L + (j2 - j1 - 1) * L + (t1 + delta) % L
                for j1 in range(J) for j2 in range(j1 + 1, J) for delta in range(L) for t1 in range(L)]
        return torch.tensor(perm, dtype=torch.long)

    @property
    def output_channels(self) -> int:
        """Number of output channels ``C``."""
        J, L = self.J, self.L
        if self.rotation == "none":
            return channel_count(J, L, self.max_order)
        n2 = J * (J - 1) // 2 if self.max_order == 2 else 0
        per_angle = 1 if self.rotation == "average" else L // 2 + 1
        return 1 + J * per_angle + n2 * L * per_angle

    @property
    def output_shape(self) -> tuple[int, int]:
        """Spatial size of the output, ``(M // 2**J, N // 2**J)``."""
        return (self.shape[0] // 2**self.J, self.shape[1] // 2**self.J)

    def meta(self) -> dict[str, np.ndarray]:
        """Per-channel description of the output.

        Returns
        -------
        dict of str to numpy.ndarray
            ``"order"`` (C,), ``"j"`` (C, 2) scales ``(j1, j2)`` and ``"theta"``
            (C, 2) angle indices ``(l1, l2)``, int64 with -1 where unused;
            ``"angle"`` (C, 2) orientations in radians, float64, NaN where
            unused. With ``rotation="average"`` the theta columns hold
            ``(-1, l2 - l1 mod L)``; with ``"fourier"`` they hold
            ``(frequency over theta1, l2 - l1 mod L)``.

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
        table = np.array(rows, dtype=np.int64)
        angle = np.full((len(rows), 2), np.nan)
        if self.rotation == "none":
            angles = self.bank.theta.to(torch.float64).cpu().numpy()
            used = table[:, 3:5] >= 0
            angle[used] = angles[table[:, 3:5][used]]
        return {"order": table[:, 0], "j": table[:, 1:3], "theta": table[:, 3:5], "angle": angle}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scattering coefficients of ``x``.

        Parameters
        ----------
        x : torch.Tensor
            Real images, float32 or float64.

        Returns
        -------
        torch.Tensor
            Scattering coefficients, same dtype and device as ``x``.

        Shapes
        ------
        x: (..., M, N) -> (..., C, M // 2**J, N // 2**J)
        """
        if isinstance(x, torch.Tensor):
            check_same_device(x, self._order2_perm, "x", "Scattering2D")
        check_real_tensor(x, "x", min_ndim=2)
        if tuple(x.shape[-2:]) != self.shape:
            raise ValueError(
                f"x has spatial shape {tuple(x.shape[-2:])} but this Scattering2D was built for {self.shape}; "
                f"build Scattering2D(J={self.J}, shape={tuple(x.shape[-2:])}) or resize the input."
            )
        batch_shape = x.shape[:-2]
        if x.numel() == 0:
            # x.sum() (zero) keeps the result differentiable in x.
            return x.sum() + x.new_zeros(*batch_shape, self.output_channels, *self.output_shape)
        out = self._pool_rotations(scatter_batch(self.cascade, x.reshape(-1, *self.shape), self.chunk_bytes))
        return out.reshape(*batch_shape, *out.shape[-3:])

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
