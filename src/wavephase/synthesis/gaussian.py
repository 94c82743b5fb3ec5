"""The Gaussian model of a stationary field, and the check of target fields every synthesis makes.

The maximum-entropy field with a given mean and power spectrum is a
stationary Gaussian field; on a periodic grid its Fourier coefficients are
independent, so a sample is white noise filtered by the square root of the
power spectrum, and a sample conditioned on a coarse field replaces its low
frequencies by the coarse field's.
"""

from __future__ import annotations

from typing import Any

import torch

from wavephase.harmonics.spectrum import power_spectrum_2d
from wavephase.synthesis.coarse import check_conditioning, condition, lift
from wavephase.validation import as_float_tensor, check_positive_int, check_random_state, check_real_tensor

__all__ = ["check_targets", "gaussian_synthesis"]

# Smallest field side a synthesis accepts.
MIN_SIZE = 8


def check_targets(target: Any) -> torch.Tensor:
    """Validate target field(s) of a synthesis.

    Parameters
    ----------
    target : array-like or list of array-likes
        One field ``(M, N)``, a stack ``(n, M, N)`` or a list of fields of one size.

    Returns
    -------
    torch.Tensor
        The targets as a float tensor (float64 stays float64).

    Raises
    ------
    ValueError
        For an empty list, fields of different sizes, a wrong number of
        dimensions, fields smaller than 8 x 8, NaN or infinite values, or a
        constant field.

    Shapes
    ------
    target: (M, N) or (n, M, N) -> (n, M, N)
    """
    if isinstance(target, (list, tuple)):
        if not target:
            raise ValueError("target is an empty list; pass one field (M, N) or a stack (n, M, N).")
        arrays = [as_float_tensor(t, f"target[{i}]") for i, t in enumerate(target)]
        shapes = {tuple(a.shape) for a in arrays}
        if len(shapes) > 1:
            raise ValueError(f"the target fields have different shapes {sorted(shapes)}; crop them to one "
                             f"common size (M, N) before synthesis.")
        t = torch.stack([a.to(arrays[0].dtype) for a in arrays])
    else:
        t = as_float_tensor(target, "target")
    check_real_tensor(t, "target")
    if t.ndim == 2:
        t = t[None]
    if t.ndim != 3:
        raise ValueError(f"target must have shape (M, N) or (n, M, N), got {tuple(t.shape)}; "
                         f"reshape a batch of fields to (n, M, N).")
    if t.shape[0] == 0:
        raise ValueError(f"target holds no field (shape {tuple(t.shape)}); pass at least one (M, N) field.")
    if min(t.shape[-2:]) < MIN_SIZE:
        raise ValueError(f"target of size {tuple(t.shape[-2:])} is too small; synthesis needs fields of at "
                         f"least {MIN_SIZE} x {MIN_SIZE} pixels.")
    var = t.double().var((-2, -1), unbiased=False)
    scale = t.double().abs().amax((-2, -1)).clamp_min(1e-300)
    constant = var <= (1e-12 * scale) ** 2
    if bool(constant.any()):
        bad = [int(i) for i in torch.nonzero(constant).flatten()]
        raise ValueError(f"target field(s) {bad} are constant (zero variance); a texture model needs "
                         f"fluctuations.")
    return t


def gaussian_synthesis(target: Any, n_samples: int = 1, random_state: int = 0,
                       conditioning: Any = None) -> torch.Tensor:
    """Samples of the stationary Gaussian field with the target's mean and power spectrum.

    White noise filtered by ``sqrt(P)`` (``P`` the target periodogram, averaged
    over the targets): its expected periodogram is exactly ``P``. With
    ``conditioning``, the low frequencies are replaced by the coarse field's,
    which is the exact conditional sample since the Fourier coefficients of a
    periodic stationary Gaussian field are independent.

    Parameters
    ----------
    target : array-like
        One or several target fields (see :func:`check_targets`).
    n_samples : int
        Number of samples.
    random_state : int
        Seed of the white noise (a private generator; the global RNG is untouched).
    conditioning : array-like, optional
        Coarse field from :func:`~wavephase.synthesis.coarse_grain`, shared by
        all samples or one per sample.

    Returns
    -------
    torch.Tensor
        Samples, same dtype and device as ``target``.

    Shapes
    ------
    target: (M, N) or (n, M, N); conditioning: (m, n) or (n_samples, m, n) -> (n_samples, M, N)
    """
    t = check_targets(target)
    n_samples = check_positive_int(n_samples, "n_samples")
    gen = torch.Generator().manual_seed(check_random_state(random_state))
    M, N = t.shape[-2:]
    noise = torch.randn(n_samples, M, N, generator=gen, dtype=torch.float64).to(t.device)
    amp = power_spectrum_2d(t.double()).sqrt()
    x = torch.fft.ifft2(torch.fft.fft2(noise) * amp).real + t.double().mean()
    if conditioning is not None:
        c = check_conditioning(conditioning, (M, N), n_samples).to(x)
        x = condition(x, lift(c, (M, N)), M // c.shape[-2])
    return x.to(t.dtype)
