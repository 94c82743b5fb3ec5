"""Filter banks: all Morlet wavelets of J scales and L angles, plus the low-pass.

Banks are built once per ``(shape, J, L, sigma0, xi0, slant, dtype, device)`` and
cached, so modules that share a configuration share the tensors.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import torch

from wavephase.filters.morlet import gaussian_fourier, kymatio_angles, morlet_fourier
from wavephase.validation import check_image_shape, check_positive_int

__all__ = ["FilterBank", "morlet_bank", "littlewood_paley", "custom_bank"]


@dataclass(frozen=True)
class FilterBank:
    """Fourier-domain wavelets and low-pass filter on a fixed grid.

    Attributes
    ----------
    psi : torch.Tensor
        Wavelets, real Fourier transforms, shape ``(J, L, M, N)``; index ``[j, l]``
        is scale ``2**j``, orientation ``theta[l]``.
    phi : torch.Tensor
        Low-pass filter, real Fourier transform, shape ``(M, N)``.
    sigma : torch.Tensor
        Envelope widths per scale, shape ``(J,)``.
    xi : torch.Tensor
        Centre frequencies per scale, shape ``(J,)``.
    theta : torch.Tensor
        Orientations per angle index, shape ``(L,)``.
    slant : float
        Envelope aspect ratio.
    sigma_phi : float
        Width of the low-pass filter.
    """

    psi: torch.Tensor
    phi: torch.Tensor
    sigma: torch.Tensor
    xi: torch.Tensor
    theta: torch.Tensor
    slant: float
    sigma_phi: float
    meta: dict = field(default_factory=dict)

    @property
    def J(self) -> int:
        """Number of scales."""
        return self.psi.shape[0]

    @property
    def L(self) -> int:
        """Number of orientations."""
        return self.psi.shape[1]

    @property
    def shape(self) -> tuple[int, int]:
        """Grid size ``(M, N)``."""
        return tuple(self.psi.shape[-2:])  # type: ignore[return-value]

    def to(self, dtype: torch.dtype | None = None, device: torch.device | str | None = None) -> "FilterBank":
        """Return a copy of the bank with filters cast/moved.

        Parameters
        ----------
        dtype : torch.dtype, optional
            Target floating dtype.
        device : torch.device or str, optional
            Target device.

        Returns
        -------
        FilterBank
            New bank sharing parameters.
        """
        return FilterBank(
            psi=self.psi.to(dtype=dtype, device=device),
            phi=self.phi.to(dtype=dtype, device=device),
            sigma=self.sigma, xi=self.xi, theta=self.theta, slant=self.slant,
            sigma_phi=self.sigma_phi, meta=self.meta,
        )

    def littlewood_paley(self) -> torch.Tensor:
        """Littlewood-Paley sum of this bank, see :func:`littlewood_paley`."""
        return littlewood_paley(self.psi, self.phi)


def littlewood_paley(psi: torch.Tensor, phi: torch.Tensor | None = None) -> torch.Tensor:
    """Littlewood-Paley sum ``A(w) = |phi(w)|^2 + 1/2 sum_{j,l} (|psi(w)|^2 + |psi(-w)|^2)``.

    Angles cover ``[0, pi)`` only; for real signals the wavelet at ``theta + pi``
    is the mirror ``psi(-w)``, hence the symmetrisation. The wavelet transform
    ``x -> (x * phi, x * psi_{j,l})`` satisfies ``min A ||x||^2 <= ||Wx||^2 <= max A ||x||^2``
    (Parseval) when ``W`` keeps both ``theta`` and ``theta + pi``.

    Parameters
    ----------
    psi : torch.Tensor
        Fourier-domain wavelets ``(..., M, N)`` (any leading filter dims).
    phi : torch.Tensor, optional
        Fourier-domain low-pass ``(M, N)``.

    Returns
    -------
    torch.Tensor
        ``A(w)``.

    Shapes
    ------
    psi: (..., M, N), phi: (M, N) -> (M, N)
    """
    power = psi.abs().square().reshape(-1, *psi.shape[-2:]).sum(0)
    mirrored = torch.roll(torch.flip(power, dims=(-2, -1)), shifts=(1, 1), dims=(-2, -1))
    total = 0.5 * (power + mirrored)
    if phi is not None:
        total = total + phi.abs().square()
    return total


@functools.lru_cache(maxsize=32)
def _cached_bank(shape: tuple[int, int], J: int, L: int, sigma0: float, xi0: float, slant: float,
                 dtype: torch.dtype, device: torch.device) -> FilterBank:
    sigma = sigma0 * 2.0 ** torch.arange(J, dtype=torch.float64)
    xi = xi0 * 2.0 ** -torch.arange(J, dtype=torch.float64)
    theta = kymatio_angles(L)
    # One call per scale: each scale prunes the 2*pi aliases it does not reach. Each is
    # cast into the result at once, so that only one scale is held in float64.
    psi = torch.empty(J, L, *shape, dtype=dtype, device=device)
    for j in range(J):
        psi[j] = morlet_fourier(shape, sigma[j], theta, xi[j], slant, device=device)
    # ScatNet/Kymatio use sigma0 * 2**(J-1) for the low-pass so that phi covers
    # the band left uncovered by the coarsest wavelet.
    sigma_phi = sigma0 * 2.0 ** (J - 1)
    phi = gaussian_fourier(shape, sigma_phi, device=device)
    return FilterBank(psi=psi, phi=phi.to(dtype), sigma=sigma, xi=xi, theta=theta,
                      slant=slant, sigma_phi=sigma_phi,
                      meta={"sigma0": sigma0, "xi0": xi0, "kind": "morlet"})


def morlet_bank(
    shape: tuple[int, int],
    J: int,
    L: int = 8,
    *,
    sigma0: float = 0.8,
    xi0: float = 3 * math.pi / 4,
    slant: float | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> FilterBank:
    """Morlet filter bank over ``J`` dyadic scales and ``L`` orientations.

    Defaults are those of ScatNet and Kymatio: ``sigma_j = sigma0 2^j``,
    ``xi_j = xi0 2^-j``, ``slant = 4 / L`` and a Gaussian low-pass of width
    ``sigma0 2^(J-1)``. Filters are computed in float64 in closed form and cast.

    Parameters
    ----------
    shape : (int, int)
        Grid size ``(M, N)``; each side at least ``2**J``.
    J : int
        Number of scales (>= 1).
    L : int
        Number of orientations in ``[0, pi)`` (>= 1).
    sigma0 : float
        Envelope width of the finest wavelet, in pixels.
    xi0 : float
        Centre frequency of the finest wavelet, in radians per pixel.
    slant : float, optional
        Envelope aspect ratio; ``4 / L`` when omitted.
    dtype : torch.dtype
        float32 or float64.
    device : torch.device or str, optional
        Device of the filters.

    Returns
    -------
    FilterBank
        The bank (shared with other callers of the same configuration: do not
        modify its tensors in place).

    Shapes
    ------
    -> psi (J, L, M, N) real, phi (M, N) real
    """
    shape = check_image_shape(shape, J)
    L = check_positive_int(L, "L")
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype}.")
    for name, value in (("sigma0", sigma0), ("xi0", xi0)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive finite float, got {value}.")
    if not (0 < xi0 <= math.pi):
        raise ValueError(f"xi0 must lie in (0, pi] (radians per pixel), got {xi0}.")
    slant = 4.0 / L if slant is None else float(slant)
    if not (math.isfinite(slant) and slant > 0):
        raise ValueError(f"slant must be a positive finite float, got {slant}.")
    device = torch.device(device) if device is not None else torch.device("cpu")
    return _cached_bank(shape, J, L, float(sigma0), float(xi0), slant, dtype, device)


def custom_bank(psi: torch.Tensor, phi: torch.Tensor) -> FilterBank:
    """Wrap user-supplied Fourier-domain filters as a :class:`FilterBank`.

    Parameters
    ----------
    psi : torch.Tensor
        Real or complex Fourier-domain wavelets ``(J, L, M, N)``; complex filters
        are accepted only through their real part by the scattering transform,
        so pass real Fourier transforms (i.e. Hermitian-free, analytic-style filters).
    phi : torch.Tensor
        Real Fourier-domain low-pass ``(M, N)``.

    Returns
    -------
    FilterBank
        Bank with NaN-free parameters recorded as unknown.

    Shapes
    ------
    psi: (J, L, M, N), phi: (M, N)
    """
    if not isinstance(psi, torch.Tensor) or psi.ndim != 4:
        raise ValueError(f"psi must be a tensor of shape (J, L, M, N), got {getattr(psi, 'shape', type(psi))}.")
    if not isinstance(phi, torch.Tensor) or tuple(phi.shape) != tuple(psi.shape[-2:]):
        raise ValueError(f"phi must have shape {tuple(psi.shape[-2:])} to match psi, got {getattr(phi, 'shape', None)}.")
    if psi.is_complex() or phi.is_complex():
        raise TypeError("psi and phi must be real Fourier transforms (real-valued tensors).")
    nan = torch.full((psi.shape[0],), float("nan"), dtype=torch.float64)
    return FilterBank(psi=psi, phi=phi, sigma=nan, xi=nan, theta=torch.full((psi.shape[1],), float("nan")),
                      slant=float("nan"), sigma_phi=float("nan"), meta={"kind": "custom"})
