"""Wavelet phase harmonics, the power spectrum, and moment statistics of stationary fields."""

from wavephase.harmonics.moments import MomentStatistics, NonFiniteMomentsError, moment_loss
from wavephase.harmonics.phase import harmonics_from_relu, phase_harmonic, relu_fourier_coefficient, relu_phase_window
from wavephase.harmonics.scattering_covariance import ScatteringCovariance
from wavephase.harmonics.spectrum import periodogram, power_spectrum_2d
from wavephase.harmonics.statistics import PhaseHarmonicStatistics

__all__ = [
    "phase_harmonic",
    "relu_phase_window",
    "relu_fourier_coefficient",
    "harmonics_from_relu",
    "periodogram",
    "power_spectrum_2d",
    "MomentStatistics",
    "NonFiniteMomentsError",
    "moment_loss",
    "PhaseHarmonicStatistics",
    "ScatteringCovariance",
]
