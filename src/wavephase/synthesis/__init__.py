"""Maximum-entropy synthesis of stationary fields (Gaussian and microcanonical models)."""

from wavephase.synthesis.maxent import (
    STATISTICS,
    SynthesisDivergenceWarning,
    build_statistics,
    coarse_grain,
    default_J,
    gaussian_synthesis,
    lift,
    power_spectrum_2d,
    synthesize,
)

__all__ = [
    "STATISTICS",
    "SynthesisDivergenceWarning",
    "build_statistics",
    "coarse_grain",
    "default_J",
    "gaussian_synthesis",
    "lift",
    "power_spectrum_2d",
    "synthesize",
]
