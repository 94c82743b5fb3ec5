"""Quality of generative models: PSNR, Fréchet scattering distance, path smoothness.

Fréchet scattering distance (FSD)
---------------------------------
The Fréchet (2-Wasserstein) distance between two Gaussians fitted to feature
vectors of two image sets,

    FSD = ||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)),

where the features are *whitened scattering coefficients*: the scattering
transform of each image, flattened and PCA-whitened by an embedding fitted on the
**training** set (``GenerativeScattering.embedding_``). It is the FID recipe with
the Inception network replaced by a fixed, non-learned, deformation-stable
representation. Because the training set is mapped to zero mean and identity
covariance, an FSD of ``d`` means a discrepancy comparable to a shift of
``sqrt(d)`` standard deviations in one whitened direction. The number of images
must exceed the feature dimension for the covariance estimates to be meaningful;
with finite samples, even two draws of the same distribution have FSD > 0, so
compare models at equal sample sizes.
"""

from __future__ import annotations

import math
import sys
from typing import Callable

import numpy as np
import scipy.linalg
import torch

from wavephase.validation import as_float_tensor

__all__ = ["psnr", "frechet_distance", "frechet_scattering_distance", "path_smoothness"]


def psnr(x: torch.Tensor, reference: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio of each image, in dB.

    Parameters
    ----------
    x, reference : torch.Tensor
        Reconstructions and originals of the same shape.
    data_range : float
        Peak-to-peak range of the data (1 for images in ``[0, 1]``).

    Returns
    -------
    torch.Tensor
        ``10 log10(data_range^2 / MSE)`` per image (average it for a data-set
        figure; a perfect reconstruction gives ``inf``), finite otherwise.

    Shapes
    ------
    x, reference: (..., M, N) -> (...)
    """
    x = as_float_tensor(x, "x")
    reference = as_float_tensor(reference, "reference")
    if x.shape != reference.shape:
        raise ValueError(f"x and reference must have the same shape, got {tuple(x.shape)} and {tuple(reference.shape)}.")
    if x.ndim < 2:
        raise ValueError(f"x must have at least 2 dimensions (M, N), got shape {tuple(x.shape)}.")
    if min(x.shape[-2:]) == 0:
        raise ValueError(f"x holds images without pixels (shape {tuple(x.shape)}).")
    if isinstance(data_range, bool) or not isinstance(data_range, (int, float, np.integer, np.floating)):
        raise TypeError(f"data_range must be a positive number, got {type(data_range).__name__} ({data_range!r}).")
    if not 0 < data_range < math.inf:
        raise ValueError(f"data_range must be a finite positive number, got {data_range}.")
    # In units of a power of two per image, so that neither the differences nor their squares overflow.
    e = _exponents(torch.maximum(x.double().abs(), reference.double().abs()).amax((-2, -1), keepdim=True))
    msd = (torch.ldexp(x.double(), -e) - torch.ldexp(reference.double(), -e)).square().mean(dim=(-2, -1))
    return 20 * math.log10(data_range) - 10 * torch.log10(msd) - 20 * math.log10(2.0) * e[..., 0, 0]


def frechet_distance(features_a: np.ndarray | torch.Tensor, features_b: np.ndarray | torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two sets of feature vectors.

    Parameters
    ----------
    features_a, features_b : array-like
        One feature vector per row; the two sets may differ in size.

    Returns
    -------
    float
        ``||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))`` (non-negative).

    Shapes
    ------
    features_a: (n_a, d), features_b: (n_b, d) -> scalar
    """
    a = as_float_tensor(features_a, "features_a").double().numpy()
    b = as_float_tensor(features_b, "features_b").double().numpy()
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(
            f"features_a and features_b must be 2D with the same number of columns, got {a.shape} and {b.shape}."
        )
    if min(len(a), len(b)) < 2:
        raise ValueError(f"features_a and features_b need at least 2 rows each to estimate a covariance, got "
                         f"{len(a)} and {len(b)}.")
    # The distance is quadratic in the features: computed on features divided by a power of two near their
    # largest magnitude, then scaled back, so that large features do not overflow the covariances.
    largest = max(float(np.abs(a).max(initial=0.0)), float(np.abs(b).max(initial=0.0)))
    e = math.frexp(largest)[1] if largest > 0 else 0
    try:
        return math.ldexp(_frechet(np.ldexp(a, -e), np.ldexp(b, -e)), 2 * e)
    except OverflowError:
        raise ValueError(f"features_a and features_b: their Fréchet distance overflows float64 (features up to "
                         f"{largest:.3g}); rescale the features.") from None


def _frechet(a: np.ndarray, b: np.ndarray) -> float:
    """The Fréchet distance of two float64 feature sets of moderate magnitude."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    # tr (S_a S_b)^(1/2) = tr (S_a^(1/2) S_b S_a^(1/2))^(1/2): a symmetric PSD matrix,
    # so its eigenvalues are real and the result is stable where sqrtm of the
    # non-symmetric product returns complex round-off.
    evals, evecs = scipy.linalg.eigh(cov_a)
    root_a = (evecs * np.sqrt(np.clip(evals, 0, None))) @ evecs.T
    inner = scipy.linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace_root = float(np.sum(np.sqrt(np.clip(inner, 0, None))))
    value = float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root)
    return max(value, 0.0)


def frechet_scattering_distance(
    images_a: torch.Tensor,
    images_b: torch.Tensor,
    embed: Callable[[torch.Tensor], torch.Tensor],
    batch_size: int = 500,
) -> float:
    """Fréchet scattering distance between two image sets (see the module notes).

    Parameters
    ----------
    images_a, images_b : torch.Tensor
        Two image sets of the same image size.
    embed : callable
        Whitened scattering embedding fitted on training data, e.g.
        ``GenerativeScattering.encode``.
    batch_size : int
        Images embedded at a time.

    Returns
    -------
    float
        The FSD.

    Shapes
    ------
    images_a: (n_a, M, N), images_b: (n_b, M, N) -> scalar
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}.")
    feats = []
    for name, images in (("images_a", images_a), ("images_b", images_b)):
        images = as_float_tensor(images, name)
        if len(images) < 2:
            raise ValueError(f"{name} must hold at least 2 images to estimate a covariance, got {len(images)}.")
        with torch.no_grad():
            feats.append(torch.cat([embed(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]))
    try:
        return frechet_distance(feats[0], feats[1])
    except ValueError as err:  # in the caller's terms: the features are the embeddings of the images
        raise ValueError(f"images_a and images_b: the Fréchet distance of their embeddings failed ({err})") from None


def path_smoothness(path: torch.Tensor, train_images: torch.Tensor | None = None) -> dict[str, float]:
    """Regularity of an interpolation path of images.

    Parameters
    ----------
    path : torch.Tensor
        Frames from one end point to the other.
    train_images : torch.Tensor, optional
        Training images; if given, also measure how close intermediate frames stay
        to real images.

    Returns
    -------
    dict
        ``"step_ratio"``: largest pixel-space step over the mean step (1 for
        perfectly even steps; large values mean jumps). ``"length_ratio"``: path
        length over the straight-line distance between the end points (1 for
        linear blending; a warping path is longer since it moves mass instead of
        cross-fading). ``"nearest_train_rmse"`` (with ``train_images``): mean over
        the interior frames of the RMS distance to the nearest training image
        (low means intermediate frames look like real images rather than
        superpositions).

    Shapes
    ------
    path: (T, M, N) with T >= 3; train_images: (n, M, N)
    """
    path = as_float_tensor(path, "path").double()
    if path.ndim != 3 or len(path) < 3:
        raise ValueError(f"path must have shape (T, M, N) with T >= 3, got {tuple(path.shape)}.")
    flat = path.flatten(1)
    train = None
    if train_images is not None:
        train = as_float_tensor(train_images, "train_images").double().flatten(1)
        if train.shape[1] != flat.shape[1] or not len(train):
            raise ValueError(f"train_images must hold images of the frames' size {tuple(path.shape[1:])}.")
    # Distances in units of a power of two near the largest value, so that no square overflows.
    e = int(_exponents(torch.cat([flat.reshape(-1), *([] if train is None else [train.reshape(-1)])]).abs().amax()))
    flat = torch.ldexp(flat, torch.tensor(-e))
    steps = (flat[1:] - flat[:-1]).norm(dim=1)
    chord = float((flat[-1] - flat[0]).norm())
    tiny = max(math.ldexp(1e-12, -e), sys.float_info.min)  # 1e-12 in the path's own units
    out = {
        "step_ratio": float(steps.max() / steps.mean().clamp_min(tiny)),
        "length_ratio": float(steps.sum()) / max(chord, tiny),
    }
    if train is not None:
        dist = torch.cdist(flat[1:-1], torch.ldexp(train, torch.tensor(-e))).min(dim=1).values / flat.shape[1] ** 0.5
        try:
            out["nearest_train_rmse"] = math.ldexp(float(dist.mean()), e)
        except OverflowError:
            raise ValueError("path and train_images: their distances overflow float64; rescale the images.") from None
    return out


def _exponents(largest: torch.Tensor) -> torch.Tensor:
    """Exponents ``e`` with ``largest < 2^e`` (0 where ``largest`` is 0), as int tensors."""
    return torch.where(largest > 0, torch.frexp(largest)[1], torch.zeros_like(largest, dtype=torch.int32))
