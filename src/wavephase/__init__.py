"""wavephase: multiscale wavelet models on PyTorch.

Scale separation with wavelets, scale interactions through phase.
The 3D solid-harmonic scattering is imported lazily so that 2D users never pay
for (or break on) its dependencies.
"""

from __future__ import annotations

from typing import Any

from wavephase.scattering.scattering2d import Scattering2D

__version__ = "0.1.0"

__all__ = ["Scattering2D", "SolidHarmonicScattering3D", "PhaseHarmonicStatistics", "synthesize", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "SolidHarmonicScattering3D":
        from wavephase.scattering.solid_harmonic3d import SolidHarmonicScattering3D

        return SolidHarmonicScattering3D
    if name == "PhaseHarmonicStatistics":
        from wavephase.harmonics.statistics import PhaseHarmonicStatistics

        return PhaseHarmonicStatistics
    if name == "synthesize":
        from wavephase.synthesis.maxent import synthesize

        return synthesize
    raise AttributeError(f"module 'wavephase' has no attribute {name!r}")
