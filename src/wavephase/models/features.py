"""Scattering features of image stacks: computed in fixed batches, cached on disk, verified.

The classifiers see images through their 2D scattering coefficients. Those are
the same for every model of an experiment, so :func:`scattering_features`
caches them in ``cache_dir("features")`` through :class:`wavephase.runs.Checkpoint`:
the file records a fingerprint of the settings *and* of the images' content,
and a checksum of its own bytes; a stale, truncated or garbled file is
recomputed, never read.

Reproducibility: the coefficients of an image can differ in their last bits
with the images it is scattered next to (the chunks of a batch), with the number
of torch threads and with the device. Features are therefore always computed in
batches of ``batch_size`` consecutive images from the first one, and the cache
fingerprint holds the batch size, the thread count and the device: a warm cache
returns exactly the bits that a cold one computes.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from wavephase.data.cache import cache_dir
from wavephase.runs import Checkpoint, fingerprint
from wavephase.scattering.scattering2d import Scattering2D
from wavephase.validation import check_device, check_images, check_positive_int

__all__ = ["flat_features", "scatter_in_batches", "scattering_features"]


def _torch_dtype(images: np.ndarray) -> torch.dtype:
    return torch.float64 if images.dtype == np.float64 else torch.float32


def scatter_in_batches(scattering: Scattering2D, images: np.ndarray, *, batch_size: int = 500,
                       device: str | torch.device | None = "cpu", progress: bool = False) -> np.ndarray:
    """Scattering coefficients of a stack of images, one batch at a time, gathered in host memory.

    Parameters
    ----------
    scattering : Scattering2D
        The transform, built for the images' size (moved to ``device``).
    images : numpy.ndarray
        float32 or float64 images (see :func:`wavephase.validation.check_images`).
    batch_size : int
        Images per forward pass; batches start at image 0.
    device : str or torch.device
        Where the transform runs (``"cpu"``, ``"cuda"``).
    progress : bool
        Show a progress bar.

    Returns
    -------
    numpy.ndarray
        Coefficients in the images' dtype; an empty stack gives an empty array.

    Shapes
    ------
    images: (n, M, N) -> (n, C, M // 2**J, N // 2**J)
    """
    batch_size = check_positive_int(batch_size, "batch_size")
    device = check_device(device)
    scattering = scattering.to(device)
    out = np.empty((len(images), scattering.output_channels, *scattering.output_shape), dtype=images.dtype)
    with torch.no_grad():
        for start in tqdm(range(0, len(images), batch_size), desc=f"scattering J={scattering.J}",
                          disable=not progress):
            batch = torch.from_numpy(images[start : start + batch_size]).to(device)
            out[start : start + batch_size] = scattering(batch).cpu().numpy()
    return out


def scattering_features(
    X: object,
    *,
    J: int = 2,
    L: int = 8,
    batch_size: int = 500,
    cache_name: str | None = None,
    device: str | torch.device | None = "cpu",
    progress: bool = False,
) -> np.ndarray:
    """Scattering coefficients of a stack of images, optionally cached on disk.

    Parameters
    ----------
    X : array-like
        Images; integers become float32 (not rescaled), float64 stays float64.
    J, L : int
        Scattering scales and angles.
    batch_size : int
        Images per forward pass, in batches from image 0 (part of the cache key).
    cache_name : str, optional
        Cache the result in ``cache_dir("features")`` in a file named after
        ``cache_name``, J, L and the fingerprint of the settings and of the
        images' content; it is checked against its SHA-256 on every read and
        recomputed (with a warning) when it does not match.
    device : str or torch.device
        Where the transform runs (``"cpu"``, ``"cuda"``); the result is in host memory.
    progress : bool
        Show a progress bar.

    Returns
    -------
    numpy.ndarray
        Coefficients, in the dtype of the (converted) images.

    Shapes
    ------
    X: (n, M, N) -> (n, 1 + L J + L^2 J (J - 1) / 2, M // 2**J, N // 2**J)

    Examples
    --------
    >>> import numpy as np
    >>> scattering_features(np.zeros((3, 16, 16), np.float32), J=2, L=4).shape
    (3, 25, 4, 4)
    """
    images = check_images(X)
    scattering = Scattering2D(J, images.shape[1:], L=L, dtype=_torch_dtype(images))
    batch_size = check_positive_int(batch_size, "batch_size")
    device = check_device(device)
    if cache_name is not None and not isinstance(cache_name, str):
        raise TypeError(f"cache_name must be a str or None, got {type(cache_name).__name__}.")
    if cache_name is None or len(images) == 0:
        return scatter_in_batches(scattering, images, batch_size=batch_size, device=device, progress=progress)
    config = {"J": J, "L": L, "shape": images.shape[1:], "dtype": images.dtype.str, "batch_size": batch_size,
              "device": device.type, "torch_threads": torch.get_num_threads(), "torch": torch.__version__}
    # The images are hashed once: the file is named after the fingerprint, which
    # the checkpoint then binds to the file's content.
    key = fingerprint(config, images)
    cache = Checkpoint(cache_dir("features") / f"{cache_name}-J{J}-L{L}-{key[:20]}.feat", config, key,
                       what="feature cache", on_mismatch="recompute")
    feats = cache.load_array()
    if feats is None:
        feats = scatter_in_batches(scattering, images, batch_size=batch_size, device=device, progress=progress)
        cache.save_array(feats)
    return feats


def flat_features(feats: np.ndarray, log_eps: float = 0.0) -> np.ndarray:
    """Features flattened per sample, after ``log(max(S, 0) + log_eps)`` when ``log_eps > 0``.

    The log compresses the heavy-tailed scattering amplitudes, so a linear model
    sees multiplicative contrasts; ``log_eps`` keeps empty (zero) coefficients finite.

    Parameters
    ----------
    feats : numpy.ndarray
        Scattering coefficients (or any features) of n samples.
    log_eps : float
        Offset of the log; 0: no log.

    Returns
    -------
    numpy.ndarray
        Same dtype as ``feats``; ``n`` may be 0.

    Shapes
    ------
    feats: (n, ...) -> (n, prod(...))
    """
    flat = feats.reshape(len(feats), int(np.prod(feats.shape[1:])))
    return np.log(np.maximum(flat, 0) + flat.dtype.type(log_eps)) if log_eps > 0 else flat
