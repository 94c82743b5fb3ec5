"""The power spectrum of stationary 2D fields, written once for the library.

The periodogram ``|FFT(x)|^2 / (M N)`` of a periodic field is the estimator of
its power spectrum; by Parseval its mean over the wavenumbers is the mean square
of the field. The Gaussian model of :mod:`wavephase.synthesis` samples it, the
``low`` and ``spectrum`` families of
:class:`~wavephase.harmonics.PhaseHarmonicStatistics` bin it, and the field
metrics of :mod:`wavephase.metrics` average it over rings of wavenumbers.
"""

from __future__ import annotations

import torch

from wavephase.validation import check_real_tensor

__all__ = ["periodogram", "power_spectrum_2d"]


def periodogram(x: torch.Tensor, x_hat: torch.Tensor | None = None) -> torch.Tensor:
    """Periodogram ``|FFT(x)|^2 / (M N)`` of each field, in FFT order.

    The field is not centred: the zero wavenumber holds ``M N <x>^2``.

    Parameters
    ----------
    x : torch.Tensor
        Real fields, periodic.
    x_hat : torch.Tensor, optional
        ``torch.fft.fft2(x)`` when the caller has it already (saves one FFT).

    Returns
    -------
    torch.Tensor
        Power at each 2D wavenumber, same real dtype as ``x``; differentiable.

    Shapes
    ------
    x: (..., M, N), x_hat: (..., M, N) complex -> (..., M, N)
    """
    M, N = x.shape[-2:]
    return (torch.fft.fft2(x) if x_hat is None else x_hat).abs().square() / (M * N)


def power_spectrum_2d(x: torch.Tensor) -> torch.Tensor:
    """Power spectrum: the periodogram of ``x - <x>`` averaged over the leading dimensions.

    Parameters
    ----------
    x : torch.Tensor
        Real fields (at least one).

    Returns
    -------
    torch.Tensor
        Power at each 2D wavenumber (FFT order); its mean over the wavenumbers is
        the fields' mean spatial variance.

    Raises
    ------
    ValueError
        For no field, NaN or infinite values, or a spectrum that overflows ``x``'s
        dtype (float32 fields above about 1e18).

    Shapes
    ------
    x: (..., M, N) -> (M, N)
    """
    check_real_tensor(x, "x", min_ndim=2)
    M, N = x.shape[-2:]
    if x.numel() == 0:
        raise ValueError(f"x holds no field (shape {tuple(x.shape)}); pass at least one (M, N) field.")
    xc = x - x.mean((-2, -1), keepdim=True)
    power = periodogram(xc).reshape(-1, M, N).mean(0)
    if not bool(torch.isfinite(power.detach()).all()):
        raise ValueError(f"x: its power spectrum overflows {x.dtype} (largest |x| = {float(x.detach().abs().max()):.3g}); "
                         f"rescale x or pass it in float64.")
    return power
