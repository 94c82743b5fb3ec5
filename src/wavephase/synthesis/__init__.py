"""Maximum-entropy synthesis of stationary fields (Gaussian and microcanonical models)."""

from wavephase.synthesis.coarse import check_conditioning, coarse_grain, condition, lift
from wavephase.synthesis.gaussian import check_targets, gaussian_synthesis
from wavephase.synthesis.maxent import (
    STATISTICS,
    SynthesisDivergenceWarning,
    SynthesisResult,
    build_statistics,
    default_J,
    synthesize,
)

__all__ = [
    "STATISTICS",
    "SynthesisDivergenceWarning",
    "SynthesisResult",
    "build_statistics",
    "check_conditioning",
    "check_targets",
    "coarse_grain",
    "condition",
    "default_J",
    "gaussian_synthesis",
    "lift",
    "synthesize",
]
