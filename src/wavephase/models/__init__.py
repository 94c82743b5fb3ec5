"""wavephase.models."""

from wavephase.models.classification import ScatteringClassifier, SparseScatteringClassifier, run_classification
from wavephase.models.generative import GaussianPixelSampler, GenerativeScattering, run_generation
from wavephase.models.molecules import MoleculeEnergyRegressor

__all__ = ["ScatteringClassifier", "SparseScatteringClassifier", "run_classification", "GaussianPixelSampler", "GenerativeScattering", "run_generation", "MoleculeEnergyRegressor"]
