"""The moment families of :class:`~wavephase.harmonics.PhaseHarmonicStatistics`, as functions.

Each function takes fields (or their wavelet coefficients) and returns raw,
unnormalised moments ``(B, n_f)``; the statistics divide them by the reference
power (see :mod:`wavephase.harmonics.statistics` for the definitions). They are
differentiable and keep the precision of their input.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from wavephase.harmonics.spectrum import periodogram

__all__ = [
    "WaveletGrids",
    "cross_scale_moments",
    "fourier_moments",
    "increment_moments",
    "pixel_moments",
    "quantile_moments",
    "shift_lattice",
    "shift_phases",
    "single_scale_moments",
    "spectrum_bins",
]

Shift = tuple[int, int]


def shift_lattice(dn: int) -> list[Shift]:
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


def spectrum_bins(shape: tuple[int, int], L: int, rings_per_octave: int, start: float
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Wavenumbers of the ``spectrum`` family and their bins: rings of ``1 / rings_per_octave`` octave times ``L`` sectors.

    Parameters
    ----------
    shape : (int, int)
        Field size ``(M, N)``.
    L : int
        Angular sectors of ``[0, pi)``.
    rings_per_octave : int
        Radial resolution; 0 gives no bin.
    start : float
        Smallest radius kept (radians per pixel): the coarsest wavelet's peak.

    Returns
    -------
    index : torch.Tensor
        Flat FFT indices of the kept wavenumbers, ``(K,)``.
    bins : torch.Tensor
        Bin of each, ``(K,)``, numbered without gaps (empty bins dropped).
    counts : torch.Tensor
        Wavenumbers per bin, float64.

    Shapes
    ------
    -> index (K,), bins (K,), counts (n_spec,)
    """
    M, N = shape
    wy = 2 * torch.pi * torch.fft.fftfreq(M, dtype=torch.float64)[:, None]
    wx = 2 * torch.pi * torch.fft.fftfreq(N, dtype=torch.float64)[None, :]
    radius = (wy.square() + wx.square()).sqrt().flatten()
    angle = torch.remainder(torch.atan2(wy, wx), torch.pi).expand(M, N).flatten()
    ring = (rings_per_octave * torch.log2(radius.clamp_min(1e-12) / start)).floor().long()
    sector = torch.remainder(torch.round(angle / (torch.pi / L)).long(), L)
    keep = (radius >= start) & (rings_per_octave > 0)
    index = torch.nonzero(keep).flatten()
    used, bins = torch.unique((ring * L + sector)[index], return_inverse=True)
    counts = torch.bincount(bins, minlength=len(used)).to(torch.float64)
    return index, bins, counts


def shift_phases(grid: Sequence[int], shifts: Sequence[Shift], step: int, dtype: torch.dtype,
                 device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosines and sines of ``2 pi k . tau / (m, n)`` over a grid's frequencies, for ``tau = step * shift``.

    Parameters
    ----------
    grid : (int, int)
        Grid size ``(m, n)``.
    shifts : sequence of (int, int)
        The ``T`` shifts, in units of ``step`` pixels.
    step : int
        Pixels per unit shift.
    dtype : torch.dtype
        Real dtype of the result.
    device : torch.device
        Device of the result.

    Returns
    -------
    cos, sin : torch.Tensor
        ``(m n, T)`` each.

    Shapes
    ------
    -> (m n, T), (m n, T)
    """
    m, n = int(grid[0]), int(grid[1])
    k1 = torch.arange(m, dtype=torch.float64, device=device)[:, None, None] / m
    k2 = torch.arange(n, dtype=torch.float64, device=device)[None, :, None] / n
    shift = torch.tensor(list(shifts), dtype=torch.float64, device=device) * step  # (T, 2)
    angle = (2 * torch.pi * (k1 * shift[:, 0] + k2 * shift[:, 1])).reshape(m * n, -1)
    return angle.cos().to(dtype), angle.sin().to(dtype)


def pixel_moments(x: torch.Tensor, centre: torch.Tensor | None, marginal: bool
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean, second moment about ``centre`` and the ``marginal`` moments of the pixel values.

    Parameters
    ----------
    x : torch.Tensor
        Real fields.
    centre : torch.Tensor or None
        Scalar about which the moments are taken; each field's own mean when None.
    marginal : bool
        Compute ``<(x - c)^3>``, ``<(x - c)^4>`` and ``<|x - c|>``.

    Returns
    -------
    mean, var, marginal : torch.Tensor
        ``(B,)``, ``(B,)`` and ``(B, 3)`` (``(B, 0)`` without ``marginal``).

    Shapes
    ------
    x: (B, M, N) -> (B,), (B,), (B, 3 or 0)
    """
    B = x.shape[0]
    mean = x.mean((-2, -1))
    xc = x - (mean if centre is None else centre.expand(B))[:, None, None]
    xc2 = xc.square()
    var = xc2.mean((-2, -1))
    if not marginal:
        return mean, var, x.new_zeros(B, 0)
    return mean, var, torch.stack([(xc2 * xc).mean((-2, -1)), xc2.square().mean((-2, -1)),
                                   xc.abs().mean((-2, -1))], -1)


def quantile_moments(x: torch.Tensor, centre: torch.Tensor | None, n_quantiles: int) -> torch.Tensor:
    """The pixel values' quantile function, averaged over ``n_quantiles`` blocks of equal probability.

    Block ``q`` holds the ``q``-th ``1 / n_quantiles`` of each field's sorted values
    ``x - c``, and its moment is their mean. Two fields have equal moments when
    their pixel histograms agree up to the block size, and averaging the moments
    of several fields averages their quantile functions (the 1D Wasserstein
    barycentre of their histograms). Every pixel gets a gradient (that of its block),
    so matching these moments moves the whole histogram, e.g. grey values of a
    spin field towards +-1; the sum of the squared differences of two quantile
    functions is their squared 1D Wasserstein distance.

    Parameters
    ----------
    x : torch.Tensor
        Real fields.
    centre : torch.Tensor or None
        Scalar subtracted first; each field's own mean when None.
    n_quantiles : int
        Number of blocks (at most the number of pixels); 0 gives no moment.

    Returns
    -------
    torch.Tensor
        Block means of the sorted values, ascending.

    Shapes
    ------
    x: (B, M, N) -> (B, n_quantiles)
    """
    B = x.shape[0]
    v = x.reshape(B, -1)
    if n_quantiles == 0:
        return v.new_zeros(B, 0)
    v = v - (v.mean(-1, keepdim=True) if centre is None else centre)
    n_pixels = v.shape[-1]
    block = torch.arange(n_pixels, device=x.device) * n_quantiles // n_pixels
    counts = torch.bincount(block, minlength=n_quantiles).to(v.dtype)
    sums = v.new_zeros(B, n_quantiles).index_add_(1, block, torch.sort(v, dim=-1).values)
    return sums / counts


def increment_moments(x: torch.Tensor, shifts: Sequence[Shift]) -> torch.Tensor:
    """``<|d|>, <d^2>, <d^4>`` of the periodic pixel increments ``d = x(u + n) - x(u)`` for each shift ``n``.

    Parameters
    ----------
    x : torch.Tensor
        Real fields.
    shifts : sequence of (int, int)
        The shifts ``n``.

    Returns
    -------
    torch.Tensor
        Three moments per shift, shift-major.

    Shapes
    ------
    x: (B, M, N) -> (B, 3 len(shifts))
    """
    if not shifts:
        return x.new_zeros(x.shape[0], 0)
    increments = [torch.roll(x, (-a, -b), (-2, -1)) - x for a, b in shifts]
    return torch.stack([m for d in increments for m in (d.abs().mean((-2, -1)), d.square().mean((-2, -1)),
                                                         d.square().square().mean((-2, -1)))], -1)


def fourier_moments(x: torch.Tensor, x_hat: torch.Tensor, low_frequencies: Sequence[Shift],
                    spectrum_index: torch.Tensor, spectrum_bin: torch.Tensor, spectrum_count: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """The periodogram at the ``low`` wavenumbers and its mean over each ``spectrum`` bin.

    Parameters
    ----------
    x : torch.Tensor
        Real fields.
    x_hat : torch.Tensor
        Their FFT.
    low_frequencies : sequence of (int, int)
        Integer wavenumbers of the ``low`` family.
    spectrum_index, spectrum_bin, spectrum_count : torch.Tensor
        From :func:`spectrum_bins`.

    Returns
    -------
    low, spectrum : torch.Tensor
        ``(B, n_low)`` and ``(B, n_spec)``.

    Shapes
    ------
    x: (B, M, N), x_hat: (B, M, N) complex -> (B, n_low), (B, n_spec)
    """
    B, M, N = x.shape
    power = periodogram(x, x_hat)
    if low_frequencies:
        rows = torch.tensor([a % M for a, _ in low_frequencies], device=x.device)
        cols = torch.tensor([b % N for _, b in low_frequencies], device=x.device)
        low = power[:, rows, cols]
    else:
        low = x.new_zeros(B, 0)
    # mean periodogram per bin: a scatter-add over the few thousand finest wavenumbers
    spectrum = (x.new_zeros(B, len(spectrum_count)).index_add(1, spectrum_bin, power.flatten(-2)[:, spectrum_index])
                / spectrum_count.to(x.dtype))
    return low, spectrum


class WaveletGrids:
    """Wavelet coefficients of each scale and their moduli, on the grids subsampled by a stride.

    One ``(coefficients, moduli)`` pair per scale and stride, each sliced once:
    a strided slice of one big tensor would allocate that whole tensor again in
    its backward pass, for every slice.

    Parameters
    ----------
    x_hat : torch.Tensor
        FFT of the real fields, ``(B, M, N)``.
    psi : torch.Tensor
        Fourier-domain wavelets ``(J, L, M, N)``, in the fields' dtype.
    """

    def __init__(self, x_hat: torch.Tensor, psi: torch.Tensor) -> None:
        self.z = [torch.fft.ifft2(x_hat[:, None] * psi[j]) for j in range(psi.shape[0])]
        self._grids: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}

    def __call__(self, j: int, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Coefficients ``z_j`` and ``|z_j|`` on the grid of the given stride, ``(B, L, M / s, N / s)`` each."""
        if (j, stride) not in self._grids:
            sub = self.z[j][..., ::stride, ::stride] if stride > 1 else self.z[j]
            self._grids[(j, stride)] = (sub, sub.abs())
        return self._grids[(j, stride)]


def single_scale_moments(grids: WaveletGrids, stride: Callable[[int], int], shifts: Sequence[Shift],
                         fourth: bool) -> dict[str, torch.Tensor]:
    """Moments of one scale: ``S11``, ``S00``, ``S01``, ``M``, the power and (optionally) ``<|z|^4>``.

    Parameters
    ----------
    grids : WaveletGrids
        The coefficients.
    stride : callable
        Grid stride of each scale ``j``.
    shifts : sequence of (int, int)
        Spatial shifts of ``S11`` and ``S00``, in units of ``2^j``.
    fourth : bool
        Also return ``M4``, the fourth moment of the moduli.

    Returns
    -------
    dict
        ``S11`` (B, J, L, T) complex, ``S00`` (B, J, L, L, T), ``S01`` (B, J, L) complex,
        ``M``, ``power`` and ``M4`` (B, J, L).

    Shapes
    ------
    grids of (B, M, N) fields -> dict of (B, J, L, ...)
    """
    s11, s00, s01, mods, power, m4 = [], [], [], [], [], []
    for j in range(len(grids.z)):
        s = stride(j)
        zj, aj = grids(j, s)  # (B, L, m, n)
        mj = aj.mean((-2, -1))
        power.append(zj.real.square().mean((-2, -1)) + zj.imag.square().mean((-2, -1)))
        mods.append(mj)
        if fourth:
            m4.append(aj.square().square().mean((-2, -1)))
        s01.append((aj * zj).mean((-2, -1)))
        ac = aj - mj[..., None, None]
        step = 2**j // s
        af = ac.flatten(-2)
        area = af.shape[-1]
        cross = []
        for a, b in shifts:
            ar = torch.roll(ac, (-a * step, -b * step), (-2, -1)).flatten(-2)
            cross.append(torch.bmm(af, ar.transpose(1, 2)) / area)
        # <z(u) conj z(u + tau)> for every shift from the periodogram of z (Wiener-Khinchin):
        # one FFT instead of a rolled copy of z per shift (a sixth of a 256^2 forward+backward).
        periodogram_z = torch.fft.fft2(zj).abs().square().flatten(-2) / area**2
        cos, sin = shift_phases(zj.shape[-2:], shifts, step, periodogram_z.dtype, zj.device)
        s11.append(torch.complex(periodogram_z @ cos, -(periodogram_z @ sin)))  # (B, L, T)
        s00.append(torch.stack(cross, -1))  # (B, L, L, T) real
    out = {"S11": torch.stack(s11, 1), "S00": torch.stack(s00, 1), "S01": torch.stack(s01, 1),
           "M": torch.stack(mods, 1), "power": torch.stack(power, 1)}
    if fourth:
        out["M4"] = torch.stack(m4, 1)
    return out


def cross_scale_moments(grids: WaveletGrids, pairs: Sequence[tuple[int, int]], stride: Callable[[int], int]
                        ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
    """Moments of two scales ``j1 < j2``: ``C01``, ``C00`` and ``Cphase`` (phase acceleration).

    Parameters
    ----------
    grids : WaveletGrids
        The coefficients.
    pairs : sequence of (int, int)
        Scale pairs ``(j1, j2)``, grouped by ``j1``.
    stride : callable
        Grid stride of each scale; both scales of a pair use the finer one's.

    Returns
    -------
    c01, c00, cphase : list of torch.Tensor
        One entry per pair: ``(B, L, L)`` complex, ``(B, L, L)`` real, ``(B, L)`` complex.

    Shapes
    ------
    grids of (B, M, N) fields -> lists of (B, L, L), (B, L, L), (B, L)
    """
    c01, c00, cph = [], [], []
    for j1 in sorted({p[0] for p in pairs}):
        s = stride(j1)
        z1, a1 = (t.flatten(-2) for t in grids(j1, s))
        area = z1.shape[-1]
        a1c = a1 - a1.mean(-1, keepdim=True)
        # unit phase of z1, squared once per octave of scale difference (phase acceleration)
        u = z1 / torch.where(a1 > 0, a1, torch.ones_like(a1))
        power_of_u, k = u, 1
        for j2 in [j2 for (i1, j2) in pairs if i1 == j1]:
            while k < 2 ** (j2 - j1):
                power_of_u, k = power_of_u * power_of_u, 2 * k
            z2, a2 = (t.flatten(-2) for t in grids(j2, s))
            a2c = a2 - a2.mean(-1, keepdim=True)
            # real modulus times complex coefficient: one real matmul over (re, im)
            prod = torch.einsum("blu,bkuc->blkc", a1, torch.view_as_real(z2)) / area
            c01.append(torch.complex(prod[..., 0], -prod[..., 1]))
            c00.append(torch.bmm(a1c, a2c.transpose(1, 2)) / area)
            cph.append((a1 * power_of_u * z2.conj()).mean(-1))
    return c01, c00, cph
