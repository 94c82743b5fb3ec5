"""Coarse graining of periodic fields and its right inverse, the band-limited lift.

A coarse field ``c = coarse_grain(x, f)`` keeps the Fourier coefficients of
``x`` below the coarse grid's Nyquist frequency; :func:`lift` puts them back on
the fine grid. ``x - lift(coarse_grain(x)) + lift(c)`` is then the projection of
``x`` onto the affine set of fields whose coarse field is ``c``: how a synthesis
is conditioned on a coarse field.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from wavephase.validation import as_float_tensor, check_positive_int, check_real_tensor

__all__ = ["check_conditioning", "coarse_grain", "condition", "lift"]


def _band(size: int, coarse: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices, on the fine and the coarse grid, of the frequencies ``|k| < coarse / 2``."""
    half = (coarse - 1) // 2  # the coarse Nyquist frequency is dropped so that lift is real
    k = torch.arange(-half, half + 1, device=device)
    return k % size, k % coarse


def _check_factor(shape: Sequence[int], factor: int, name: str = "factor") -> tuple[int, int]:
    factor = check_positive_int(factor, name)
    M, N = int(shape[-2]), int(shape[-1])
    if M % factor or N % factor:
        raise ValueError(f"{name}={factor} must divide the field size {(M, N)}; crop or pad the field "
                         f"to a multiple of {factor}.")
    if M // factor < 2 or N // factor < 2:
        raise ValueError(f"{name}={factor} leaves a coarse grid smaller than 2x2 for a field of size {(M, N)}; "
                         f"use a smaller factor.")
    return M // factor, N // factor


def coarse_grain(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Fourier low-pass then subsample by ``factor``.

    Keeps the Fourier coefficients of frequencies ``|k_i| < m_i / 2`` (``m`` the
    coarse size, so the coarse Nyquist frequency is dropped and the result is
    real), and returns them on the coarse grid, scaled so that a constant field
    keeps its value. It is the local average of ``x`` over ``factor x factor``
    blocks with an ideal (sinc) kernel.

    Parameters
    ----------
    x : torch.Tensor
        Real fields, periodic.
    factor : int
        Subsampling factor; must divide both sides (e.g. ``2**J_c``).

    Returns
    -------
    torch.Tensor
        Coarse fields.

    Shapes
    ------
    x: (..., M, N) -> (..., M / factor, N / factor)
    """
    check_real_tensor(x, "x", min_ndim=2)
    m, n = _check_factor(x.shape, factor)
    if x.numel() == 0:
        return x.new_zeros(*x.shape[:-2], m, n)
    M, N = x.shape[-2:]
    rb, rc = _band(M, m, x.device)
    cb, cc = _band(N, n, x.device)
    xf = torch.fft.fft2(x)
    small = xf.new_zeros(*x.shape[:-2], m, n)
    small[..., rc[:, None], cc[None, :]] = xf[..., rb[:, None], cb[None, :]]
    return torch.fft.ifft2(small).real * (m * n / (M * N))


def lift(c: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Band-limited interpolation of a coarse field onto the fine grid (right inverse of :func:`coarse_grain`).

    ``coarse_grain(lift(c, shape), factor) == c`` for every ``c`` without
    energy at the coarse Nyquist frequency (in particular for any output of
    :func:`coarse_grain`).

    Parameters
    ----------
    c : torch.Tensor
        Real coarse fields.
    shape : (int, int)
        Fine grid size, a multiple of the coarse size.

    Returns
    -------
    torch.Tensor
        Fine fields with no energy at frequencies outside the coarse band.

    Shapes
    ------
    c: (..., m, n) -> (..., M, N)
    """
    check_real_tensor(c, "c", min_ndim=2)
    if not (isinstance(shape, Sequence) and len(shape) == 2 and all(
            isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0 for s in shape)):
        raise ValueError(f"shape must be the fine grid size (M, N), two positive ints, got {shape!r}.")
    M, N = int(shape[0]), int(shape[1])
    m, n = c.shape[-2:]
    if not m or not n or M % m or N % n or M // m != N // n:
        raise ValueError(f"c: a coarse field of size {(m, n)} does not divide the fine size shape={(M, N)} by one "
                         f"common factor; pass coarse_grain(x, factor) of a field of size {(M, N)}.")
    if c.numel() == 0:
        return c.new_zeros(*c.shape[:-2], M, N)
    rb, rc = _band(M, m, c.device)
    cb, cc = _band(N, n, c.device)
    cf = torch.fft.fft2(c)
    big = cf.new_zeros(*c.shape[:-2], M, N)
    big[..., rb[:, None], cb[None, :]] = cf[..., rc[:, None], cc[None, :]] * (M * N / (m * n))
    return torch.fft.ifft2(big).real


def check_conditioning(c: Any, shape: tuple[int, int], n_samples: int) -> torch.Tensor:
    """Check a coarse conditioning field against the fine field size and the number of samples.

    Parameters
    ----------
    c : array-like
        ``coarse_grain(field, 2**J_c)``: one field shared by every sample or one per sample.
    shape : (int, int)
        Fine field size ``(M, N)``.
    n_samples : int
        Number of samples.

    Returns
    -------
    torch.Tensor
        The coarse field(s) as a finite float tensor.

    Shapes
    ------
    c: (m, n) or (n_samples, m, n) -> same
    """
    c = as_float_tensor(c, "conditioning")
    if c.ndim not in (2, 3):
        raise ValueError(f"conditioning must have shape (m, n) or (n_samples, m, n), got {tuple(c.shape)}.")
    if c.ndim == 3 and c.shape[0] not in (1, n_samples):
        raise ValueError(f"conditioning holds {c.shape[0]} coarse fields for n_samples={n_samples}; pass one "
                         f"shared field (m, n) or one per sample.")
    M, N = shape
    m, n = c.shape[-2:]
    factor = M // m if m else 0
    if not m or not n or M % m or N % n or M // m != N // n or factor < 2 or factor & (factor - 1):
        raise ValueError(f"conditioning has size {(m, n)}, which is not the target size {(M, N)} divided by "
                         f"one power of two >= 2; build it with coarse_grain(field, 2**J_c).")
    return c


def condition(x: torch.Tensor, low: torch.Tensor, factor: int) -> torch.Tensor:
    """Replace the coarse band of ``x`` by the lifted coarse field ``low``.

    Parameters
    ----------
    x : torch.Tensor
        Fine fields.
    low : torch.Tensor
        ``lift(c, (M, N))`` of the coarse field(s), broadcastable to ``x``.
    factor : int
        Coarse-graining factor of ``c``.

    Returns
    -------
    torch.Tensor
        ``x - lift(coarse_grain(x, factor)) + low``: fields whose coarse field is ``c``.

    Shapes
    ------
    x: (..., M, N), low: (..., M, N) -> (..., M, N)
    """
    return x - lift(coarse_grain(x, factor), tuple(x.shape[-2:])) + low
