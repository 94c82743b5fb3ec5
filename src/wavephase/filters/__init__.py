"""Wavelet filter banks: Morlet wavelets over scales and angles, Gaussian low-pass."""

from wavephase.filters.bank import FilterBank, custom_bank, littlewood_paley, morlet_bank
from wavephase.filters.morlet import gabor_fourier, gaussian_fourier, kymatio_angles, morlet_fourier

__all__ = [
    "FilterBank",
    "custom_bank",
    "gabor_fourier",
    "gaussian_fourier",
    "kymatio_angles",
    "littlewood_paley",
    "morlet_bank",
    "morlet_fourier",
]
