"""Deformation stability: how much a representation moves under a small warp.

A representation ``Phi`` is Lipschitz-stable to deformations when
``||Phi(x_tau) - Phi(x)|| <= C ||grad tau||_inf ||x||`` for ``x_tau(u) = x(u - tau(u))``.
The scattering transform is; the Fourier modulus is not: a dilation by
``1 + eps`` moves a frequency ``omega`` by ``eps |omega|``, which for high
frequencies exceeds the width of any Fourier bin.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch

from wavephase.validation import check_real_tensor

__all__ = ["smooth_displacement", "deform", "fourier_modulus", "deformation_ratios"]


def smooth_displacement(shape: tuple[int, int], max_gradient: float, *, seed: int = 0,
                        n_modes: int = 3, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """A random smooth displacement field ``tau`` with ``||grad tau||_inf = max_gradient``.

    ``tau`` is a sum of a uniform dilation about the image centre and a few
    low-frequency sinusoids with random amplitudes and phases, rescaled so that
    the largest entry of its Jacobian (estimated by finite differences) equals
    ``max_gradient``.

    Parameters
    ----------
    shape : (int, int)
        Image size ``(M, N)``.
    max_gradient : float
        Target sup-norm of the Jacobian of ``tau`` (dimensionless).
    seed : int
        Random seed of the field.
    n_modes : int
        Number of sinusoidal modes per component.
    dtype : torch.dtype
        Output dtype.

    Returns
    -------
    torch.Tensor
        Displacement in pixels, ``(2, M, N)`` (row and column components).

    Shapes
    ------
    -> (2, M, N)
    """
    if not (math.isfinite(max_gradient) and max_gradient >= 0):
        raise ValueError(f"max_gradient must be a finite non-negative float, got {max_gradient}.")
    M, N = shape
    gen = torch.Generator().manual_seed(seed)
    u1 = torch.arange(M, dtype=torch.float64)[:, None].expand(M, N)
    u2 = torch.arange(N, dtype=torch.float64)[None, :].expand(M, N)
    field = torch.stack((u1 - (M - 1) / 2, u2 - (N - 1) / 2))  # dilation
    for comp in range(2):
        for _ in range(n_modes):
            k1, k2 = torch.randint(0, 3, (2,), generator=gen).tolist()
            amp, phase = torch.rand(2, generator=gen).tolist()
            arg = 2 * math.pi * (k1 * u1 / M + k2 * u2 / N) + 2 * math.pi * phase
            field[comp] += amp * max(M, N) / (2 * math.pi) * torch.sin(arg)
    jac = torch.stack([torch.gradient(field[c], dim=d)[0] for c in range(2) for d in range(2)])
    scale = jac.abs().max()
    return (field * (max_gradient / scale)).to(dtype)


def deform(x: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    """Warp images: ``x_tau(u) = x(u - tau(u))`` by bicubic interpolation.

    Parameters
    ----------
    x : torch.Tensor
        Real images ``(..., M, N)``.
    tau : torch.Tensor
        Displacement in pixels ``(2, M, N)``.

    Returns
    -------
    torch.Tensor
        Warped images, reflection at the borders.

    Shapes
    ------
    x: (..., M, N), tau: (2, M, N) -> (..., M, N)
    """
    check_real_tensor(x, "x", min_ndim=2)
    M, N = x.shape[-2:]
    if tuple(tau.shape) != (2, M, N):
        raise ValueError(f"tau must have shape (2, {M}, {N}) to match x, got {tuple(tau.shape)}.")
    u1 = torch.arange(M, dtype=x.dtype, device=x.device)[:, None] - tau[0].to(x)
    u2 = torch.arange(N, dtype=x.dtype, device=x.device)[None, :] - tau[1].to(x)
    # grid_sample wants (column, row) in [-1, 1] with align_corners=True.
    grid = torch.stack((2 * u2 / (N - 1) - 1, 2 * u1 / (M - 1) - 1), dim=-1)[None]
    flat = x.reshape(-1, 1, M, N)
    out = torch.nn.functional.grid_sample(flat, grid.expand(flat.shape[0], -1, -1, -1), mode="bicubic",
                                          padding_mode="reflection", align_corners=True)
    return out.reshape(x.shape)


def fourier_modulus(x: torch.Tensor) -> torch.Tensor:
    """Modulus of the unitary 2D DFT, a translation-invariant representation.

    Parameters
    ----------
    x : torch.Tensor
        Real images ``(..., M, N)``.

    Returns
    -------
    torch.Tensor
        ``|x_hat| / sqrt(M N)`` (so that its norm equals ``||x||``).

    Shapes
    ------
    x: (..., M, N) -> (..., M, N)
    """
    return torch.fft.fft2(x, norm="ortho").abs()


def deformation_ratios(
    x: torch.Tensor,
    representations: dict[str, Callable[[torch.Tensor], torch.Tensor]],
    max_gradients: Sequence[float],
    *,
    seed: int = 0,
) -> dict[str, list[float]]:
    """``||Phi(x_tau) - Phi(x)|| / ||x||`` for each representation and deformation size.

    Parameters
    ----------
    x : torch.Tensor
        Real images ``(..., M, N)``.
    representations : dict of str to callable
        Named maps ``Phi``, e.g. ``{"scattering": Scattering2D(...), "fourier": fourier_modulus}``.
    max_gradients : sequence of float
        Values of ``||grad tau||_inf``; the same random field shape is used for
        all, only its amplitude changes.
    seed : int
        Seed of the displacement field.

    Returns
    -------
    dict
        ``{"max_gradient": [...], name: [ratio per max_gradient], ...}``.

    Shapes
    ------
    x: (..., M, N) -> lists of len(max_gradients)
    """
    check_real_tensor(x, "x", min_ndim=2)
    shape = tuple(x.shape[-2:])
    if min(shape) < 2:
        raise ValueError(f"x must hold images of at least 2 x 2 pixels, got shape {tuple(x.shape)}.")
    gradients = list(max_gradients) if isinstance(max_gradients, Sequence) else None
    if gradients is None or not all(isinstance(g, (int, float)) and not isinstance(g, bool) and math.isfinite(g)
                                    and g >= 0 for g in gradients):
        raise ValueError(f"max_gradients must be a list of finite non-negative floats, got {max_gradients!r}.")
    if not isinstance(representations, dict) or not all(callable(phi) for phi in representations.values()):
        raise TypeError("representations must be a dict of name -> callable, e.g. {'fourier': fourier_modulus}.")
    norm = _norm(x)
    if norm == 0:
        raise ValueError("x is identically zero (or holds no image); deformation ratios are undefined.")
    result: dict[str, list[float]] = {"max_gradient": [float(g) for g in gradients]}
    with torch.no_grad():
        reference = {name: phi(x) for name, phi in representations.items()}
        for name in representations:
            result[name] = []
        for g in gradients:
            x_tau = deform(x, smooth_displacement(shape, float(g), seed=seed, dtype=x.dtype))
            for name, phi in representations.items():
                result[name].append(_norm(phi(x_tau) - reference[name]) / norm)
    return result


def _norm(v: torch.Tensor) -> float:
    """L2 norm, in float64 and relative to the largest entry, so that no square overflows."""
    v = v.detach().double()
    largest = v.abs().max() if v.numel() else v.new_zeros(())
    return float(largest * (v / largest).norm()) if largest > 0 else 0.0
