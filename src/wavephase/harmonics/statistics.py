"""Wavelet phase harmonic covariance statistics of stationary 2D fields.

With ``z_{j,l} = x * psi_{j,l}`` (Morlet wavelets, periodic boundaries) and
``P_{j,l} = <|z_{j,l}|^2>`` the reference wavelet power, the families are
(``<.>`` is the spatial mean, ``mu`` and ``sigma^2`` the mean and variance of the
reference fields (each field's own without a reference), ``m_{j,l} = <|z_{j,l}|>``, ``H`` the half-lattice of
shifts ``tau = 2^j n`` with ``|n| <= dn``; counts per field for ``J`` scales,
``L`` angles, ``n_tau = |H|`` and ``n_pairs`` scale pairs ``j1 < j2 <= j1 + delta_j``):

============  =========================================================================  ===============
family        moment                                                                     count
============  =========================================================================  ===============
``mean``      ``<x> / sigma``, ``<(x - mu)^2> / sigma^2``                                2
``marginal``  ``<(x - mu)^3> / sigma^3``, ``<(x - mu)^4>^(1/2) / sigma^2``,              3
              ``<|x - mu|> / sigma`` (optional)
``Q``         block means of the sorted ``(x - mu) / sigma`` (optional)                  ``n_q``
``M4``        ``<|z_{j,l}|^4>^(1/2) / P_{j,l}`` (with ``marginal``)                      ``J L``
``low``       ``|x^(k)|^2 / P_k``, ``0 < |k|_inf <= M / 2^J`` (optional)                 ``n_low``
``spectrum``  ``((Q_b + f) / (Q^ref_b + f))^(1/2)``, ring power above ``xi_{J-1}``       ``n_spec``
``D``         ``<|d_n x|> / D_n^(1/2)``, ``<|d_n x|^2> / D_n``,                          ``3 n_d``
              ``<|d_n x|^4>^(1/2) / D_n`` (optional)
``S11``       ``<z_{j,l}(u) conj z_{j,l}(u + tau)> / P_{j,l}`` (k = 1, 1)                ``J L n_tau``
``S00``       ``Cov(|z_{j,l1}|(u), |z_{j,l2}|(u + tau)) / sqrt(P P)`` (k = 0, 0)         ``J L^2 n_tau``
``S01``       ``<|z_{j,l}| z_{j,l}> / P_{j,l}`` (k = 0, 1)                               ``J L``
``M``         ``m_{j,l} / sqrt(P_{j,l})`` (sparsity)                                     ``J L``
``C01``       ``<|z_{j1,l1}| conj z_{j2,l2}> / sqrt(P P)`` (k = 0, 1; all angles)        ``n_pairs L^2``
``C00``       ``Cov(|z_{j1,l1}|, |z_{j2,l2}|) / sqrt(P P)`` (k = 0, 0; all angles)       ``n_pairs L^2``
``Cphase``    ``<[z_{j1,l}]^{2^{j2-j1}} conj z_{j2,l}> / sqrt(P P)`` (phase accel.)      ``n_pairs L``
============  =========================================================================  ===============

``marginal`` (skewness and flatness of the pixel values, as in Portilla and
Simoncelli's texture statistics) constrains the one-point distribution, which
the wavelet moments leave loosely determined: it makes syntheses of binary
fields (Ising spins) nearly binary and reproduces the intermittency
(flatness) of vorticity fields; ``M4``, the flatness of the wavelet coefficients
at each scale, keeps those heavy tails from being produced by spikes at the
finest scale only. ``Q`` (:func:`~wavephase.harmonics.families.quantile_moments`,
``quantiles=n_q`` blocks) pins the whole pixel histogram, which a few moments
do not: with it, syntheses of spins are +-1 rather than grey, and the tails of
vorticity follow the target's. ``low`` (the periodogram at the few integer
wavenumbers below the coarsest wavelet's band, one of each ``+-k`` pair, like
the low-pass moments of other phase harmonic models) constrains the largest
scales, which no wavelet of ``J`` scales sees; ``P_k`` is the reference
periodogram there. ``spectrum`` constrains the shape of the power spectrum
inside the wavelets' bands, which one wavelet per scale and orientation
leaves free (syntheses then carry excess power near the Nyquist frequency,
which breaks nearest-neighbour structure such as the Ising energy, and
misplace energy between neighbouring octaves): ``Q_b`` is the mean periodogram
over the wavenumbers of bin ``b``, one of the rings of logarithmic width
``1 / rings_per_octave`` octave from the coarsest wavelet's peak ``xi_{J-1}``
to the corner frequency ``pi sqrt 2``, times ``L`` angular sectors of ``[0, pi)``
(``n_spec <= L rings_per_octave log2(pi sqrt 2 / xi_{J-1})``, empty bins dropped).
The ratio weighs relative errors alike across the orders of magnitude a
spectrum spans, its square root keeps the loss quadratic in the field, and the
floor ``f = spectrum_floor * sigma^2`` (a white noise of that variance) keeps it
finite where the reference has no power at all (a dealiased simulation;
:func:`~wavephase.synthesis.synthesize` preconditions the optimisation so that
this stays well conditioned). ``D`` holds moments of the pixel increments ``d_n x(u) = x(u + n) - x(u)`` for the
``n_d = 6`` shifts ``n`` of the half-lattice ``|n| <= 2``, and ``(r, 0)``, ``(0, r)`` for each further lag ``r``
of ``increment_lags`` (``D_n`` the reference ``<|d_n x|^2>``): the nearest-neighbour structure that sets the
energy of spin fields and the intermittency of the smallest increments, which
neither the power spectrum nor band-pass wavelets pin down (for +-1 fields,
``|d_n x|`` is 0 or 2 and its moments count the broken bonds). Every other
family is a correlation coefficient (Cauchy-Schwarz bounds it by 1 in modulus
when ``P`` is the field's own power) and so is O(1). Moments whose finer scale is
``j >= 1`` are averaged on the grid subsampled by ``2^j``: products of
coefficients at scale ``j`` keep less than 0.3 % of their energy at the aliased
frequencies ``2 pi / 2^j``, so the coarse grid estimates the same spatial mean
(the tests compare both); ``subsample=False`` uses every pixel.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from wavephase.filters import morlet_bank
from wavephase.harmonics.families import (
    WaveletGrids,
    cross_scale_moments,
    fourier_moments,
    increment_moments,
    pixel_moments,
    quantile_moments,
    shift_lattice,
    single_scale_moments,
    spectrum_bins,
)
from wavephase.harmonics.moments import MomentStatistics, cross_scale_power, root
from wavephase.validation import check_positive_int

__all__ = ["PhaseHarmonicStatistics"]

FAMILIES = ("mean", "marginal", "Q", "M4", "low", "spectrum", "D", "S11", "S00", "S01", "M", "C01", "C00",
            "Cphase")


def _weight(value: float, name: str) -> float:
    """A family's weight in the loss: a positive finite number."""
    if isinstance(value, bool) or not (isinstance(value, (int, float)) and 0 < value < float("inf")):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}.")
    return float(value)


class PhaseHarmonicStatistics(MomentStatistics):
    """Phase harmonic covariance moments of 2D fields (see the module docstring for the families).

    Parameters
    ----------
    shape, J, L
        Field size ``(M, N)``, scales and orientations, as for
        :class:`~wavephase.harmonics.moments.MomentStatistics`.
    dn : int
        Radius of the spatial shifts (in units of ``2^j`` at scale ``j``) for ``S11`` and ``S00``.
    delta_j : int, optional
        Largest scale difference ``j2 - j1`` of the cross-scale families; ``J - 1`` (all) by default.
    subsample : bool
        Average moments at scale ``j >= 1`` on the grid subsampled by ``2^j`` (faster, same expectation).
    marginal : bool
        Include the ``marginal`` (pixel skewness, flatness and mean absolute
        deviation) and ``M4`` (wavelet coefficient flatness) families.
    low : bool
        Include the ``low`` family (power at wavenumbers below the coarsest wavelet).
    increments : bool
        Include the ``D`` family (moments of pixel increments at shifts ``|n| <= 2``).
    increment_lags : sequence of int
        Further lags ``r > 2`` of the ``D`` family, along each axis (e.g. ``(4, 8)``: the lags at which
        issue 22 scores the flatness of increments). Needs ``increments``.
    increment_weight : float
        Weight of the ``D`` family in the loss, relative to the other families' 1.
    quantiles : int
        Blocks of the ``Q`` family (the pixel histogram's quantile function); 0 leaves it out.
    quantile_weight : float
        Weight of the ``Q`` family in the loss, relative to the other families' 1.
    rings_per_octave : int
        Radial resolution of the ``spectrum`` family; 0 leaves the family out.
    spectrum_floor : float
        Floor ``f`` of the ``spectrum`` family, relative to the reference variance.
    dtype : torch.dtype
        Filter dtype, as for :class:`~wavephase.harmonics.moments.MomentStatistics`.
    memory_limit : int, float or str, optional
        Memory guard, as for :class:`~wavephase.harmonics.moments.MomentStatistics`.

    Attributes
    ----------
    reference_power : torch.Tensor or None
        ``P_{j,l}`` of the reference fields set by :meth:`set_reference`, shape ``(J, L)``
        (in the units of :class:`~wavephase.harmonics.moments.MomentStatistics`).
    reference_moments : dict of torch.Tensor
        The references' moments: their raw moments averaged over the batch,
        then normalised, shape ``(n_f,)`` per family.

    Shapes
    ------
    x: (..., M, N) real -> dict family -> (..., n_f) complex
    """

    families = FAMILIES
    reference_families = ("low", "spectrum", "D")

    def __init__(self, shape: tuple[int, int], J: int, L: int = 8, *, dn: int = 2, delta_j: int | None = None,
                 subsample: bool = True, marginal: bool = True, low: bool = True, increments: bool = True,
                 increment_lags: Sequence[int] = (), increment_weight: float = 1.0, quantiles: int = 0,
                 quantile_weight: float = 1.0, rings_per_octave: int = 3, spectrum_floor: float = 1e-12,
                 dtype: torch.dtype = torch.float32,
                 memory_limit: int | float | str | None = None) -> None:
        super().__init__(shape, J, L, dtype=dtype, memory_limit=memory_limit)
        self.dn = check_positive_int(dn, "dn", minimum=0)
        self.delta_j = self.J - 1 if delta_j is None else check_positive_int(delta_j, "delta_j", minimum=0)
        self.subsample = bool(subsample)
        self.marginal = bool(marginal)
        self.low = bool(low)
        self.quantiles = check_positive_int(quantiles, "quantiles", minimum=0)
        self.quantile_weight = _weight(quantile_weight, "quantile_weight")
        self.increment_weight = _weight(increment_weight, "increment_weight")
        if self.quantiles > self.shape[0] * self.shape[1]:
            raise ValueError(f"quantiles={quantiles} exceeds the {self.shape[0] * self.shape[1]} pixels of a field; "
                             f"use at most that many blocks (64 is plenty).")
        # wavenumbers (a, b) with 0 < max(|a|, |b|) <= size / 2^J, one of each +-k pair
        km, kn = max(1, self.shape[0] // 2**self.J), max(1, self.shape[1] // 2**self.J)
        self.low_frequencies = [(a, b) for a in range(0, km + 1) for b in range(-kn, kn + 1)
                                if (a > 0 or b > 0)] if self.low else []
        self.rings_per_octave = check_positive_int(rings_per_octave, "rings_per_octave", minimum=0)
        if isinstance(spectrum_floor, bool) or not (isinstance(spectrum_floor, (int, float)) and 0 < spectrum_floor < 1):
            raise ValueError(f"spectrum_floor must be a float in (0, 1), got {spectrum_floor!r}; 1e-12 is the "
                             f"default.")
        self.spectrum_floor = float(spectrum_floor)
        xi0 = morlet_bank(self.shape, self.J, self.L, dtype=dtype).meta["xi0"]
        index, bins, counts = spectrum_bins(self.shape, self.L, self.rings_per_octave, xi0 / 2 ** (self.J - 1))
        self.register_buffer("spectrum_index", index, persistent=False)
        self.register_buffer("spectrum_bin", bins, persistent=False)
        self.register_buffer("spectrum_count", counts, persistent=False)
        lags = [check_positive_int(r, "increment_lags", minimum=3) for r in increment_lags]
        if lags and not increments:
            raise ValueError(f"increment_lags={tuple(increment_lags)} needs increments=True (the D family).")
        if any(r >= min(self.shape) // 2 for r in lags) or len(set(lags)) != len(lags):
            raise ValueError(f"increment_lags must be distinct lags below half the field's side "
                             f"{min(self.shape)}, got {tuple(increment_lags)}.")
        self.increment_lags = tuple(lags)
        self.increment_shifts = (shift_lattice(2)[1:] + [s for r in lags for s in ((0, r), (r, 0))]
                                 if increments else [])
        self.shifts = shift_lattice(self.dn)
        self.pairs = [(j1, j2) for j1 in range(self.J) for j2 in range(j1 + 1, min(self.J, j1 + self.delta_j + 1))]

    def _stride(self, j: int) -> int:
        # Products at scale j >= 1 have < 0.3 % of their energy beyond pi / 2^j.
        return 2**j if self.subsample else 1

    def family_sizes(self) -> dict[str, int]:
        """Number of (complex) moments per family, for one field.

        Returns
        -------
        dict
            Family name -> count.
        """
        J, L, t, p = self.J, self.L, len(self.shifts), len(self.pairs)
        return {"mean": 2, "marginal": 3 if self.marginal else 0, "Q": self.quantiles,
                "M4": self.J * self.L if self.marginal else 0,
                "low": len(self.low_frequencies), "spectrum": len(self.spectrum_count),
                "D": 3 * len(self.increment_shifts), "S11": J * L * t, "S00": J * L * L * t, "S01": J * L, "M": J * L,
                "C01": p * L * L, "C00": p * L * L, "Cphase": p * L}

    def raw_moments(self, x: torch.Tensor, centre: torch.Tensor | None = None
                    ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """Unnormalised moments, the wavelet power and the variance of each field.

        Parameters
        ----------
        x : torch.Tensor
            Real fields.
        centre : torch.Tensor, optional
            Scalar about which the pixel moments (``mean`` family's second entry,
            ``marginal``) are taken; each field's own mean by default.

        Returns
        -------
        moments : dict
            Family -> ``(B, n_f)`` complex, before division by the power.
        power : torch.Tensor
            ``<|z_{j,l}|^2>``, shape ``(B, J, L)``.
        var : torch.Tensor
            Spatial mean of ``(x - centre)^2`` (the variance by default), shape ``(B,)``.

        Shapes
        ------
        x: (B, M, N) -> dict of (B, n_f), (B, J, L), (B,)
        """
        B = x.shape[0]
        x_hat = torch.fft.fft2(x)
        grids = WaveletGrids(x_hat, self.psi.to(x.dtype))
        mean, var, marginal = pixel_moments(x, centre, self.marginal)
        low, spectrum = fourier_moments(x, x_hat, self.low_frequencies, self.spectrum_index, self.spectrum_bin,
                                        self.spectrum_count)
        single = single_scale_moments(grids, self._stride, self.shifts, self.marginal)
        c01, c00, cph = cross_scale_moments(grids, self.pairs, self._stride)
        dt = grids.z[0].dtype
        moments = {
            "mean": torch.stack([mean, var], -1).to(dt),
            "marginal": marginal.to(dt),
            "Q": quantile_moments(x, centre, self.quantiles).to(dt),
            "M4": single["M4"].reshape(B, -1).to(dt) if self.marginal else x.new_zeros(B, 0).to(dt),
            "low": low.to(dt),
            "spectrum": spectrum.to(dt),
            "D": increment_moments(x, self.increment_shifts).to(dt),
            "S11": single["S11"].reshape(B, -1),
            "S00": single["S00"].reshape(B, -1).to(dt),
            "S01": single["S01"].reshape(B, -1),
            "M": single["M"].reshape(B, -1).to(dt),
            "C01": torch.stack(c01, 1).reshape(B, -1) if c01 else x.new_zeros(B, 0, dtype=dt),
            "C00": torch.stack(c00, 1).reshape(B, -1).to(dt) if c00 else x.new_zeros(B, 0, dtype=dt),
            "Cphase": torch.stack(cph, 1).reshape(B, -1) if cph else x.new_zeros(B, 0, dtype=dt),
        }
        return moments, single["power"], var

    def _raw(self, x: torch.Tensor, centre: torch.Tensor | None) -> tuple[dict[str, torch.Tensor], torch.Tensor,
                                                                             torch.Tensor]:
        return self.raw_moments(x, centre)

    def _normalise_families(self, moments: dict[str, torch.Tensor], power: torch.Tensor, root_power: torch.Tensor,
                            sigma: torch.Tensor, own: bool) -> dict[str, torch.Tensor]:
        B, J, L, T = power.shape[0], self.J, self.L, len(self.shifts)
        out = {}
        if self.marginal:
            m = moments["marginal"]
            # sqrt of the fourth moment: flatness ~ 10 would otherwise outweigh every other family
            out["marginal"] = torch.stack([m[:, 0] / sigma**3, root(m[:, 1].real).to(m.dtype) / sigma**2,
                                           m[:, 2] / sigma], -1)
            # sqrt <|z|^4> / P: flatness of the coefficients at each scale, so that heavy
            # pixel tails cannot come from spikes at the finest scale alone
            out["M4"] = (root(moments["M4"].real).to(power.dtype).reshape(B, J, L) / power
                         ).reshape(B, -1).to(moments["M4"].dtype)
        else:
            out["marginal"], out["M4"] = moments["marginal"], moments["M4"]
        # sqrt(weight): the loss weighs the family's mean squared mismatch by quantile_weight
        out["Q"] = moments["Q"] / sigma[:, None] * self.quantile_weight ** 0.5
        # reference periodogram and increment moments (each field's own, detached, without a reference)
        ref = ({k: moments[k].real.detach() for k in self.reference_families} if own
               else self._references(power.dtype))
        # relative to the reference power at each wavenumber, as S11 is to P_{j,l}
        out["low"] = moments["low"] / ref["low"].clamp_min(torch.finfo(ref["low"].dtype).tiny)
        floor = self.spectrum_floor * sigma.square()[:, None]
        out["spectrum"] = ((moments["spectrum"].real + floor) / (ref["spectrum"] + floor)).sqrt().to(
            moments["spectrum"].dtype)
        if self.increment_shifts:
            # (|d|, d^2, sqrt d^4) over the reference <d^2> to the matching power
            d = moments["D"].real.reshape(B, -1, 3)
            d2 = ref["D"].reshape(-1, len(self.increment_shifts), 3)[..., 1].clamp_min(torch.finfo(d.dtype).tiny)
            out["D"] = torch.stack([d[..., 0] / d2.sqrt(), d[..., 1] / d2, root(d[..., 2]) / d2],
                                   -1).reshape(B, -1).to(moments["D"].dtype)
            if self.increment_weight != 1:  # sqrt(weight), as for Q
                out["D"] = out["D"] * self.increment_weight ** 0.5
        else:
            out["D"] = moments["D"]
        out["S11"] = (moments["S11"].reshape(B, J, L, T) / power[..., None]).reshape(B, -1)
        pp = root_power[:, :, :, None] * root_power[:, :, None, :]  # (B, J, L, L)
        out["S00"] = (moments["S00"].reshape(B, J, L, L, T) / pp[..., None]).reshape(B, -1)
        out["S01"] = (moments["S01"].reshape(B, J, L) / power).reshape(B, -1)
        out["M"] = (moments["M"].reshape(B, J, L) / root_power).reshape(B, -1)
        n = len(self.pairs)
        if n:
            cross = cross_scale_power(root_power, [p[0] for p in self.pairs], [p[1] for p in self.pairs])
            same = torch.diagonal(cross, dim1=-2, dim2=-1)  # (B, p, L): sqrt(P_{j1,l} P_{j2,l})
            out["C01"] = (moments["C01"].reshape(B, n, L, L) / cross).reshape(B, -1)
            out["C00"] = (moments["C00"].reshape(B, n, L, L) / cross).reshape(B, -1)
            out["Cphase"] = (moments["Cphase"].reshape(B, n, L) / same).reshape(B, -1)
        else:
            out.update({f: moments[f] for f in ("C01", "C00", "Cphase")})
        return out

    def extra_repr(self) -> str:
        """Configuration summary."""
        return (f"shape={self.shape}, J={self.J}, L={self.L}, dn={self.dn}, delta_j={self.delta_j}, "
                f"marginal={self.marginal}, quantiles={self.quantiles}, quantile_weight={self.quantile_weight}, "
                f"low={self.low}, increments={bool(self.increment_shifts)}, "
                + (f"increment_lags={self.increment_lags}, " if self.increment_lags else "")
                + (f"increment_weight={self.increment_weight}, " if self.increment_weight != 1 else "")
                + f"rings_per_octave={self.rings_per_octave}, spectrum_floor={self.spectrum_floor}, "
                f"n_moments={sum(self.family_sizes().values())}")
