"""Does a field look stationary? Two cheap diagnostics of the assumption every texture model makes.

A maximum-entropy model of wavelet moments (and the Gaussian model) averages
its moments over the whole field: it assumes the field is stationary, its
statistics the same everywhere. Two departures are common in user images:

* a **trend**: a mean that varies across the field (a ramp, an illumination
  gradient), measured by the fraction ``R^2`` of the variance that a plane
  ``a + b u + c v`` explains;
* **heterogeneity**: a texture in one part and a smooth area in another,
  measured by ``|log(E_1 / E_2)|``, ``E`` the mean squared nearest-neighbour
  increment of each half of the field, the largest over the top/bottom and
  left/right splits.

Thresholds, from fields measured with this module (128² and 256² 2D turbulence,
64² and 128² critical Ising, white noise; photographs; a ramp plus noise; noise
whose amplitude halves or grows across the field): over 28 turbulence and 20 Ising
fields the largest ``R^2`` was 0.06 and the largest log ratio 0.51; a ramp plus
unit noise gave ``R^2 = 0.75``, turbulence multiplied by a ramp from 0.2 to 2 gave
log ratios of 1.36 to 2.15, and noise ten times weaker in one half 4.3. A smooth
stationary 48² texture whose power sits at the lowest wavenumbers reached
``R^2 = 0.27`` (a plane correlates with a one-period sine up to ``6 / pi^2``). A field
is flagged beyond ``R^2 > 0.5`` or a log ratio above ``log 2.5``. These are
diagnostics, not tests at a stated confidence: a stationary field whose power
sits at the largest scales, or an intermittent one, can pass a threshold by
chance, mostly when it is small.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from wavephase.metrics.fields import ArrayLike, as_fields

__all__ = ["NonStationaryFieldWarning", "TREND_R2", "HALVES_LOG_RATIO", "stationarity"]

#: Largest fraction of the variance a plane may explain in a field that is called stationary.
TREND_R2 = 0.5
#: Largest ``|log|`` ratio of the increment energies of two halves of a field that is called stationary.
HALVES_LOG_RATIO = math.log(2.5)


class NonStationaryFieldWarning(UserWarning):
    """A target field does not look stationary; the moment models assume it is."""


def _trend_r2(t: torch.Tensor) -> torch.Tensor:
    # Fraction of each field's variance explained by a least-squares plane.
    n, M, N = t.shape
    u = (torch.arange(M, dtype=t.dtype) - (M - 1) / 2)[:, None].expand(M, N).reshape(-1)
    v = (torch.arange(N, dtype=t.dtype) - (N - 1) / 2)[None, :].expand(M, N).reshape(-1)
    y = t.reshape(n, -1)
    y = y - y.mean(-1, keepdim=True)
    # u and v are centred and orthogonal on the grid: the plane's slopes are two projections
    fit = (y @ u)[:, None] * u / u.square().sum() + (y @ v)[:, None] * v / v.square().sum()
    var = y.square().sum(-1).clamp_min(torch.finfo(t.dtype).tiny)
    return fit.square().sum(-1) / var


def _halves_log_ratio(t: torch.Tensor) -> torch.Tensor:
    # Largest |log| ratio of the mean squared increments of two halves of each field.
    d = (t[:, 1:, :-1] - t[:, :-1, :-1]).square() + (t[:, :-1, 1:] - t[:, :-1, :-1]).square()
    m, n = d.shape[-2:]
    tiny = torch.finfo(t.dtype).tiny
    ratios = []
    for a, b in ((d[:, : m // 2], d[:, m // 2:]), (d[:, :, : n // 2], d[:, :, n // 2:])):
        ratios.append((a.mean((-2, -1)).clamp_min(tiny).log() - b.mean((-2, -1)).clamp_min(tiny).log()).abs())
    return torch.stack(ratios, -1).amax(-1)


def stationarity(x: ArrayLike) -> dict[str, Any]:
    """Trend and heterogeneity of each field, and whether they look stationary.

    Parameters
    ----------
    x : torch.Tensor or numpy.ndarray
        ``(n, M, N)`` or ``(M, N)`` real fields, at least 4 x 4.

    Returns
    -------
    dict
        ``"trend_r2"`` and ``"halves_log_ratio"``: lists of ``n`` floats (see the
        module docstring); ``"stationary"``: list of ``n`` bools;
        ``"message"``: None when every field looks stationary, else one sentence
        saying which fields do not, why, and what the model assumes.

    Shapes
    ------
    x: (n, M, N) or (M, N) -> dict of lists of n
    """
    t = as_fields(x, "x")
    r2 = _trend_r2(t)
    ratio = _halves_log_ratio(t)
    ok = (r2 <= TREND_R2) & (ratio <= HALVES_LOG_RATIO)
    message = None
    if not bool(ok.all()):
        bad = [int(i) for i in torch.nonzero(~ok).flatten()]
        why = []
        if bool((r2 > TREND_R2).any()):
            why.append(f"a plane explains up to {float(r2.max()):.0%} of the variance (a trend in the mean; "
                       f"stationary fields: below {TREND_R2:.0%})")
        if bool((ratio > HALVES_LOG_RATIO).any()):
            why.append(f"the increments of one half hold {math.exp(float(ratio.max())):.1f}x the energy of the "
                       f"other half's (stationary fields: below {math.exp(HALVES_LOG_RATIO):.1f}x)")
        message = (f"field(s) {bad} do not look stationary: {'; '.join(why)}. The moment models assume a "
                   f"stationary field (the same statistics everywhere): the syntheses spread the statistics of "
                   f"the whole field over every region; crop a homogeneous region or remove the trend first.")
    return {"trend_r2": [float(v) for v in r2], "halves_log_ratio": [float(v) for v in ratio],
            "stationary": [bool(v) for v in ok], "message": message}
