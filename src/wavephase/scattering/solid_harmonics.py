r"""Real solid harmonics in closed form, and the wavelet response of a sum of Gaussians.

The real regular solid harmonics ``R_l^m(u) = |u|^l Y_l^m(u/|u|)`` are the
harmonic homogeneous polynomials of degree ``l``, orthonormal on the unit sphere.
The solid-harmonic wavelets at the width ``s`` are

.. math::

    \psi_{s,l}^m(u) = s^{-3} \psi_l^m(u / s), \qquad
    \psi_l^m(u) = (2\pi)^{-3/2} e^{-|u|^2/2} R_l^m(u).

**Closed form of their response to Gaussian densities.**

For a harmonic homogeneous polynomial ``P`` of degree ``l`` the Fourier transform
(convention ``f^(k) = int f(u) e^{-i k.u} du``) is

.. math::

    \mathcal F[P(u) e^{-|u|^2/(2b^2)}](k) = (-i)^l (2\pi)^{3/2} b^{2l+3} P(k) e^{-b^2|k|^2/2},

(Hobson's theorem; it holds because ``P(\nabla)`` applied to a Gaussian gives back
``P`` times the Gaussian when ``P`` is harmonic). Multiplying by
``g^_sigma(k) = exp(-sigma^2 |k|^2 / 2)`` only widens the Gaussian, so with
``c^2 = b^2 + sigma^2``

.. math::

    g_\sigma \star [P e^{-|\cdot|^2/(2b^2)}] = (b/c)^{2l+3} P(u) e^{-|u|^2/(2c^2)},

and therefore, for the density ``rho(u) = sum_a w_a g_sigma(u - r_a)`` (normalised
Gaussians ``g_s(u) = (2 pi s^2)^{-3/2} exp(-|u|^2 / (2 s^2))``) and ``c^2 = s^2 + sigma^2``,

.. math::

    (\rho \star \psi_{s,l}^m)(u) = (2\pi)^{-3/2} s^l c^{-2l-3}
        \sum_a w_a R_l^m(u - r_a) e^{-|u - r_a|^2 / (2 c^2)}.

:func:`solid_harmonic_response` evaluates it at arbitrary points; the transforms
of :mod:`wavephase.scattering.solid_harmonic3d` and
:mod:`wavephase.scattering.atom_spectrum` are built on it.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from wavephase.validation import check_positive_int, check_real_tensor

__all__ = [
    "monomials",
    "monomial_values",
    "real_solid_harmonic_coefficients",
    "real_solid_harmonics",
    "solid_harmonic_matrix",
    "solid_harmonic_response",
]


def monomials(l: int) -> list[tuple[int, int, int]]:
    """Exponents ``(a, b, c)`` of the monomials ``x^a y^b z^c`` of degree ``l``, x-power first, descending.

    Parameters
    ----------
    l : int
        Degree.

    Returns
    -------
    list of tuple of int
        ``(l + 1)(l + 2) / 2`` exponent triples.
    """
    return [(a, b, l - a - b) for a in range(l, -1, -1) for b in range(l - a, -1, -1)]


def _sphere_moment(a: int, b: int, c: int) -> float:
    """``int_{S^2} x^a y^b z^c dOmega`` (zero unless all exponents are even)."""
    if a % 2 or b % 2 or c % 2:
        return 0.0
    return 2.0 * math.exp(
        math.lgamma((a + 1) / 2) + math.lgamma((b + 1) / 2) + math.lgamma((c + 1) / 2) - math.lgamma((a + b + c + 3) / 2)
    )


@functools.lru_cache(maxsize=None)
def real_solid_harmonic_coefficients(l: int) -> tuple[np.ndarray, np.ndarray]:
    """Monomial coefficients of an orthonormal basis of real solid harmonics of degree ``l``.

    The harmonic homogeneous polynomials of degree ``l`` are the kernel of the
    Laplacian on degree-``l`` polynomials; a basis of that kernel is orthonormalised
    for the ``L^2`` inner product on the unit sphere (computed exactly from the
    moments of monomials on the sphere), so ``sum_m R_l^m(x)^2 = (2l+1)/(4 pi) |x|^{2l}``
    and ``sum_m`` over the basis is rotation invariant. The basis is the one of
    :func:`numpy.linalg.svd` then symmetric orthonormalisation: deterministic, but
    not the textbook ``m`` ordering (only sums over ``m`` are used here).

    Parameters
    ----------
    l : int
        Degree, ``l >= 0``.

    Returns
    -------
    monomials : numpy.ndarray
        ``(n_mono, 3)`` integer exponents ``(a, b, c)`` of ``x^a y^b z^c`` (:func:`monomials`),
        ``n_mono = (l + 1)(l + 2) / 2``.
    coefficients : numpy.ndarray
        ``(2 l + 1, n_mono)`` float64; ``R_l^m(x) = sum_i coefficients[m, i] x^{mono_i}``.
    """
    check_positive_int(l, "l", minimum=0)
    mono = monomials(l)
    n = len(mono)
    if l < 2:
        kernel = np.eye(n)
    else:
        lower = {m: i for i, m in enumerate(monomials(l - 2))}
        lap = np.zeros((len(lower), n))
        for i, (a, b, c) in enumerate(mono):
            for axis, e in enumerate((a, b, c)):
                if e >= 2:
                    target = [a, b, c]
                    target[axis] -= 2
                    lap[lower[tuple(target)], i] += e * (e - 1)
        _, sing, vt = np.linalg.svd(lap)
        rank = int((sing > 1e-10 * sing.max()).sum())
        kernel = vt[rank:].T
    gram_mono = np.array([[_sphere_moment(*(np.add(p, q))) for q in mono] for p in mono])
    gram = kernel.T @ gram_mono @ kernel
    evals, evecs = np.linalg.eigh(gram)
    coefficients = (kernel @ evecs @ np.diag(evals**-0.5) @ evecs.T).T
    return np.array(mono, dtype=np.int64), coefficients


def solid_harmonic_matrix(L: int) -> torch.Tensor:
    """The real solid harmonics of degree ``l <= L`` as a linear map of the monomials.

    Parameters
    ----------
    L : int
        Largest degree.

    Returns
    -------
    torch.Tensor
        ``(n_monomials, (L + 1)^2)`` float64, block diagonal by degree:
        ``real_solid_harmonics(x, L) = monomial_values(x, L) @ solid_harmonic_matrix(L)``.
    """
    check_positive_int(L, "L", minimum=0)
    blocks = [torch.from_numpy(real_solid_harmonic_coefficients(l)[1].T) for l in range(L + 1)]
    return torch.block_diag(*blocks)


def monomial_values(x: torch.Tensor, L: int) -> torch.Tensor:
    """Every monomial ``x^a y^b z^c`` of degree at most ``L`` at points ``x``, in the order of :func:`monomials`.

    The input is not checked (see :func:`real_solid_harmonics`).

    Shapes
    ------
    x: (..., 3) -> (..., (L + 1)(L + 2)(L + 3) / 6)
    """
    exponents = torch.tensor([m for l in range(L + 1) for m in monomials(l)], device=x.device)
    powers = [x[..., None, d] ** torch.arange(L + 1, device=x.device, dtype=x.dtype) for d in range(3)]
    return powers[0][..., exponents[:, 0]] * powers[1][..., exponents[:, 1]] * powers[2][..., exponents[:, 2]]


def real_solid_harmonics(x: torch.Tensor, L: int) -> torch.Tensor:
    """Evaluate all real regular solid harmonics ``R_l^m`` of degree ``l <= L``.

    Parameters
    ----------
    x : torch.Tensor
        Points, last axis ``(x, y, z)``.
    L : int
        Largest degree.

    Returns
    -------
    torch.Tensor
        Degree ``l`` occupies entries ``l^2 .. (l + 1)^2 - 1`` of the last axis.

    Shapes
    ------
    x: (..., 3) -> (..., (L + 1)^2)
    """
    check_real_tensor(x, "x", min_ndim=1)
    if x.shape[-1] != 3:
        raise ValueError(f"x must have shape (..., 3), got {tuple(x.shape)}.")
    check_positive_int(L, "L", minimum=0)
    return monomial_values(x, L) @ solid_harmonic_matrix(L).to(x)


def solid_harmonic_response(positions: torch.Tensor, weights: torch.Tensor, points: torch.Tensor, scale: float,
                            sigma: float, L: int) -> torch.Tensor:
    r"""``(rho * psi_{s,l}^m)(u)`` at arbitrary points, by the closed form (dense reference).

    Parameters
    ----------
    positions : torch.Tensor
        Atom positions.
    weights : torch.Tensor
        Weights ``w_a`` of the Gaussians of width ``sigma``.
    points : torch.Tensor
        Evaluation points (same batch dimensions).
    scale : float
        Wavelet width ``s`` (``psi_s(u) = s^{-3} psi(u / s)``).
    sigma : float
        Width of the atomic Gaussians (0 for point charges).
    L : int
        Largest degree.

    Returns
    -------
    torch.Tensor
        Degrees laid out as in :func:`real_solid_harmonics`.

    Shapes
    ------
    positions: (..., A, 3), weights: (..., A), points: (..., P, 3) -> (..., P, (L + 1)^2)
    """
    c = math.sqrt(scale**2 + sigma**2)
    diff = points[..., :, None, :] - positions[..., None, :, :]  # (..., P, A, 3)
    gauss = torch.exp(-(diff**2).sum(-1) / (2 * c**2)) * weights[..., None, :]
    harm = real_solid_harmonics(diff, L)  # (..., P, A, (L+1)^2)
    amp = torch.cat([torch.full((2 * l + 1,), (2 * math.pi) ** -1.5 * scale**l * c ** (-2 * l - 3),
                                dtype=torch.float64) for l in range(L + 1)]).to(points)
    return (harm * gauss[..., None]).sum(-2) * amp
