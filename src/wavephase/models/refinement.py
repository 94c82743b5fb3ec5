"""Coarse-to-fine refinement: the blur, the codes given a coarse image, the low-pass correction.

A coarse image is the low-pass part ``G x`` of an image, ``G`` a Gaussian blur
of width ``0.5 * 2**scale`` pixels, described by its samples on the
``2**scale``-subsampled grid, ``c`` (:func:`coarse_code`). On the training set
we estimate the joint Gaussian of ``(c, z)``, ``z`` the whitened embedding
(:func:`conditional_gaussian`). To refine a coarse image we draw ``z`` from the
conditional Gaussian ``z | c ~ N(B (c - mean_c), I - C_zc C_cc^-1 C_cz)`` (``B``
the ridge regression of ``z`` on ``c``): the directions of ``z`` determined by
the low frequencies are fixed, the others are free. Each draw ``f = D(z)`` is
decoded and then corrected so that its blur matches the coarse input
(:func:`impose_lowpass`): ``x = f + G (c - G f) / (G^2 + eps)`` (Fourier domain,
Tikhonov-regularised inverse of the blur), which gives
``G x - c = -eps / (G^2 + eps) (c - G f)``: the low frequencies of every
realization are those of the coarse input up to a fraction ``eps / (G^2 + eps)``
(``eps = 1e-3``), while the high frequencies come from the decoder.
"""

from __future__ import annotations

import math

import torch

__all__ = ["gaussian_lowpass", "impose_lowpass", "coarse_samples", "coarse_code", "conditional_gaussian"]


def _gaussian_gain(shape: tuple[int, int], sigma: float, device: torch.device) -> torch.Tensor:
    """The Fourier transform of a periodic Gaussian of width ``sigma``, on the rfft2 grid, in float64."""
    M, N = shape
    wm = 2 * math.pi * torch.fft.fftfreq(M, dtype=torch.float64, device=device)
    wn = 2 * math.pi * torch.fft.rfftfreq(N, dtype=torch.float64, device=device)
    return torch.exp(-0.5 * sigma**2 * (wm[:, None] ** 2 + wn[None, :] ** 2))


def gaussian_lowpass(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Periodic Gaussian blur of standard deviation ``sigma`` pixels (Fourier domain).

    Parameters
    ----------
    x : torch.Tensor
        Real images.
    sigma : float
        Width of the Gaussian in pixels.

    Returns
    -------
    torch.Tensor
        Blurred images, same dtype.

    Shapes
    ------
    x: (..., M, N) -> (..., M, N)
    """
    if x.numel() == 0:  # MKL refuses empty FFTs
        return x.clone()
    M, N = x.shape[-2:]
    g = _gaussian_gain((M, N), sigma, x.device).to(x.dtype)
    return torch.fft.irfft2(torch.fft.rfft2(x) * g, s=(M, N))


def impose_lowpass(fine: torch.Tensor, coarse: torch.Tensor, sigma: float, eps: float = 1e-3) -> torch.Tensor:
    """Correct ``fine`` so that its Gaussian blur matches ``coarse`` (see the module notes).

    Parameters
    ----------
    fine : torch.Tensor
        Images providing the high frequencies.
    coarse : torch.Tensor
        Target blurred images ``G x`` (broadcast against ``fine``).
    sigma : float
        Width of the Gaussian blur ``G`` in pixels.
    eps : float
        Tikhonov regularisation of the inverse blur.

    Returns
    -------
    torch.Tensor
        ``fine + G (coarse - G fine) / (G^2 + eps)``.

    Shapes
    ------
    fine: (..., M, N), coarse: broadcastable -> (..., M, N)
    """
    if fine.numel() == 0 or coarse.numel() == 0:  # MKL refuses empty FFTs
        return fine.new_zeros(torch.broadcast_shapes(fine.shape, coarse.shape))
    M, N = fine.shape[-2:]
    g = _gaussian_gain((M, N), sigma, fine.device)
    gain = (g / (g**2 + eps)).to(fine.dtype)
    resid = torch.fft.rfft2(coarse) - torch.fft.rfft2(fine) * g.to(fine.dtype)
    return fine + torch.fft.irfft2(resid * gain, s=(M, N))


def coarse_samples(coarse_images: torch.Tensor, scale: int) -> torch.Tensor:
    """Samples of already blurred images on the ``2**scale``-subsampled grid.

    Parameters
    ----------
    coarse_images : torch.Tensor
        Blurred images ``G x`` (e.g. from :func:`gaussian_lowpass` at width ``0.5 * 2**scale``).
    scale : int
        The grid step is ``2**scale``.

    Returns
    -------
    torch.Tensor
        The coarse code ``c``.

    Shapes
    ------
    coarse_images: (..., M, N) -> (..., (M // 2**scale) * (N // 2**scale)) for sides divisible by 2**scale
    """
    step = 2**scale
    return coarse_images[..., step // 2 :: step, step // 2 :: step].flatten(-2)


def coarse_code(images: torch.Tensor, scale: int) -> torch.Tensor:
    """Samples of the blurred images on the ``2**scale``-subsampled grid.

    Parameters
    ----------
    images : torch.Tensor
        Real images, the finest grid.
    scale : int
        The blur has width ``0.5 * 2**scale`` pixels and the grid step ``2**scale``.

    Returns
    -------
    torch.Tensor
        The coarse code ``c``.

    Shapes
    ------
    images: (..., M, N) -> (..., (M // 2**scale) * (N // 2**scale)) for sides divisible by 2**scale
    """
    return coarse_samples(gaussian_lowpass(images, 0.5 * 2**scale), scale)


def conditional_gaussian(c: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The Gaussian of ``z`` given ``c``, estimated from paired samples (in float64).

    Parameters
    ----------
    c : torch.Tensor
        Coarse codes of the training images.
    z : torch.Tensor
        Their whitened embeddings.

    Returns
    -------
    mean_c : torch.Tensor
        Mean coarse code.
    coef : torch.Tensor
        Ridge regression of ``z`` on ``c``: ``E[z | c] = (c - mean_c) @ coef``.
    factor : torch.Tensor
        A square root of the conditional covariance: ``z = E[z | c] + eps @ factor.T``
        with ``eps ~ N(0, I)``.

    Shapes
    ------
    c: (n, d_c), z: (n, d_z) -> mean_c (d_c,), coef (d_c, d_z), factor (d_z, d_z); float32
    """
    c, z = c.double(), z.double()
    mean_c = c.mean(0)
    cc = c - mean_c
    zc = z - z.mean(0)
    n = len(c)
    cov_cc = cc.T @ cc / (n - 1)
    cov_cz = cc.T @ zc / (n - 1)
    # relative to the coarse codes' variance; constant codes (identical images) get coef = 0
    level = float(cov_cc.diagonal().mean()) or 1.0
    ridge = 1e-4 * level * torch.eye(len(cov_cc), dtype=torch.float64, device=c.device)
    coef = torch.linalg.solve(cov_cc + ridge, cov_cz)
    cond = zc.T @ zc / (n - 1) - cov_cz.T @ coef
    evals, evecs = torch.linalg.eigh((cond + cond.T) / 2)
    return mean_c.float(), coef.float(), (evecs * evals.clamp_min(0).sqrt()).float()
