"""Metrics: deformation stability, field statistics, generation quality."""

from wavephase.metrics.deformation import deform, deformation_ratios, fourier_modulus, smooth_displacement

__all__ = ["deform", "deformation_ratios", "fourier_modulus", "smooth_displacement"]
