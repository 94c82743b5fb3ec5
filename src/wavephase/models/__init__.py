"""wavephase.models."""

from wavephase.models.scattering_classifier import ScatteringClassifier
from wavephase.models.sparse_classifier import SparseScatteringClassifier
from wavephase.models.transformers import Scattering2DTransformer
from wavephase.models.generative import GaussianPixelSampler, GenerativeScattering, run_generation
from wavephase.models.molecules import MoleculeEnergyRegressor

__all__ = ["ScatteringClassifier", "SparseScatteringClassifier", "Scattering2DTransformer", "GaussianPixelSampler", "GenerativeScattering", "run_generation", "MoleculeEnergyRegressor"]
