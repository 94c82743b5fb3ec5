"""scikit-learn front end of the 2D scattering transform."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin

from wavephase.scattering.scattering2d import Scattering2D
from wavephase.validation import check_image_shape, check_positive_int

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
        Return ``log(eps + S)``, which makes scattering coefficients closer to
        Gaussian and linear classifiers more accurate.
    eps : float
        Offset of the logarithm.
    batch_size : int
        Images per forward pass.

    Attributes
    ----------
    scattering_ : Scattering2D
        The transform, built in :meth:`fit` for the training image size.
    n_features_out_ : int
        Number of output features per image.

    Shapes
    ------
    X: (n, M, N) -> (n, C * M // 2**J * N // 2**J)
    """

    def __init__(self, J: int = 2, L: int = 8, max_order: int = 2, rotation: str = "none",
                 log: bool = False, eps: float = 1e-6, batch_size: int = 256) -> None:
        self.J = J
        self.L = L
        self.max_order = max_order
        self.rotation = rotation
        self.log = log
        self.eps = eps
        self.batch_size = batch_size

    @staticmethod
    def _check_images(X: object) -> np.ndarray:
        arr = np.asarray(X)
        if arr.dtype == object or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
            raise TypeError(f"X must be a real numeric array of images (n, M, N), got dtype {arr.dtype}.")
        if arr.ndim != 3:
            raise ValueError(f"X must have shape (n, M, N), got {arr.shape}; reshape flat images with "
                             f"X.reshape(n, M, N).")
        if not np.isfinite(arr).all():
            raise ValueError("X contains NaN or infinite values; clean them before the transform.")
        return arr

    def fit(self, X: object, y: object = None) -> "Scattering2DTransformer":
        """Build the transform for the image size of ``X``.

        Parameters
        ----------
        X : array-like
            Images ``(n, M, N)``.
        y : ignored

        Returns
        -------
        Scattering2DTransformer
            ``self``.
        """
        arr = self._check_images(X)
        check_positive_int(self.batch_size, "batch_size")
        shape = check_image_shape(arr.shape[1:], self.J, "X.shape[1:]")
        self.scattering_ = Scattering2D(self.J, shape, L=self.L, max_order=self.max_order, rotation=self.rotation)
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
            float32 features ``(n, n_features_out_)``.
        """
        if not hasattr(self, "scattering_"):
            raise RuntimeError("Scattering2DTransformer is not fitted yet; call fit(X) first.")
        arr = self._check_images(X)
        if arr.shape[1:] != self.scattering_.shape:
            raise ValueError(f"X has images of shape {arr.shape[1:]}, but the transformer was fitted on "
                             f"{self.scattering_.shape}.")
        out = np.empty((arr.shape[0], self.n_features_out_), dtype=np.float32)
        with torch.no_grad():
            for start in range(0, arr.shape[0], self.batch_size):
                batch = torch.as_tensor(arr[start:start + self.batch_size], dtype=torch.float32)
                s = self.scattering_(batch)
                if self.log:
                    s = torch.log(s.clamp_min(0) + self.eps)
                out[start:start + len(batch)] = s.reshape(len(batch), -1).numpy()
        return out
