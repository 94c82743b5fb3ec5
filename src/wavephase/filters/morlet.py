"""Morlet wavelets and Gaussian low-pass filters, built in the Fourier domain.

A spatial Gabor function ``g(u) = exp(-u^T C u) exp(i xi e_theta . u) / Z`` with
``C = R_theta diag(1, slant^2) R_theta^T / (2 sigma^2)`` has a Gaussian Fourier
transform, so its discrete Fourier transform on an ``M x N`` grid is a sum of a
few shifted Gaussians (Poisson summation over the ``2 pi`` aliases). This is
what ScatNet and Kymatio obtain by sampling the spatial filter over a 5x5 tiling
and taking an FFT, computed here in closed form, vectorised over all scales and
angles at once. The Morlet wavelet subtracts a multiple of the envelope so that
its Fourier transform vanishes at zero frequency.
"""

from __future__ import annotations

import math

import torch

__all__ = ["gabor_fourier", "morlet_fourier", "gaussian_fourier", "kymatio_angles"]

# ScatNet/Kymatio divide the spatial Gabor by 2 * 3.1415 * sigma^2 / slant (a
# truncated pi). Keeping the same constant makes our coefficients agree with
# theirs to 1e-7 instead of 1e-4; it is a global scale factor of 1.0000295.
_KYMATIO_PI = 3.1415

# 2*pi aliases considered; the third ones are below exp(-50) for sigma >= 0.8.
_ALIASES = (-2, -1, 0, 1, 2)
# An alias is skipped when its Gaussian is below this bound on the whole grid:
# far below float64 round-off of the periodised sum.
_NEGLIGIBLE_EXPONENT = 40.0


def gabor_fourier(
    shape: tuple[int, int],
    sigma: torch.Tensor,
    theta: torch.Tensor,
    xi: torch.Tensor,
    slant: torch.Tensor | float = 1.0,
    *,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """DFT of periodised, sampled Gabor filters, for many parameter sets at once.

    Parameters
    ----------
    shape : (int, int)
        Grid size ``(M, N)``.
    sigma, theta, xi : torch.Tensor
        Envelope width (pixels), orientation (radians, measured from the row
        axis towards the column axis) and centre frequency (radians/pixel),
        broadcastable to a common batch shape ``P``.
    slant : torch.Tensor or float
        Aspect ratio of the envelope across the oscillation direction.
    dtype : torch.dtype
        Computation dtype (float64 recommended).
    device : torch.device or str, optional
        Device of the result.

    Returns
    -------
    torch.Tensor
        Real Fourier transforms.

    Shapes
    ------
    sigma, theta, xi: P (broadcast) -> (*P, M, N) real
    """
    device = torch.device(device) if device is not None else None
    params = torch.broadcast_tensors(
        *(torch.as_tensor(p, dtype=dtype, device=device) for p in (sigma, theta, xi, slant))
    )
    batch = params[0].shape
    sigma_, theta_, xi_, slant_ = (p.reshape(-1, 1) for p in params)
    cos, sin = torch.cos(theta_), torch.sin(theta_)
    # sigma^2/2 (along^2 + across^2/slant^2) = a d1^2 + b d1 d2 + c d2^2 in grid coordinates:
    # two 1D terms broadcast plus one outer product. The exponent is summed before exp
    # because the cross term alone can overflow.
    half_var = 0.5 * sigma_**2
    a = half_var * (cos**2 + sin**2 / slant_**2)
    c = half_var * (sin**2 + cos**2 / slant_**2)
    b = half_var * 2 * cos * sin * (1 - 1 / slant_**2)
    w1 = torch.fft.fftfreq(shape[0], dtype=dtype, device=device) * (2 * math.pi)
    w2 = torch.fft.fftfreq(shape[1], dtype=dtype, device=device) * (2 * math.pi)
    # Smallest eigenvalue of the quadratic form bounds each alias from above.
    lam = half_var * torch.minimum(torch.ones_like(slant_), 1 / slant_**2)
    out = torch.zeros(sigma_.shape[0], *shape, dtype=dtype, device=device)
    for n1 in _ALIASES:
        d1 = w1 + 2 * math.pi * n1 - xi_ * cos  # (P, M)
        for n2 in _ALIASES:
            d2 = w2 + 2 * math.pi * n2 - xi_ * sin  # (P, N)
            nearest = d1.abs().amin(1, keepdim=True) ** 2 + d2.abs().amin(1, keepdim=True) ** 2
            if bool((lam * nearest > _NEGLIGIBLE_EXPONENT).all()):
                continue
            exponent = torch.addcmul((a * d1**2)[:, :, None] + (c * d2**2)[:, None, :],
                                     (b * d1)[:, :, None], d2[:, None, :])
            out += torch.exp(-exponent)
    return (out * (math.pi / _KYMATIO_PI)).reshape(*batch, *shape)


def morlet_fourier(shape: tuple[int, int], sigma: torch.Tensor, theta: torch.Tensor, xi: torch.Tensor,
                   slant: torch.Tensor | float = 0.5, *, dtype: torch.dtype = torch.float64,
                   device: torch.device | str | None = None) -> torch.Tensor:
    """DFT of periodised Morlet wavelets (Gabor minus its zero-mean correction).

    Parameters
    ----------
    shape, sigma, theta, xi, slant, dtype, device
        As for :func:`gabor_fourier` (grid, envelope width, orientation, centre
        frequency, aspect ratio, computation dtype, device), with ``slant`` 0.5
        by default.

    Returns
    -------
    torch.Tensor
        Real Fourier transforms, exactly zero at frequency 0.

    Shapes
    ------
    sigma, theta, xi: P (broadcast) -> (*P, M, N) real
    """
    gabor = gabor_fourier(shape, sigma, theta, xi, slant, dtype=dtype, device=device)
    envelope = gabor_fourier(shape, sigma, theta, torch.zeros_like(torch.as_tensor(xi, dtype=dtype)), slant,
                             dtype=dtype, device=device)
    # K = (sum of the spatial Gabor) / (sum of its envelope) = ratio of DC values.
    K = gabor[..., :1, :1] / envelope[..., :1, :1]
    return gabor - K * envelope


def gaussian_fourier(shape: tuple[int, int], sigma: float, *, dtype: torch.dtype = torch.float64,
                     device: torch.device | str | None = None) -> torch.Tensor:
    """DFT of a periodised isotropic Gaussian low-pass filter of width ``sigma``.

    Parameters
    ----------
    shape : (int, int)
        Grid size ``(M, N)``.
    sigma : float
        Spatial standard deviation in pixels.
    dtype : torch.dtype
        Computation dtype.
    device : torch.device or str, optional
        Device of the result.

    Returns
    -------
    torch.Tensor
        Real Fourier transform, close to 1 at frequency 0.

    Shapes
    ------
    -> (M, N) real
    """
    zero = torch.zeros((), dtype=dtype)
    return gabor_fourier(shape, torch.tensor(float(sigma), dtype=dtype), zero, zero, 1.0,
                         dtype=dtype, device=device)


def kymatio_angles(L: int) -> torch.Tensor:
    """Orientations of the ScatNet/Kymatio filter bank, in filter order.

    Angle index ``l`` has orientation ``(int(L - L/2 - 1) - l) * pi / L``; modulo
    pi these are the L equispaced angles of ``[0, pi)``, which is all a modulus
    of a real signal's wavelet transform can distinguish.

    Parameters
    ----------
    L : int
        Number of orientations.

    Returns
    -------
    torch.Tensor
        Float64 angles.

    Shapes
    ------
    -> (L,)
    """
    offset = int(L - L / 2 - 1)
    return (offset - torch.arange(L, dtype=torch.float64)) * (math.pi / L)
