"""Estimators with scikit-learn's conventions: classifiers, the generative model, the molecular-energy regressor."""

from wavephase.models.baselines import ConvVAE, GaussianPixelSampler
from wavephase.models.generative import GenerativeScattering
from wavephase.models.molecules import MoleculeEnergyRegressor
from wavephase.models.scattering_classifier import ScatteringClassifier
from wavephase.models.sparse_classifier import SparseScatteringClassifier
from wavephase.models.transformers import Scattering2DTransformer

__all__ = [
    "ConvVAE",
    "GaussianPixelSampler",
    "GenerativeScattering",
    "MoleculeEnergyRegressor",
    "Scattering2DTransformer",
    "ScatteringClassifier",
    "SparseScatteringClassifier",
]
