"""Phase harmonics and the ReLU phase window.

For a complex coefficient ``z = |z| e^{i phi}`` the phase harmonic of integer
order ``k`` is ``[z]^k = |z| e^{i k phi}``: the modulus is kept and the phase is
multiplied by ``k``. ``k = 0`` gives the modulus, ``k = 1`` the identity. A
rectifier applied to ``Re(z e^{-i alpha})`` is a window on the phase; its Fourier
series in ``alpha`` has the phase harmonics as coefficients (Mallat, Zhang and
Rochette 2020), which :func:`harmonics_from_relu` computes and the tests check.
"""

from __future__ import annotations

import math

import torch

from wavephase.validation import check_real_tensor

__all__ = ["phase_harmonic", "relu_phase_window", "relu_fourier_coefficient", "harmonics_from_relu"]


def _unit_phase(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Modulus and unit phase ``z / |z|`` with finite gradients at ``z = 0``."""
    r = torch.abs(z)  # PyTorch's complex abs has the zero subgradient at 0
    # Dividing by 1 where z = 0 keeps u = 0 there and its derivative finite.
    safe = torch.where(r > 0, r, torch.ones_like(r))
    return r, z / safe


def _int_power(u: torch.Tensor, k: int) -> torch.Tensor:
    """``u**k`` for a non-negative int by binary exponentiation (differentiable at 0)."""
    result: torch.Tensor | None = None
    base = u
    while k:
        if k & 1:
            result = base if result is None else result * base
        k >>= 1
        if k:
            base = base * base
    return torch.ones_like(u) if result is None else result


def phase_harmonic(z: torch.Tensor, k: int) -> torch.Tensor:
    """Phase harmonic ``[z]^k = |z| exp(i k arg z)`` of integer order ``k``.

    Parameters
    ----------
    z : torch.Tensor
        Complex coefficients of any shape (real input is treated as complex).
    k : int
        Harmonic order; ``0`` returns ``|z|`` (real), negative orders conjugate.

    Returns
    -------
    torch.Tensor
        ``|z| e^{i k arg z}``, complex for ``k != 0``; zero where ``z = 0``, with
        a finite gradient there.

    Shapes
    ------
    z: (...) complex -> (...)
    """
    if isinstance(k, bool) or not isinstance(k, int):
        raise TypeError(f"k must be an int harmonic order, got {type(k).__name__} ({k!r}).")
    if not isinstance(z, torch.Tensor):
        raise TypeError(f"z must be a torch.Tensor, got {type(z).__name__}.")
    if not z.is_complex():
        if not z.is_floating_point():
            raise TypeError(f"z must be a complex or floating tensor, got {z.dtype}.")
        z = torch.complex(z, torch.zeros_like(z))
    if k == 1:
        return z
    r, u = _unit_phase(z)
    if k == 0:
        return r
    if k < 0:
        u = u.conj()
    return r * _int_power(u, abs(k))


def relu_phase_window(z: torch.Tensor, alpha: torch.Tensor | float) -> torch.Tensor:
    """ReLU phase window ``max(Re(z e^{-i alpha}), 0) = |z| max(cos(arg z - alpha), 0)``.

    This is a rectified real wavelet coefficient with phase ``alpha``: the
    rectifier keeps the phases within ``pi/2`` of ``alpha``.

    Parameters
    ----------
    z : torch.Tensor
        Complex coefficients.
    alpha : torch.Tensor or float
        Window phases, broadcast against ``z``.

    Returns
    -------
    torch.Tensor
        Real, non-negative.

    Shapes
    ------
    z: (...) complex, alpha: broadcastable -> broadcast shape
    """
    if not isinstance(z, torch.Tensor) or not z.is_complex():
        raise TypeError("z must be a complex torch.Tensor (e.g. wavelet coefficients).")
    if isinstance(alpha, torch.Tensor):
        alpha = check_real_tensor(alpha, "alpha")
    elif isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
        raise TypeError(f"alpha must be a float or a real tensor of phases, got {type(alpha).__name__} ({alpha!r}).")
    elif not math.isfinite(alpha):
        raise ValueError(f"alpha must be a finite phase, got {alpha}.")
    alpha = torch.as_tensor(alpha, dtype=z.real.dtype, device=z.device)
    try:
        torch.broadcast_shapes(z.shape, alpha.shape)
    except RuntimeError:
        raise ValueError(f"alpha of shape {tuple(alpha.shape)} does not broadcast against z of shape "
                         f"{tuple(z.shape)}; add singleton dimensions, e.g. z[..., None].") from None
    return torch.relu(z.real * torch.cos(alpha) + z.imag * torch.sin(alpha))


def relu_fourier_coefficient(k: int) -> float:
    """Coefficient ``c_k`` of ``max(cos t, 0) = sum_k c_k e^{i k t}``.

    ``c_0 = 1/pi``, ``c_{+-1} = 1/4``, ``c_k = (-1)^{k/2+1} / (pi (k^2 - 1))`` for
    even ``k`` and ``0`` for odd ``|k| >= 3``.

    Parameters
    ----------
    k : int
        Order.

    Returns
    -------
    float
        ``c_k``.
    """
    k = abs(int(k))
    if k == 0:
        return 1.0 / math.pi
    if k == 1:
        return 0.25
    if k % 2:
        return 0.0
    return (-1.0) ** (k // 2 + 1) / (math.pi * (k * k - 1))


def harmonics_from_relu(z: torch.Tensor, k: int, n_alpha: int = 64) -> torch.Tensor:
    """Phase harmonic ``[z]^k`` recovered from ReLU windows by a Fourier transform in ``alpha``.

    ``(1 / n) sum_alpha relu(Re(z e^{-i alpha})) e^{i k alpha} = c_k [z]^k``: this is
    how a rectifier network creates phase harmonics. Defined for ``k`` where
    ``c_k != 0`` (``0``, ``+-1`` and even orders).

    Parameters
    ----------
    z : torch.Tensor
        Complex coefficients.
    k : int
        Harmonic order with a non-zero ReLU coefficient.
    n_alpha : int
        Number of window phases (must exceed ``|k| + 1`` by a margin: the ReLU
        series has all even orders, which alias onto ``k`` modulo ``n_alpha``).

    Returns
    -------
    torch.Tensor
        Approximation of ``[z]^k``, exact up to the aliasing of orders ``k + m n_alpha``.

    Shapes
    ------
    z: (...) complex -> (...) complex
    """
    c = relu_fourier_coefficient(k)
    if c == 0.0:
        raise ValueError(f"k={k}: the ReLU window has no odd harmonics beyond 1; use k in 0, +-1 or an even order.")
    alpha = torch.arange(n_alpha, dtype=z.real.dtype, device=z.device) * (2 * math.pi / n_alpha)
    windows = relu_phase_window(z[..., None], alpha)
    kernel = torch.exp(1j * k * alpha.to(torch.float64)).to(z.dtype if z.is_complex() else torch.complex64)
    return (windows.to(kernel.dtype) * kernel).mean(-1) / c
