"""Wavelet phase harmonics and their covariance statistics."""

from wavephase.harmonics.phase import harmonics_from_relu, phase_harmonic, relu_fourier_coefficient, relu_phase_window
from wavephase.harmonics.statistics import PhaseHarmonicStatistics, shift_lattice

__all__ = [
    "phase_harmonic",
    "relu_phase_window",
    "relu_fourier_coefficient",
    "harmonics_from_relu",
    "PhaseHarmonicStatistics",
    "shift_lattice",
]
