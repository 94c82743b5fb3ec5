"""The linear steps of the 2D cascade written as matrices: padding, DFTs, low-passes.

Both backends pad and low-pass with these; the matrix-product backend also
computes every DFT as a product with :func:`dft_matrix`.
"""

from __future__ import annotations

import math

import torch

__all__ = ["dft_matrix", "lowpass_matrices", "padding_matrix", "reflect_indices"]


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


def padding_matrix(size: int, before: int, after: int, mode: str) -> torch.Tensor:
    """Boundary extension along one axis as a matrix ``P``: ``pad(x) = P @ x``.

    Parameters
    ----------
    size, before, after : int
        Signal length and padding on each side, as for :func:`reflect_indices`.
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
        with ``lowpass(U) = sum_r A[r]^T U B[r]``, float64.

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
