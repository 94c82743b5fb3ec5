"""scikit-learn front end of the 2D scattering transform: a feature extractor for pipelines."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from wavephase.models.features import flat_features, scatter_in_batches
from wavephase.scattering.scattering2d import Scattering2D
from wavephase.validation import check_device, check_image_shape, check_images, check_positive_int

__all__ = ["Scattering2DTransformer"]


class Scattering2DTransformer(TransformerMixin, BaseEstimator):
    """Scattering coefficients as a feature extractor for scikit-learn pipelines.

    Parameters
    ----------
    J : int
        Number of scales.
    L : int
        Number of orientations.
    max_order : int
        1 or 2.
    rotation : {"none", "average", "fourier"}
        Rotation pooling of the coefficients (see :class:`wavephase.Scattering2D`).
    log : bool
        Return ``log(max(S, 0) + eps)``, which makes scattering coefficients closer
        to Gaussian and linear classifiers more accurate.
    eps : float
        Offset of the logarithm.
    batch_size : int
        Images per forward pass.
    device : str or torch.device
        Where the transform runs (``"cpu"``, ``"cuda"``); features are returned in host memory.

    Attributes
    ----------
    scattering_ : Scattering2D
        The transform, built in :meth:`fit` for the training image size.
    n_features_in_ : int
        Pixels per image, ``M * N``.
    n_features_out_ : int
        Number of output features per image.

    Shapes
    ------
    X: (n, M, N) -> (n, C * M // 2**J * N // 2**J)

    Examples
    --------
    >>> import numpy as np
    >>> Scattering2DTransformer(J=2, L=4).fit_transform(np.zeros((3, 16, 16))).shape
    (3, 400)
    """

    def __init__(self, J: int = 2, L: int = 8, max_order: int = 2, rotation: str = "none",
                 log: bool = False, eps: float = 1e-6, batch_size: int = 256,
                 device: str | torch.device = "cpu") -> None:
        self.J = J
        self.L = L
        self.max_order = max_order
        self.rotation = rotation
        self.log = log
        self.eps = eps
        self.batch_size = batch_size
        self.device = device

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.requires_fit = True
        return tags

    def fit(self, X: object, y: object = None) -> Scattering2DTransformer:
        """Build the transform for the image size of ``X``.

        Parameters
        ----------
        X : array-like
            Images ``(n, M, N)``; integers become float32 (not rescaled).
        y : ignored

        Returns
        -------
        Scattering2DTransformer
            ``self``.
        """
        arr = check_images(X)
        check_positive_int(self.batch_size, "batch_size")
        check_device(self.device)
        if self.log and (isinstance(self.eps, bool) or not isinstance(self.eps, (int, float, np.number))
                         or not 0 < self.eps < math.inf):
            raise ValueError(f"eps must be a positive number, got {self.eps!r}.")
        shape = check_image_shape(arr.shape[1:], self.J, "X.shape[1:]")
        self.scattering_ = Scattering2D(self.J, shape, L=self.L, max_order=self.max_order, rotation=self.rotation,
                                        dtype=torch.float64 if arr.dtype == np.float64 else torch.float32)
        m, n = self.scattering_.output_shape
        self.n_features_out_ = self.scattering_.output_channels * m * n
        self.n_features_in_ = shape[0] * shape[1]
        return self

    def transform(self, X: object) -> np.ndarray:
        """Scattering features of ``X``.

        Parameters
        ----------
        X : array-like
            Images ``(n, M, N)`` of the size seen in :meth:`fit`.

        Returns
        -------
        numpy.ndarray
            Features in the images' dtype (float32 for integer images); an empty
            stack gives an empty result.

        Shapes
        ------
        X: (n, M, N) -> (n, n_features_out_)
        """
        check_is_fitted(self, "scattering_")
        arr = check_images(X)
        if arr.shape[1:] != self.scattering_.shape:
            raise ValueError(f"X has images of shape {arr.shape[1:]}, but the transformer was fitted on "
                             f"{self.scattering_.shape}.")
        feats = scatter_in_batches(self.scattering_, arr, batch_size=self.batch_size, device=self.device)
        return flat_features(feats, self.eps if self.log else 0.0)
