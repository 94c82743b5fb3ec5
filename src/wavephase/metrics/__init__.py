"""Metrics: deformation stability, field statistics and comparisons, generation quality."""

from wavephase.metrics.deformation import deform, deformation_ratios, fourier_modulus, smooth_displacement
from wavephase.metrics.discrimination import discrimination_accuracy, discrimination_entry
from wavephase.metrics.field_comparison import compare_fields, jackknife_standard_error
from wavephase.metrics.fields import (
    flatness,
    increment_pdf,
    ising_observables,
    pixel_pdf,
    power_spectrum,
    spectrum_per_octave,
    spin_histogram,
    structure_functions,
)
from wavephase.metrics.stationarity import NonStationaryFieldWarning, stationarity
from wavephase.metrics.generation import frechet_distance, frechet_scattering_distance, path_smoothness, psnr
from wavephase.metrics.sample_scores import confident_class_score, convex_shape_fraction, shape_solidity

__all__ = [
    "deform",
    "deformation_ratios",
    "fourier_modulus",
    "smooth_displacement",
    "frechet_distance",
    "frechet_scattering_distance",
    "path_smoothness",
    "psnr",
    "confident_class_score",
    "convex_shape_fraction",
    "shape_solidity",
    "compare_fields",
    "discrimination_accuracy",
    "discrimination_entry",
    "jackknife_standard_error",
    "flatness",
    "increment_pdf",
    "ising_observables",
    "pixel_pdf",
    "power_spectrum",
    "spectrum_per_octave",
    "spin_histogram",
    "structure_functions",
    "NonStationaryFieldWarning",
    "stationarity",
]
