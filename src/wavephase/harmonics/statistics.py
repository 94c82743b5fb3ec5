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
finest scale only. ``low`` (the periodogram at the few integer
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
``n_d = 6`` shifts ``n`` of the half-lattice ``|n| <= 2`` (``D_n`` the
reference ``<|d_n x|^2>``): the nearest-neighbour structure that sets the
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

import torch
from torch import nn

from wavephase.filters import morlet_bank
from wavephase.validation import check_image_shape, check_positive_int, check_real_tensor, check_same_device

__all__ = ["PhaseHarmonicStatistics", "moment_loss", "shift_lattice"]

FAMILIES = ("mean", "marginal", "M4", "low", "spectrum", "D", "S11", "S00", "S01", "M", "C01", "C00", "Cphase")


def moment_loss(stats: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> torch.Tensor:
    """Sum over fields and families of the mean squared modulus of the moment mismatch.

    Parameters
    ----------
    stats : dict
        Family -> moments of the fields, ``(..., n_f)`` (complex or real).
    target : dict
        Family -> target moments, broadcastable to ``stats``.

    Returns
    -------
    torch.Tensor
        Scalar; empty families contribute nothing.

    Shapes
    ------
    stats: dict family -> (..., n_f) -> ()
    """
    if not target:
        raise ValueError("no target moments: call set_reference(target) first or pass target_moments.")
    total = next(iter(stats.values())).real.new_zeros(())
    for name, value in stats.items():
        if value.shape[-1]:
            diff = value - target[name]
            total = total + (diff.real.square() + diff.imag.square()).mean(-1).sum()
    return total


def shift_lattice(dn: int) -> list[tuple[int, int]]:
    """Half-lattice of integer shifts ``n`` with ``|n| <= dn``, one of each ``+-n`` pair.

    Parameters
    ----------
    dn : int
        Radius (0 gives only the zero shift).

    Returns
    -------
    list of (int, int)
        ``(0, 0)`` first, then ``n`` with ``n_0 > 0`` or ``n_0 = 0, n_1 > 0``.
    """
    out = [(0, 0)]
    for a in range(0, dn + 1):
        for b in range(-dn, dn + 1):
            if (a > 0 or b > 0) and a * a + b * b <= dn * dn:
                out.append((a, b))
    return out


class PhaseHarmonicStatistics(nn.Module):
    """Phase harmonic covariance moments of 2D fields (see the module docstring for the families).

    Parameters
    ----------
    shape : (int, int)
        Field size ``(M, N)``; each side at least ``2**J``.
    J : int
        Number of wavelet scales.
    L : int
        Number of orientations in ``[0, pi)``.
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
    rings_per_octave : int
        Radial resolution of the ``spectrum`` family; 0 leaves the family out.
    spectrum_floor : float
        Floor ``f`` of the ``spectrum`` family, relative to the reference variance.
    dtype : torch.dtype
        Dtype of the filters; inputs are cast to it.

    Attributes
    ----------
    reference_power : torch.Tensor or None
        ``P_{j,l}`` of the reference field set by :meth:`set_reference`, shape ``(J, L)``.
    reference_moments : dict of torch.Tensor
        The references' moments: their raw moments averaged over the batch,
        then normalised, shape ``(n_f,)`` per family.

    Shapes
    ------
    x: (..., M, N) real -> dict family -> (..., n_f) complex
    """

    def __init__(self, shape: tuple[int, int], J: int, L: int = 8, *, dn: int = 2, delta_j: int | None = None,
                 subsample: bool = True, marginal: bool = True, low: bool = True, increments: bool = True,
                 rings_per_octave: int = 3,
                 spectrum_floor: float = 1e-6, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None) -> None:
        super().__init__()
        self.shape = check_image_shape(shape, J)
        self.J = check_positive_int(J, "J")
        self.L = check_positive_int(L, "L")
        self.dn = check_positive_int(dn, "dn", minimum=0)
        self.delta_j = self.J - 1 if delta_j is None else check_positive_int(delta_j, "delta_j", minimum=0)
        self.subsample = bool(subsample)
        self.marginal = bool(marginal)
        self.low = bool(low)
        # wavenumbers (a, b) with 0 < max(|a|, |b|) <= size / 2^J, one of each +-k pair
        km, kn = max(1, self.shape[0] // 2**self.J), max(1, self.shape[1] // 2**self.J)
        self.low_frequencies = [(a, b) for a in range(0, km + 1) for b in range(-kn, kn + 1)
                                if (a > 0 or b > 0)] if self.low else []
        bank = morlet_bank(self.shape, self.J, self.L, dtype=dtype, device=device)
        self.register_buffer("psi", bank.psi.clone(), persistent=False)
        self.rings_per_octave = check_positive_int(rings_per_octave, "rings_per_octave", minimum=0)
        if not (isinstance(spectrum_floor, (int, float)) and 0 < spectrum_floor < 1):
            raise ValueError(f"spectrum_floor must be a float in (0, 1), got {spectrum_floor!r}; 1e-6 is the "
                             f"default.")
        self.spectrum_floor = float(spectrum_floor)
        index, bins, counts = self._spectrum_bins(bank.meta["xi0"] / 2 ** (self.J - 1), device)
        self.register_buffer("spectrum_index", index, persistent=False)
        self.register_buffer("spectrum_bin", bins, persistent=False)
        self.register_buffer("spectrum_count", counts, persistent=False)
        self.register_buffer("reference_spectrum", None, persistent=False)
        self.increment_shifts = shift_lattice(2)[1:] if increments else []
        self.register_buffer("reference_increments", None, persistent=False)
        self.shifts = shift_lattice(self.dn)
        self.pairs = [(j1, j2) for j1 in range(self.J) for j2 in range(j1 + 1, min(self.J, j1 + self.delta_j + 1))]
        self.register_buffer("reference_power", None, persistent=False)
        self.register_buffer("reference_var", None, persistent=False)
        self.register_buffer("reference_mean", None, persistent=False)
        self.register_buffer("reference_low", None, persistent=False)
        self.reference_moments: dict[str, torch.Tensor] = {}

    # ------------------------------------------------------------------ helpers
    def _spectrum_bins(self, start: float, device: torch.device | str | None
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Flat FFT indices, bin of each and modes per bin of the ``spectrum`` family."""
        M, N = self.shape
        wy = 2 * torch.pi * torch.fft.fftfreq(M, dtype=torch.float64)[:, None]
        wx = 2 * torch.pi * torch.fft.fftfreq(N, dtype=torch.float64)[None, :]
        radius = (wy.square() + wx.square()).sqrt().flatten()
        angle = torch.remainder(torch.atan2(wy, wx), torch.pi).expand(M, N).flatten()
        ring = (self.rings_per_octave * torch.log2(radius.clamp_min(1e-12) / start)).floor().long()
        sector = torch.remainder(torch.round(angle / (torch.pi / self.L)).long(), self.L)
        keep = (radius >= start) & (self.rings_per_octave > 0)
        index = torch.nonzero(keep).flatten()
        bins = (ring * self.L + sector)[index]
        used, bins = torch.unique(bins, return_inverse=True)  # drop empty bins
        counts = torch.bincount(bins, minlength=len(used)).to(torch.float64)
        return index.to(device), bins.to(device), counts.to(device)

    def _stride(self, j: int) -> int:
        # Products at scale j >= 1 have < 0.3 % of their energy beyond pi / 2^j.
        return 2**j if self.subsample else 1

    def _shift_phases(self, grid: torch.Size, step: int, dtype: torch.dtype, device: torch.device
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """Cosines and sines of ``2 pi k . tau / (m, n)`` over a grid's frequencies.

        Shapes
        ------
        -> (m n, T), (m n, T) for the ``T`` shifts ``tau = step * (a, b)``
        """
        m, n = int(grid[0]), int(grid[1])
        k1 = torch.arange(m, dtype=torch.float64, device=device)[:, None, None] / m
        k2 = torch.arange(n, dtype=torch.float64, device=device)[None, :, None] / n
        shift = torch.tensor(self.shifts, dtype=torch.float64, device=device) * step  # (T, 2)
        angle = (2 * torch.pi * (k1 * shift[:, 0] + k2 * shift[:, 1])).reshape(m * n, -1)
        return angle.cos().to(dtype), angle.sin().to(dtype)

    def family_sizes(self) -> dict[str, int]:
        """Number of (complex) moments per family, for one field.

        Returns
        -------
        dict
            Family name -> count.
        """
        J, L, t, p = self.J, self.L, len(self.shifts), len(self.pairs)
        return {"mean": 2, "marginal": 3 if self.marginal else 0, "M4": self.J * self.L if self.marginal else 0,
                "low": len(self.low_frequencies), "spectrum": len(self.spectrum_count),
                "D": 3 * len(self.increment_shifts), "S11": J * L * t, "S00": J * L * L * t, "S01": J * L, "M": J * L,
                "C01": p * L * L, "C00": p * L * L, "Cphase": p * L}

    def wavelet_transform(self, x: torch.Tensor) -> torch.Tensor:
        """All wavelet coefficients in one batched FFT.

        Parameters
        ----------
        x : torch.Tensor
            Real fields.

        Returns
        -------
        torch.Tensor
            Complex coefficients.

        Shapes
        ------
        x: (B, M, N) -> (B, J, L, M, N) complex
        """
        xf = torch.fft.fft2(x)
        return torch.fft.ifft2(xf[:, None, None] * self.psi)

    def _check(self, x: torch.Tensor) -> torch.Tensor:
        check_real_tensor(x, "x", min_ndim=2)
        if tuple(x.shape[-2:]) != self.shape:
            raise ValueError(f"x has spatial shape {tuple(x.shape[-2:])} but the statistics were built for "
                             f"{self.shape}; build PhaseHarmonicStatistics(shape={tuple(x.shape[-2:])}, ...).")
        check_same_device(x, self.psi, "x", "PhaseHarmonicStatistics")
        return x.to(self.psi.dtype)

    # ------------------------------------------------------------------ moments
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
        xf = torch.fft.fft2(x)
        # One (coefficients, moduli) pair per scale and grid stride, each sliced
        # once: a strided slice of one big tensor would allocate that whole
        # tensor again in its backward pass, for every slice.
        zs: list[torch.Tensor] = [torch.fft.ifft2(xf[:, None] * self.psi[j]) for j in range(self.J)]
        grids: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}

        def grid(j: int, s: int) -> tuple[torch.Tensor, torch.Tensor]:
            if (j, s) not in grids:
                sub = zs[j][..., ::s, ::s] if s > 1 else zs[j]
                grids[(j, s)] = (sub, sub.abs())
            return grids[(j, s)]
        mean = x.mean((-2, -1))
        xc = x - (mean if centre is None else centre.expand(B))[:, None, None]
        xc2 = xc.square()
        var = xc2.mean((-2, -1))
        if self.marginal:
            marginal = torch.stack([(xc2 * xc).mean((-2, -1)), xc2.square().mean((-2, -1)),
                                    xc.abs().mean((-2, -1))], -1)
        else:
            marginal = x.new_zeros(B, 0)
        if self.low_frequencies:
            rows = torch.tensor([a % self.shape[0] for a, _ in self.low_frequencies], device=x.device)
            cols = torch.tensor([b % self.shape[1] for _, b in self.low_frequencies], device=x.device)
            low = xf[:, rows, cols].abs().square() / (self.shape[0] * self.shape[1])
        else:
            low = x.new_zeros(B, 0)
        increments = [torch.roll(x, (-a, -b), (-2, -1)) - x for a, b in self.increment_shifts]
        incr = torch.stack([m for d in increments for m in (d.abs().mean((-2, -1)), d.square().mean((-2, -1)),
                                                             d.square().square().mean((-2, -1)))], -1) \
            if increments else x.new_zeros(B, 0)
        # mean periodogram per bin: a scatter-add over the few thousand finest wavenumbers
        periodogram = xf.flatten(-2)[:, self.spectrum_index].abs().square() / (self.shape[0] * self.shape[1])
        spectrum = (x.new_zeros(B, len(self.spectrum_count)).index_add(1, self.spectrum_bin, periodogram)
                / self.spectrum_count.to(x.dtype))
        s11, s00, s01, mods, power, fourth = [], [], [], [], [], []
        for j in range(self.J):
            s = self._stride(j)
            zj, aj = grid(j, s)  # (B, L, m, n)
            mj = aj.mean((-2, -1))
            power.append(zj.real.square().mean((-2, -1)) + zj.imag.square().mean((-2, -1)))
            mods.append(mj)
            if self.marginal:
                fourth.append(aj.square().square().mean((-2, -1)))
            s01.append((aj * zj).mean((-2, -1)))
            ac = aj - mj[..., None, None]
            step = 2**j // s
            af = ac.flatten(-2)
            area = af.shape[-1]
            cross = []
            for a, b in self.shifts:
                ar = torch.roll(ac, (-a * step, -b * step), (-2, -1)).flatten(-2)
                cross.append(torch.bmm(af, ar.transpose(1, 2)) / area)
            # <z(u) conj z(u + tau)> for every shift from the periodogram of z (Wiener-Khinchin):
            # one FFT instead of a rolled copy of z per shift (a sixth of a 256^2 forward+backward).
            periodogram_z = torch.fft.fft2(zj).abs().square().flatten(-2) / area**2
            cos, sin = self._shift_phases(zj.shape[-2:], step, periodogram_z.dtype, x.device)
            s11.append(torch.complex(periodogram_z @ cos, -(periodogram_z @ sin)))  # (B, L, T)
            s00.append(torch.stack(cross, -1))  # (B, L, L, T) real
        power_t = torch.stack(power, 1)  # (B, J, L)
        c01, c00, cph = [], [], []
        for j1 in range(self.J):
            partners = [j2 for (i1, j2) in self.pairs if i1 == j1]
            if not partners:
                continue
            s = self._stride(j1)
            z1, a1 = (t.flatten(-2) for t in grid(j1, s))
            area = z1.shape[-1]
            a1c = a1 - a1.mean(-1, keepdim=True)
            # unit phase of z1, squared once per octave of scale difference (phase acceleration)
            u = z1 / torch.where(a1 > 0, a1, torch.ones_like(a1))
            power_of_u, k = u, 1
            for j2 in partners:
                while k < 2 ** (j2 - j1):
                    power_of_u, k = power_of_u * power_of_u, 2 * k
                z2, a2 = (t.flatten(-2) for t in grid(j2, s))
                a2c = a2 - a2.mean(-1, keepdim=True)
                # real modulus times complex coefficient: one real matmul over (re, im)
                prod = torch.einsum("blu,bkuc->blkc", a1, torch.view_as_real(z2)) / area
                c01.append(torch.complex(prod[..., 0], -prod[..., 1]))
                c00.append(torch.bmm(a1c, a2c.transpose(1, 2)) / area)
                cph.append((a1 * power_of_u * z2.conj()).mean(-1))
        dt = zs[0].dtype
        moments = {
            "mean": torch.stack([mean, var], -1).to(dt),
            "marginal": marginal.to(dt),
            "M4": torch.stack(fourth, 1).reshape(B, -1).to(dt) if fourth else x.new_zeros(B, 0).to(dt),
            "low": low.to(dt),
            "spectrum": spectrum.to(dt),
            "D": incr.to(dt),
            "S11": torch.stack(s11, 1).reshape(B, -1),
            "S00": torch.stack(s00, 1).reshape(B, -1).to(dt),
            "S01": torch.stack(s01, 1).reshape(B, -1),
            "M": torch.stack(mods, 1).reshape(B, -1).to(dt),
            "C01": torch.stack(c01, 1).reshape(B, -1) if c01 else zs[0].new_zeros(B, 0),
            "C00": torch.stack(c00, 1).reshape(B, -1).to(dt) if c00 else zs[0].new_zeros(B, 0),
            "Cphase": torch.stack(cph, 1).reshape(B, -1) if cph else zs[0].new_zeros(B, 0),
        }
        return moments, power_t, var

    def _normalise(self, moments: dict[str, torch.Tensor], power: torch.Tensor, var: torch.Tensor,
                   ref: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        # power (J, L) or (B, J, L) broadcast against batch; var () or (B,)
        B = moments["S11"].shape[0]
        P = power.expand(B, self.J, self.L)
        sq = P.sqrt()
        T = len(self.shifts)
        sigma = var.expand(B).sqrt()
        scale_mean = torch.stack([sigma, sigma.square()], -1)
        out = {"mean": moments["mean"] / scale_mean}
        if self.marginal:
            m = moments["marginal"]
            # sqrt of the fourth moment: flatness ~ 10 would otherwise outweigh every other family
            out["marginal"] = torch.stack([m[:, 0] / sigma**3, m[:, 1].real.clamp_min(0).sqrt().to(m.dtype) / sigma**2,
                                           m[:, 2] / sigma], -1)
        else:
            out["marginal"] = moments["marginal"]
        # reference periodogram and increment moments (each field's own, detached, without a reference)
        ref = {k: moments[k].real.detach() for k in ("low", "spectrum", "D")} if ref is None else ref
        # relative to the reference power at each wavenumber, as S11 is to P_{j,l}
        ref_low = ref["low"]
        if self.marginal:
            # sqrt <|z|^4> / P: flatness of the coefficients at each scale, so that heavy
            # pixel tails cannot come from spikes at the finest scale alone
            out["M4"] = (moments["M4"].real.clamp_min(0).sqrt().to(P.dtype).reshape(B, self.J, self.L) / P
                         ).reshape(B, -1).to(moments["M4"].dtype)
        else:
            out["M4"] = moments["M4"]
        out["low"] = moments["low"] / ref_low.clamp_min(torch.finfo(ref_low.dtype).tiny)
        floor = self.spectrum_floor * sigma.square()[:, None]
        dt_s = moments["spectrum"].dtype
        out["spectrum"] = ((moments["spectrum"].real + floor) / (ref["spectrum"] + floor)).sqrt().to(dt_s)
        # (|d|, d^2, sqrt d^4) over the reference <d^2> to the matching power
        if self.increment_shifts:
            d = moments["D"].real.reshape(B, -1, 3)
            d2 = ref["D"].reshape(-1, len(self.increment_shifts), 3)[..., 1].clamp_min(torch.finfo(d.dtype).tiny)
            out["D"] = torch.stack([d[..., 0] / d2.sqrt(), d[..., 1] / d2, d[..., 2].clamp_min(0).sqrt() / d2],
                                   -1).reshape(B, -1).to(moments["D"].dtype)
        else:
            out["D"] = moments["D"]
        out["S11"] = (moments["S11"].reshape(B, self.J, self.L, T) / P[..., None]).reshape(B, -1)
        pp = sq[:, :, :, None] * sq[:, :, None, :]  # (B, J, L, L)
        out["S00"] = (moments["S00"].reshape(B, self.J, self.L, self.L, T) / pp[..., None]).reshape(B, -1)
        out["S01"] = (moments["S01"].reshape(B, self.J, self.L) / P).reshape(B, -1)
        out["M"] = (moments["M"].reshape(B, self.J, self.L) / sq).reshape(B, -1)
        if self.pairs:
            j1 = torch.tensor([p[0] for p in self.pairs], device=P.device)
            j2 = torch.tensor([p[1] for p in self.pairs], device=P.device)
            cross = sq[:, j1, :, None] * sq[:, j2, None, :]  # (B, p, L, L)
            same = sq[:, j1] * sq[:, j2]  # (B, p, L)
            n = len(self.pairs)
            out["C01"] = (moments["C01"].reshape(B, n, self.L, self.L) / cross).reshape(B, -1)
            out["C00"] = (moments["C00"].reshape(B, n, self.L, self.L) / cross).reshape(B, -1)
            out["Cphase"] = (moments["Cphase"].reshape(B, n, self.L) / same).reshape(B, -1)
        else:
            for f in ("C01", "C00", "Cphase"):
                out[f] = moments[f]
        return out

    def _references(self) -> dict[str, torch.Tensor]:
        return {"low": self.reference_low, "spectrum": self.reference_spectrum, "D": self.reference_increments}

    def set_reference(self, target: torch.Tensor) -> "PhaseHarmonicStatistics":
        """Fix the normalisation (and target moments) from one or several reference fields.

        Parameters
        ----------
        target : torch.Tensor
            Reference fields; their wavelet power and variance, averaged over the
            batch, normalise every later call to :meth:`forward`.

        Returns
        -------
        PhaseHarmonicStatistics
            ``self``.

        Shapes
        ------
        target: (..., M, N)
        """
        x = self._check(target).reshape(-1, *self.shape)
        with torch.no_grad():
            self.reference_mean = x.mean()
            # expectations over the references, normalised once: each family is then a fixed
            # function of expectations, and a field can match the average of several
            # references exactly (a +-1 field of the mean magnetisation matches every
            # pixel moment of a set of Ising fields). Summed over chunks of fields, so
            # that hundreds of references fit in memory.
            sums: dict[str, torch.Tensor] = {}
            for chunk in x.split(16):
                moments, power, var = self.raw_moments(chunk, self.reference_mean)
                for k, v in {**moments, "power": power, "var": var}.items():
                    sums[k] = sums[k] + v.sum(0, keepdim=True) if k in sums else v.sum(0, keepdim=True)
            moments = {k: v / x.shape[0] for k, v in sums.items()}
            self.reference_power = moments.pop("power")[0]
            self.reference_var = moments.pop("var")[0]
            self.reference_low = moments["low"].real[0]
            self.reference_spectrum = moments["spectrum"].real[0]
            self.reference_increments = moments["D"].real[0]
            if float(self.reference_var) <= 0 or not bool((self.reference_power > 0).all()):
                raise ValueError("target is constant (zero variance or zero wavelet power at some scale); "
                                 "phase harmonic statistics need a field with fluctuations at every scale.")
            norm = self._normalise(moments, self.reference_power, self.reference_var, self._references())
        self.reference_moments = {k: v[0] for k, v in norm.items()}
        return self

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Normalised moments of each field.

        Uses the reference power, variance and mean (the centre of the pixel
        moments) set by :meth:`set_reference`, or each field's own (detached)
        ones when none is set.

        Parameters
        ----------
        x : torch.Tensor
            Real fields.

        Returns
        -------
        dict
            Family -> complex moments.

        Shapes
        ------
        x: (..., M, N) -> dict family -> (..., n_f) complex
        """
        x = self._check(x)
        batch = x.shape[:-2]
        moments, power, var = self.raw_moments(x.reshape(-1, *self.shape), self.reference_mean)
        if self.reference_power is not None:
            norm = self._normalise(moments, self.reference_power, self.reference_var, self._references())
        else:
            norm = self._normalise(moments, power.detach(), var.detach())
        return {k: v.reshape(*batch, v.shape[-1]) for k, v in norm.items()}

    def loss(self, x: torch.Tensor, target_moments: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Sum over fields and families of the mean squared moment mismatch.

        Parameters
        ----------
        x : torch.Tensor
            Fields being synthesised.
        target_moments : dict, optional
            Target moments; :attr:`reference_moments` by default.

        Returns
        -------
        torch.Tensor
            Scalar loss, each family contributing O(1) at most.

        Shapes
        ------
        x: (..., M, N) -> ()
        """
        return moment_loss(self(x), self.reference_moments if target_moments is None else target_moments)

    def extra_repr(self) -> str:
        """Configuration summary."""
        return (f"shape={self.shape}, J={self.J}, L={self.L}, dn={self.dn}, delta_j={self.delta_j}, "
                f"marginal={self.marginal}, low={self.low}, increments={bool(self.increment_shifts)}, rings_per_octave={self.rings_per_octave}, "
                f"spectrum_floor={self.spectrum_floor}, "
                f"n_moments={sum(self.family_sizes().values())}")
