"""wavephase.models."""

from wavephase.models.generative import GaussianPixelSampler, GenerativeScattering, run_generation

__all__ = ["GaussianPixelSampler", "GenerativeScattering", "run_generation"]
