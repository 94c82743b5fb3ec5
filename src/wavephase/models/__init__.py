"""wavephase.models."""

from wavephase.models.classification import ScatteringClassifier, SparseScatteringClassifier, run_classification
from wavephase.models.baselines import GaussianPixelSampler
from wavephase.models.generative import GenerativeScattering
from wavephase.models.molecules import MoleculeEnergyRegressor

__all__ = ["ScatteringClassifier", "SparseScatteringClassifier", "run_classification", "GaussianPixelSampler", "GenerativeScattering", "MoleculeEnergyRegressor"]
