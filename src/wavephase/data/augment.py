"""Seeded data augmentation of image stacks: flips, shifts, rotations, scalings, elastic deformations.

Every random draw comes from one ``numpy.random.Generator`` seeded by the
caller, so an augmented copy is a function of (images, random_state, copy,
parameters) only: its scattering can be cached on disk under the SHA-256 of
the result, and a training run that is killed and resumed sees the same copies.

All geometric transforms are applied by a single bilinear resampling
(``torch.nn.functional.grid_sample``, zero outside the image), so integer shifts
alone are exact pixel shifts.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from wavephase.resources import check_memory
from wavephase.validation import check_images, check_positive_int, check_random_state

__all__ = ["augment_images", "augmented_copies", "place_on_canvas"]

# Bytes per pixel of one resampled batch: sampling grids and displacement fields in float64, their
# Fourier transforms, the float32 grid and images (measured: about 75).
_RESAMPLE_BYTES = 120


def _smooth_noise(rng: np.random.Generator, n: int, M: int, N: int, sigma: float) -> torch.Tensor:
    # White noise low-passed by a Gaussian of width sigma (in pixels), via FFT,
    # then rescaled to unit RMS per image so `elastic` is an amplitude in pixels.
    noise = torch.from_numpy(rng.standard_normal((n, 2, M, N))).float()
    # in float64: (pi sigma)^2 of a wide field overflows float32, and inf * 0 at the mean is NaN
    fy = torch.fft.fftfreq(M, dtype=torch.float64).view(M, 1)
    fx = torch.fft.fftfreq(N, dtype=torch.float64).view(1, N)
    gain = torch.exp(-2 * (np.pi * sigma) ** 2 * (fy**2 + fx**2)).float()
    field = torch.fft.ifft2(torch.fft.fft2(noise) * gain).real
    rms = field.pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt().clamp_min(1e-12)
    return field / rms


def augment_images(
    X: np.ndarray,
    *,
    random_state: int,
    copy: int | None = None,
    max_shift: int = 0,
    flip: bool = False,
    max_rotation: float = 0.0,
    max_scale: float = 0.0,
    elastic: float = 0.0,
    elastic_sigma: float = 4.0,
    batch_size: int = 5000,
) -> np.ndarray:
    """One randomly transformed copy of each image.

    Parameters
    ----------
    X : array-like
        Images, (n, M, N), background 0 (pixels moved in from outside are 0);
        integer images are converted to float32, not rescaled.
    random_state : int
        Seed of every random draw.
    copy : int, optional
        Index of the copy among several of the same images: the draws are then
        seeded by ``(random_state, copy)``, so copies of one seed differ
        (see :func:`augmented_copies`).
    max_shift : int
        Integer translations uniform in ``[-max_shift, max_shift]`` pixels on each axis.
    flip : bool
        Mirror left-right with probability 1/2 (not for digits).
    max_rotation : float
        Rotations uniform in ``[-max_rotation, max_rotation]`` degrees.
    max_scale : float
        Zooms by a factor log-uniform in ``[1/(1 + max_scale), 1 + max_scale]``
        about the image centre (0: none).
    elastic : float
        RMS amplitude, in pixels, of a smooth random displacement field (0: none).
    elastic_sigma : float
        Correlation length of the displacement field, in pixels.
    batch_size : int
        Images resampled at once (bounds memory).

    Returns
    -------
    numpy.ndarray
        Augmented images, float32.

    Shapes
    ------
    X: (n, M, N) -> (n, M, N)
    """
    X = check_images(X)
    seed = check_random_state(random_state)
    if copy is not None:
        seed = (seed, check_random_state(copy, "copy"))
    if isinstance(max_shift, bool) or not isinstance(max_shift, (int, np.integer)) or not 0 <= max_shift < 2**62:
        raise ValueError(f"max_shift must be a non-negative integer number of pixels, got {max_shift!r}.")
    amounts = {"max_rotation": max_rotation, "max_scale": max_scale, "elastic": elastic,
               "elastic_sigma": elastic_sigma}
    for name, value in amounts.items():
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(f"{name} must be a number, got {type(value).__name__} ({value!r}).")
    max_rotation, max_scale, elastic, elastic_sigma = (float(v) for v in amounts.values())
    if not (0 <= max_rotation < np.inf and 0 <= max_scale < np.inf and 0 <= elastic < np.inf
            and 0 < elastic_sigma < np.inf):  # NaN fails too
        raise ValueError(f"max_rotation, max_scale and elastic must be finite and >= 0 and elastic_sigma finite "
                         f"and > 0, got {max_rotation}, {max_scale}, {elastic}, {elastic_sigma}.")
    batch_size = check_positive_int(batch_size, "batch_size")
    n, M, N = X.shape
    check_memory(float(M) * N * (4 * n + _RESAMPLE_BYTES * min(n, batch_size)), f"an augmented copy of {n} "
                 f"image(s) of {M}x{N}", fix="lower batch_size or augment fewer images at once", argument=False)
    rng = np.random.default_rng(seed)
    # Draw everything up front, in a fixed order, so the result does not depend on batch_size.
    flips = rng.random(n) < 0.5 if flip else np.zeros(n, dtype=bool)
    shifts = rng.integers(-max_shift, max_shift + 1, size=(n, 2))
    angles = np.deg2rad(rng.uniform(-max_rotation, max_rotation, n)) if max_rotation > 0 else np.zeros(n)
    field_seed = int(rng.integers(2**63))
    # Drawn last so that copies made without scaling keep their earlier draws (and cached scattering).
    log_scale = np.log1p(max_scale)
    zooms = np.exp(rng.uniform(-log_scale, log_scale, n)) if max_scale > 0 else np.ones(n)
    out = np.array(X, dtype=np.float32, copy=True)
    out[flips] = out[flips, :, ::-1]
    if max_shift == 0 and max_rotation == 0 and max_scale == 0 and elastic == 0:
        return out
    # Sampling grid in pixel units about the image centre: output pixel p reads
    # input pixel R(p - c - t) / zoom + c + displacement(p).
    ys, xs = torch.meshgrid(torch.arange(M, dtype=torch.float64) - (M - 1) / 2,
                            torch.arange(N, dtype=torch.float64) - (N - 1) / 2, indexing="ij")
    field_rng = np.random.default_rng(field_seed)
    for start in range(0, n, batch_size):
        sl = slice(start, min(start + batch_size, n))
        b = sl.stop - sl.start
        cos = torch.from_numpy(np.cos(angles[sl]) / zooms[sl]).view(b, 1, 1)
        sin = torch.from_numpy(np.sin(angles[sl]) / zooms[sl]).view(b, 1, 1)
        ty = torch.from_numpy(shifts[sl, 0]).double().view(b, 1, 1)
        tx = torch.from_numpy(shifts[sl, 1]).double().view(b, 1, 1)
        py, px = ys - ty, xs - tx
        src_y, src_x = cos * py - sin * px, sin * py + cos * px
        if elastic > 0:
            disp = elastic * _smooth_noise(field_rng, b, M, N, elastic_sigma).double()
            src_y, src_x = src_y + disp[:, 0], src_x + disp[:, 1]
        # grid_sample (align_corners=False) maps pixel i to (2i + 1)/size - 1, i.e. the
        # centred coordinate c to 2c/size.
        # Points beyond the border read zeros: clamping them far outside keeps float32 finite.
        grid = torch.stack([src_x * 2 / N, src_y * 2 / M], dim=-1).clamp(-4.0, 4.0).float()
        images = torch.from_numpy(out[sl]).unsqueeze(1)
        out[sl] = torch.nn.functional.grid_sample(images, grid, mode="bilinear", padding_mode="zeros",
                                                  align_corners=False).squeeze(1).numpy()
    return out


def augmented_copies(X: np.ndarray, n_copies: int, random_state: int, **params: Any) -> Iterator[np.ndarray]:
    """The ``n_copies`` seeded augmented copies of a training set, one at a time.

    Copy ``k`` is ``augment_images(X, random_state=random_state, copy=k, **params)``,
    so the copies a model scatters itself and those whose scattering is cached
    on disk are the same images.

    Parameters
    ----------
    X : array-like
        Images, (n, M, N).
    n_copies : int
        Number of copies (0: none).
    random_state : int
        Seed shared by the copies.
    **params
        Keyword arguments of :func:`augment_images`.

    Yields
    ------
    numpy.ndarray
        One augmented copy, float32 (a generator, so only one copy is held in
        memory at a time).

    Shapes
    ------
    X: (n, M, N) -> n_copies x (n, M, N)
    """
    if isinstance(n_copies, bool) or not isinstance(n_copies, (int, np.integer)) or n_copies < 0:
        raise ValueError(f"n_copies must be a non-negative int, got {n_copies!r}.")
    for k in range(n_copies):
        yield augment_images(X, random_state=random_state, copy=k, **params)


def place_on_canvas(X: np.ndarray, size: int, offset: int) -> np.ndarray:
    """Images translated by ``offset`` pixels (both axes) on a zero ``size`` × ``size`` canvas.

    A scattering subsampled by 2^J samples the image on a fixed grid; the same
    images on another canvas or at another offset are sampled on another grid, so
    models fitted to different views make less correlated errors. Pixels moved
    past the canvas are cropped.

    Parameters
    ----------
    X : array-like
        Images, (n, M, N); integer images are converted to float32.
    size : int
        Canvas side.
    offset : int
        Translation in pixels, down and right (negative: up and left).

    Returns
    -------
    numpy.ndarray
        float32 images; ``X`` itself (as float32) when the canvas is the image
        and the offset 0.

    Shapes
    ------
    X: (n, M, N) -> (n, size, size)
    """
    X = check_images(X)
    if not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size must be a positive integer number of pixels, got {size!r}.")
    if not isinstance(offset, (int, np.integer)) or not -min(X.shape[1:]) < offset < size:
        raise ValueError(f"offset must be an integer that leaves part of the image on the canvas "
                         f"(between {-min(X.shape[1:]) + 1} and {size - 1}), got {offset!r}.")
    n, M, N = X.shape
    check_memory(4.0 * n * size * size, f"{n} image(s) on a {size}x{size} canvas", fix="lower size",
                 argument=False)
    if size == M == N and offset == 0:
        return np.ascontiguousarray(X, dtype=np.float32)
    out = np.zeros((n, size, size), dtype=np.float32)
    src_y, src_x = max(-offset, 0), max(-offset, 0)
    dst = max(offset, 0)
    h, w = min(M - src_y, size - dst), min(N - src_x, size - dst)
    out[:, dst : dst + h, dst : dst + w] = X[:, src_y : src_y + h, src_x : src_x + w]
    return out
