"""Statistics of random fields: spectra, distributions, increments, Ising observables.

These are the quantities by which a synthesised field is judged against the
physical field it imitates: the isotropic power spectrum (second order), the
pixel and increment distributions and the structure functions (higher orders,
intermittency), and for spin systems the Ising observables. Every function
accepts a batch ``(n, M, N)`` or a single field ``(M, N)`` as a tensor or a
NumPy array, validates it, computes in float64 and returns NumPy arrays or
Python floats; :mod:`wavephase.metrics.field_comparison` compares sets of fields with them.

Wavenumbers are in cycles per ``L = min(M, N)`` pixels, so ``k = 1`` is the
largest periodic scale of a square image and ``k = L / 2`` the Nyquist
frequency.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch

from wavephase.harmonics.spectrum import power_spectrum_2d
from wavephase.validation import check_images

__all__ = [
    "as_fields",
    "power_spectrum",
    "spectrum_per_octave",
    "pixel_pdf",
    "flatness",
    "increment_pdf",
    "structure_functions",
    "ising_observables",
    "spin_histogram",
]

ArrayLike = torch.Tensor | np.ndarray
# Largest magnitude the metrics take (float32's): the moments they compute stay finite in float64.
_LARGEST = float(np.finfo(np.float32).max)
# Half-width of spin_histogram's bins about -1 and +1 (compare_fields and the report name it in their labels).
SPIN_WINDOW = 0.25


def as_fields(x: object, name: str = "x", min_side: int = 4) -> torch.Tensor:
    """Check a set of fields and return it as a float64 CPU tensor.

    Parameters
    ----------
    x : array-like
        ``(n, M, N)`` fields or one ``(M, N)`` field (tensor, NumPy array or nested lists).
    name : str
        Argument name used in error messages.
    min_side : int
        Smallest accepted side.

    Returns
    -------
    torch.Tensor
        float64 fields, at least one.

    Shapes
    ------
    x: (n, M, N) or (M, N) -> (n, M, N)
    """
    t = torch.from_numpy(check_images(x, name, allow_single=True)).to(torch.float64)
    if t.numel() and float(t.abs().max()) > _LARGEST:
        raise ValueError(f"{name} holds values up to {float(t.abs().max()):.3g}, beyond the float32 range, where "
                         f"moments of the fields overflow float64; rescale {name}.")
    if t.shape[0] == 0:
        raise ValueError(f"{name} holds no field (shape {tuple(t.shape)}).")
    if min(t.shape[-2:]) < min_side:
        raise ValueError(f"{name} fields must be at least {min_side} x {min_side}, got {tuple(t.shape[-2:])}.")
    return t


def _radial_wavenumber(m: int, n: int) -> torch.Tensor:
    # |k| in cycles per min(M, N) pixels on the full FFT grid.
    side = min(m, n)
    fy = torch.fft.fftfreq(m, dtype=torch.float64)[:, None]
    fx = torch.fft.fftfreq(n, dtype=torch.float64)[None, :]
    return torch.sqrt(fx**2 + fy**2) * side


def power_spectrum(x: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Isotropic power spectrum, averaged over rings of unit width and over the batch.

    Parameters
    ----------
    x : torch.Tensor or numpy.ndarray
        ``(n, M, N)`` or ``(M, N)`` real fields (periodic boundaries assumed).

    Returns
    -------
    k : numpy.ndarray
        ``(K,)`` ring centres ``1, ..., min(M, N) // 2`` (cycles per ``min(M, N)`` pixels).
    P : numpy.ndarray
        ``(K,)`` mean of ``|FFT(x - mean)|^2 / (M N)`` over the Fourier modes with
        ``|k|`` rounded to each centre (a white noise of variance ``s^2`` has ``P = s^2``).

    Shapes
    ------
    x: (n, M, N) or (M, N) -> k (K,), P (K,)
    """
    t = as_fields(x)
    m, n = t.shape[-2:]
    kk = torch.round(_radial_wavenumber(m, n)).long().reshape(-1)
    p2 = power_spectrum_2d(t).reshape(-1)
    kmax = min(m, n) // 2
    sums = torch.zeros(kk.max() + 1, dtype=torch.float64).index_add_(0, kk, p2)
    counts = torch.zeros(kk.max() + 1, dtype=torch.float64).index_add_(0, kk, torch.ones_like(p2))
    k = np.arange(1, kmax + 1, dtype=np.float64)
    return k, (sums[1: kmax + 1] / counts[1: kmax + 1]).numpy()


def spectrum_per_octave(x: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Variance carried by each dyadic band of wavenumbers, averaged over the batch.

    Band ``j`` holds the modes with ``2^j <= |k| < 2^(j+1)``; the last band also
    takes the corners ``|k| >= L / 2`` (``L = min(M, N)``), and the bands sum
    to the variance of the fields.

    Parameters
    ----------
    x : torch.Tensor or numpy.ndarray
        ``(n, M, N)`` or ``(M, N)`` real fields.

    Returns
    -------
    k_low : numpy.ndarray
        ``(J,)`` lower edges ``1, 2, 4, ..., L / 4`` of the bands, ``J = log2(L) - 1``.
    energy : numpy.ndarray
        ``(J,)`` variance per band.

    Shapes
    ------
    x: (n, M, N) or (M, N) -> k_low (J,), energy (J,)
    """
    t = as_fields(x)
    m, n = t.shape[-2:]
    kk = _radial_wavenumber(m, n)
    p2 = power_spectrum_2d(t) / (m * n)  # sums to the variance (Parseval)
    n_bands = max(int(math.floor(math.log2(min(m, n)))) - 1, 1)
    band = torch.floor(torch.log2(torch.clamp(kk, min=1.0))).long().clamp(max=n_bands - 1)
    band = torch.where(kk < 1.0, torch.full_like(band, -1), band)
    keep = band >= 0
    energy = torch.zeros(n_bands, dtype=torch.float64).index_add_(0, band[keep], p2[keep])
    return 2.0 ** np.arange(n_bands), energy.numpy()


def pixel_pdf(x: ArrayLike, bins: int | Sequence[float] | np.ndarray = 50,
              range: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Histogram estimate of the distribution of pixel values over the whole batch.

    Parameters
    ----------
    x : torch.Tensor or numpy.ndarray
        ``(n, M, N)`` or ``(M, N)`` real fields.
    bins : int or array-like
        Number of bins, or the ``(B + 1,)`` bin edges (use the same edges to compare sets).
    range : tuple of float or None
        ``(low, high)`` of the bins when ``bins`` is an int; default the data range.

    Returns
    -------
    centers : numpy.ndarray
        ``(B,)`` bin centres.
    density : numpy.ndarray
        ``(B,)`` probability density (integrates to the fraction of values inside the bins).

    Shapes
    ------
    x: (n, M, N) or (M, N) -> centers (B,), density (B,)
    """
    v = as_fields(x, min_side=1).reshape(-1).numpy()
    edges = _edges(bins, v if range is None else np.asarray(range, dtype=np.float64), "bins")
    counts, _ = np.histogram(v, bins=edges)
    density = counts / (v.size * np.diff(edges))
    return 0.5 * (edges[1:] + edges[:-1]), density


def _edges(bins: object, values: np.ndarray, name: str) -> np.ndarray:
    if isinstance(bins, (int, np.integer)) and not isinstance(bins, bool):
        if bins < 1:
            raise ValueError(f"{name} must be >= 1, got {bins}.")
        lo, hi = float(np.min(values)), float(np.max(values))
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        return np.linspace(lo, hi, int(bins) + 1)
    edges = np.asarray(bins, dtype=np.float64)
    if edges.ndim != 1 or edges.size < 2 or not np.all(np.diff(edges) > 0):
        raise ValueError(f"{name} must be an int or an increasing 1D array of at least 2 edges.")
    return edges


def flatness(x: ArrayLike, per_field: bool = False) -> float | np.ndarray:
    """Flatness (kurtosis) ``<(x - mu)^4> / sigma^4``; 3 for a Gaussian field.

    Parameters
    ----------
    x : torch.Tensor or numpy.ndarray
        ``(n, M, N)`` or ``(M, N)`` real fields.
    per_field : bool
        Return one value per field (mean and variance of each field) instead of
        one value over all pixels of the batch.

    Returns
    -------
    float or numpy.ndarray
        The flatness, or ``(n,)`` flatnesses.

    Shapes
    ------
    x: (n, M, N) or (M, N) -> () or (n,)
    """
    t = as_fields(x, min_side=1)
    if per_field:
        c = t - t.mean(dim=(-2, -1), keepdim=True)
        var = (c**2).mean(dim=(-2, -1))
        _check_variance(var, "x")
        return ((c**4).mean(dim=(-2, -1)) / var**2).numpy()
    c = t - t.mean()
    var = (c**2).mean()
    _check_variance(var, "x")
    return float((c**4).mean() / var**2)


def _check_variance(var: torch.Tensor, name: str) -> None:
    if bool((var <= 0).any()):
        raise ValueError(f"{name} is constant (zero variance): its flatness is undefined.")


def _increments(t: torch.Tensor, r: int) -> torch.Tensor:
    # Periodic increments along both axes, pooled: isotropic statistics of delta_r x.
    dx = torch.roll(t, -r, dims=-1) - t
    dy = torch.roll(t, -r, dims=-2) - t
    return torch.cat([dx.reshape(-1), dy.reshape(-1)])


def _check_lag(r: object, t: torch.Tensor, name: str = "r") -> int:
    if isinstance(r, bool) or not isinstance(r, (int, np.integer)):
        raise TypeError(f"{name} must be an int number of pixels, got {type(r).__name__} ({r!r}).")
    side = min(t.shape[-2:])
    if not 1 <= r <= side // 2:
        raise ValueError(f"{name} must be between 1 and {side // 2} (half the field side), got {r}.")
    return int(r)


def increment_pdf(x: ArrayLike, r: int, bins: int | Sequence[float] | np.ndarray = 50,
                  normalise: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Distribution of the increments ``x(p + r e) - x(p)`` along both axes (periodic).

    Parameters
    ----------
    x : torch.Tensor or numpy.ndarray
        ``(n, M, N)`` or ``(M, N)`` real fields.
    r : int
        Lag in pixels, ``1 <= r <= min(M, N) / 2``.
    bins : int or array-like
        Number of bins (over the data range) or bin edges.
    normalise : bool
        Divide the increments by their standard deviation first, so that the
        shape of the distribution is compared, not its width.

    Returns
    -------
    centers : numpy.ndarray
        ``(B,)`` bin centres.
    density : numpy.ndarray
        ``(B,)`` probability density.

    Shapes
    ------
    x: (n, M, N) or (M, N) -> centers (B,), density (B,)
    """
    t = as_fields(x)
    r = _check_lag(r, t)
    d = _increments(t, r)
    if normalise:
        s = d.std()
        if float(s) == 0:
            raise ValueError("x has constant increments at this lag; use normalise=False.")
        d = d / s
    v = d.numpy()
    edges = _edges(bins, v, "bins")
    counts, _ = np.histogram(v, bins=edges)
    return 0.5 * (edges[1:] + edges[:-1]), counts / (v.size * np.diff(edges))


def structure_functions(x: ArrayLike, orders: Sequence[int] = (1, 2, 3, 4, 5, 6),
                        lags: Sequence[int] | None = None) -> dict[str, Any]:
    """Structure functions ``S_p(r) = <|x(p + r e) - x(p)|^p>`` over both axes.

    Parameters
    ----------
    x : torch.Tensor or numpy.ndarray
        ``(n, M, N)`` or ``(M, N)`` real fields.
    orders : sequence of int
        Orders ``p >= 1``.
    lags : sequence of int or None
        Lags in pixels; default ``1, 2, 4, ..., min(M, N) / 4``.

    Returns
    -------
    dict
        ``{"orders": [p], "lags": [r], "S": (P, R) numpy array, "flatness": (R,) array}``
        where ``flatness[r] = S_4 / S_2^2`` of the signed increments (3 if Gaussian).

    Shapes
    ------
    x: (n, M, N) or (M, N) -> S (len(orders), len(lags)), flatness (len(lags),)
    """
    t = as_fields(x)
    if not isinstance(orders, Sequence) or not orders or not all(
            isinstance(p, (int, np.integer)) and not isinstance(p, bool) and p >= 1 for p in orders):
        raise ValueError(f"orders must be a non-empty list of ints >= 1, got {orders!r}.")
    orders = [int(p) for p in orders]
    side = min(t.shape[-2:])
    if lags is None:
        lags = [2**j for j in range(int(math.log2(max(side // 4, 1))) + 1)]
    lags = [_check_lag(r, t, "lags") for r in lags]
    s = np.zeros((len(orders), len(lags)))
    flat = np.zeros(len(lags))
    for j, r in enumerate(lags):
        d = _increments(t, r).abs()
        for i, p in enumerate(orders):
            s[i, j] = float((d**p).mean())
        m2 = float((d**2).mean())
        if m2 == 0:
            raise ValueError(f"x has constant increments at lag {r}: their flatness is undefined.")
        flat[j] = float((d**4).mean()) / m2**2
    if not (np.isfinite(s).all() and np.isfinite(flat).all()):
        raise ValueError(f"orders={orders}: the structure functions of x overflow float64; lower the orders or "
                         f"rescale x.")
    return {"orders": orders, "lags": lags, "S": s, "flatness": flat}


def ising_observables(x: ArrayLike) -> dict[str, Any]:
    """Energy per spin, mean ``|m|`` and spin correlation of ``sign(x)`` (0 counts as +1).

    Parameters
    ----------
    x : torch.Tensor or numpy.ndarray
        ``(n, M, N)`` or ``(M, N)`` spins or continuous fields (thresholded at 0).

    Returns
    -------
    dict
        ``"energy"``: mean of ``-(1/N) sum_<ij> s_i s_j`` (periodic nearest
        neighbours); ``"abs_magnetisation"``: mean ``|(1/N) sum_i s_i|``;
        ``"correlation"``: ``C(r) = <s(p) s(p + r e)>`` for ``r = 0 .. min(M, N) / 2``
        along both axes (not connected: no ``m^2`` subtracted), and ``"r"`` its lags.

    Shapes
    ------
    x: (n, M, N) or (M, N) -> correlation (min(M, N) // 2 + 1,)
    """
    t = as_fields(x, min_side=2)
    s = torch.where(t >= 0, 1.0, -1.0).to(torch.float64)
    energy = -(s * torch.roll(s, -1, -1) + s * torch.roll(s, -1, -2)).mean(dim=(-2, -1))
    m = s.mean(dim=(-2, -1)).abs()
    rs = list(range(min(s.shape[-2:]) // 2 + 1))
    corr = [float(0.5 * ((s * torch.roll(s, -r, -1)).mean() + (s * torch.roll(s, -r, -2)).mean())) for r in rs]
    return {"energy": float(energy.mean()), "abs_magnetisation": float(m.mean()), "r": rs,
            "correlation": np.asarray(corr)}


def spin_histogram(x: ArrayLike, window: float = SPIN_WINDOW) -> np.ndarray:
    """Fractions of the values near ``-1``, near ``+1``, between and beyond: how spin-like fields are.

    Unlike :func:`ising_observables` the values are not thresholded, so a grey field
    (values between the spins) or one whose levels drift from ``+-1`` shows here. The
    bins are centred on the spin values, where :func:`pixel_pdf`'s regular bins may
    put an edge next to ``+-1`` and count a level at ``0.95`` as another value.

    Parameters
    ----------
    x : torch.Tensor or numpy.ndarray
        ``(n, M, N)`` or ``(M, N)`` fields in spin units (spins are ``+-1``).
    window : float
        Half-width of the bins about ``-1`` and ``+1``, in ``(0, 1)``.

    Returns
    -------
    numpy.ndarray
        Fractions of all values in ``(-inf, -1 - w)``, ``[-1 - w, -1 + w]``,
        ``(-1 + w, 1 - w)``, ``[1 - w, 1 + w]`` and ``(1 + w, inf)``; they sum to 1.

    Shapes
    ------
    x: (n, M, N) or (M, N) -> (5,)
    """
    if isinstance(window, bool) or not isinstance(window, (int, float)) or not 0 < window < 1:
        raise ValueError(f"window must be a number in (0, 1) (half-width of the bins about +-1), got {window!r}.")
    v = as_fields(x, min_side=1).reshape(-1)
    near_minus, near_plus = (v + 1).abs() <= window, (v - 1).abs() <= window
    below, above = v < -1 - window, v > 1 + window
    between = ~(near_minus | near_plus | below | above)
    counts = torch.stack([m.sum() for m in (below, near_minus, between, near_plus, above)]).double()
    return (counts / max(v.numel(), 1)).numpy()
