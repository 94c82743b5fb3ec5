"""Statistics of random fields and a comparison table for syntheses.

These are the quantities by which a synthesised field is judged against the
physical field it imitates: the isotropic power spectrum (second order), the
pixel and increment distributions and the structure functions (higher orders,
intermittency), and for spin systems the Ising observables. Every function
accepts a batch ``(n, M, N)`` or a single field ``(M, N)`` as a tensor or a
NumPy array, validates it, computes in float64 and returns NumPy arrays or
Python floats; :func:`compare_fields` returns a JSON-serialisable dict.

Wavenumbers are in cycles per ``L = min(M, N)`` pixels, so ``k = 1`` is the
largest periodic scale of a square image and ``k = L / 2`` the Nyquist
frequency.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch

from wavephase.validation import as_float_tensor

__all__ = [
    "power_spectrum",
    "spectrum_per_octave",
    "pixel_pdf",
    "flatness",
    "increment_pdf",
    "structure_functions",
    "ising_observables",
    "jackknife_standard_error",
    "compare_fields",
]

ArrayLike = torch.Tensor | np.ndarray


def _fields(x: object, name: str = "x", min_side: int = 4) -> torch.Tensor:
    if isinstance(x, (list, tuple)):
        x = np.asarray(x)
    t = as_float_tensor(x, name).detach().to("cpu", torch.float64)
    if t.ndim == 2:
        t = t.unsqueeze(0)
    if t.ndim != 3:
        raise ValueError(
            f"{name} must have shape (n, M, N) or (M, N), got {tuple(t.shape)}; "
            f"flatten extra batch dimensions with {name}.reshape(-1, M, N)."
        )
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


def _modulus2(x: torch.Tensor) -> torch.Tensor:
    # |FFT|^2 / (M N)^2 of the mean-removed fields: sums to the variance (Parseval).
    m, n = x.shape[-2:]
    xc = x - x.mean(dim=(-2, -1), keepdim=True)
    return torch.fft.fft2(xc).abs() ** 2 / (m * n) ** 2


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
    """
    t = _fields(x)
    m, n = t.shape[-2:]
    kk = torch.round(_radial_wavenumber(m, n)).long().reshape(-1)
    p2 = _modulus2(t).mean(dim=0).reshape(-1) * (m * n)
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
    """
    t = _fields(x)
    m, n = t.shape[-2:]
    kk = _radial_wavenumber(m, n)
    p2 = _modulus2(t).mean(dim=0)
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
    """
    v = _fields(x, min_side=1).reshape(-1).numpy()
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
    """
    t = _fields(x, min_side=1)
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
    """
    t = _fields(x)
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
    """
    t = _fields(x)
    orders = [int(p) for p in orders]
    if not orders or min(orders) < 1:
        raise ValueError(f"orders must be a non-empty list of ints >= 1, got {orders}.")
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
        flat[j] = float((d**4).mean()) / m2**2 if m2 > 0 else float("nan")
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
    """
    t = _fields(x, min_side=2)
    s = torch.where(t >= 0, 1.0, -1.0).to(torch.float64)
    energy = -(s * torch.roll(s, -1, -1) + s * torch.roll(s, -1, -2)).mean(dim=(-2, -1))
    m = s.mean(dim=(-2, -1)).abs()
    rs = list(range(min(s.shape[-2:]) // 2 + 1))
    corr = [float(0.5 * ((s * torch.roll(s, -r, -1)).mean() + (s * torch.roll(s, -r, -2)).mean())) for r in rs]
    return {"energy": float(energy.mean()), "abs_magnetisation": float(m.mean()), "r": rs,
            "correlation": np.asarray(corr)}


def _rel(value: Any, truth: Any, how: str) -> float:
    a = np.asarray(value, dtype=np.float64)
    b = np.asarray(truth, dtype=np.float64)
    if how == "scalar":
        return float(abs(a - b) / abs(b)) if b != 0 else float(abs(a - b))
    if how == "l2":
        nb = float(np.linalg.norm(b))
        return float(np.linalg.norm(a - b) / nb) if nb > 0 else float(np.linalg.norm(a - b))
    if how == "max":
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.abs(a - b) / np.abs(b)
        r = r[np.isfinite(r)]
        return float(r.max()) if r.size else 0.0
    if how == "tv":
        # total variation distance between two histograms on the same bins
        return float(0.5 * np.abs(a - b).sum() / max(b.sum(), 1e-300))
    raise ValueError(how)


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    return v


def jackknife_standard_error(fn: Any, x: ArrayLike, n_groups: int = 16) -> Any:
    """Delete-a-group jackknife standard error of a statistic of a set of fields.

    The fields are dealt into ``g = min(n, n_groups)`` groups (field ``i`` in
    group ``i mod g``); the statistic is recomputed with each group left out
    and ``se^2 = (g - 1) / g * sum_i (T_i - mean T)^2``. This is the error of
    the statistic over the whole set, for pooled (ratio) statistics such as a
    flatness or a spectrum as well as for per-field averages.

    Parameters
    ----------
    fn : callable
        ``fn(fields) -> float, numpy.ndarray or dict of them`` on ``(k, M, N)`` float64 fields.
    x : torch.Tensor or numpy.ndarray
        ``(n, M, N)`` fields (``n >= 2``).
    n_groups : int
        Largest number of groups (the cost is ``g`` calls of ``fn``).

    Returns
    -------
    float, numpy.ndarray or dict
        Standard error with the structure of ``fn``'s output.
    """
    t = _fields(x)
    g = min(t.shape[0], int(n_groups))
    if g < 2:
        raise ValueError(f"a jackknife needs at least 2 fields and n_groups >= 2, got {t.shape[0]} fields and "
                         f"n_groups={n_groups}.")
    group = torch.arange(t.shape[0]) % g
    reps = [fn(t[group != i]) for i in range(g)]

    def se(values: list[Any]) -> Any:
        a = np.asarray(values, dtype=np.float64)
        out = np.sqrt((g - 1) / g * ((a - a.mean(0)) ** 2).sum(0))
        return float(out) if out.ndim == 0 else out

    if isinstance(reps[0], dict):
        return {k: se([r[k] for r in reps]) for k in reps[0]}
    return se(reps)


def compare_fields(syntheses: ArrayLike, truth: ArrayLike, gaussian: ArrayLike | None = None,
                   kind: str = "generic", n_groups: int = 16) -> dict[str, dict[str, Any]]:
    """Compare syntheses (and optionally a Gaussian baseline) with true fields, metric by metric.

    Metrics and the relative error each uses (``s`` synthesis, ``t`` truth):

    - ``mean``: ``|s - t| / std(truth)``; ``std``, ``flatness``: ``|s - t| / |t|``.
    - ``spectrum_per_octave``: variance per dyadic band (:func:`spectrum_per_octave`);
      error = max over bands of ``|s_j - t_j| / t_j``.
    - ``power_spectrum``: :func:`power_spectrum`; error = rms over wavenumbers of
      ``log(s_k / t_k)`` (natural log; 0.1 means about 10 % per wavenumber).
    - ``pixel_pdf``: histogram of the values standardised by the truth's mean
      and std on 41 bins over ``[-10, 10]``; error = total variation distance
      ``0.5 * sum |s - t| * bin width`` (0 equal, 1 disjoint).
    - ``kind="turbulence"`` adds ``increment_flatness`` (flatness of increments at
      lags ``1, 2, 4, ...``; error = max relative error over lags) and
      ``structure_functions`` (orders 2, 4, 6; error = rms of ``log(s / t)`` over
      orders and lags).
    - ``kind="ising"`` adds ``energy``, ``abs_magnetisation`` (``|s - t| / |t|``) and
      ``correlation`` ``C(r)`` (relative L2 error) of the thresholded fields.

    Parameters
    ----------
    syntheses : torch.Tensor or numpy.ndarray
        ``(n, M, N)`` or ``(M, N)`` synthesised fields.
    truth : torch.Tensor or numpy.ndarray
        ``(n', M, N)`` or ``(M, N)`` reference fields.
    gaussian : torch.Tensor or numpy.ndarray or None
        Optional Gaussian-model samples of the same field size.
    kind : {"generic", "turbulence", "ising"}
        Which family of metrics to add to the generic ones.
    n_groups : int
        Groups of the jackknife standard errors (:func:`jackknife_standard_error`);
        0 skips them.

    Returns
    -------
    dict
        ``{metric: {"synthesis", "gaussian", "truth", "relative_error_synthesis",
        "relative_error_gaussian", "error", "synthesis_se", "gaussian_se", "truth_se"}}``
        with floats, lists of floats or ``None`` (no Gaussian given, or a set of one
        field has no standard error), and ``"error"`` naming the error measure;
        JSON-serialisable.
    """
    if kind not in ("generic", "turbulence", "ising"):
        raise ValueError(f"kind must be 'generic', 'turbulence' or 'ising', got {kind!r}.")
    if isinstance(n_groups, bool) or not isinstance(n_groups, (int, np.integer)) or n_groups < 0:
        raise ValueError(f"n_groups must be an int >= 0 (0: no standard errors), got {n_groups!r}.")
    sets = {"synthesis": _fields(syntheses, "syntheses"), "truth": _fields(truth, "truth")}
    if gaussian is not None:
        sets["gaussian"] = _fields(gaussian, "gaussian")
    shape = tuple(sets["truth"].shape[-2:])
    for name, t in sets.items():
        if tuple(t.shape[-2:]) != shape:
            raise ValueError(
                f"{name} fields are {tuple(t.shape[-2:])} but truth fields are {shape}; "
                f"compare fields of the same size (crop or resample first)."
            )
    mu_t = float(sets["truth"].mean())
    sd_t = float(sets["truth"].std())
    if sd_t == 0:
        raise ValueError("truth is constant (zero variance); nothing to compare against.")
    edges = np.linspace(-10, 10, 42)
    side = min(shape)
    lags = [2**j for j in range(int(math.log2(max(side // 4, 1))) + 1)]
    labels = {"mean": ("mean", "|s - t| / std(truth)"), "std": ("scalar", "|s - t| / |t|"),
              "flatness": ("scalar", "|s - t| / |t|"),
              "spectrum_per_octave": ("max", "max over octaves of |s - t| / t"),
              "power_spectrum": ("logrms", "rms of log(s / t) over wavenumbers"),
              "pixel_pdf": ("tv", "total variation distance (standardised by the truth)")}
    if kind == "turbulence":
        labels["increment_flatness"] = ("max", "max over lags of |s - t| / t")
        labels["structure_functions"] = ("logrms", "rms of log(s / t) over orders 2, 4, 6 and lags")
    if kind == "ising":
        labels["energy"] = ("scalar", "|s - t| / |t|")
        labels["abs_magnetisation"] = ("scalar", "|s - t| / |t|")
        labels["correlation"] = ("l2", "relative L2 error of C(r)")

    def values(t: torch.Tensor) -> dict[str, Any]:
        out: dict[str, Any] = {"mean": float(t.mean()), "std": float(t.std()), "flatness": flatness(t),
                               "spectrum_per_octave": spectrum_per_octave(t)[1],
                               "power_spectrum": power_spectrum(t)[1],
                               "pixel_pdf": pixel_pdf((t - mu_t) / sd_t, bins=edges)[1] * np.diff(edges)}
        if kind == "turbulence":
            sf = structure_functions(t, (2, 4, 6), lags)
            out["increment_flatness"] = sf["flatness"]
            out["structure_functions"] = sf["S"].reshape(-1)
        if kind == "ising":
            obs = ising_observables(t)
            out.update({k: obs[k] for k in ("energy", "abs_magnetisation", "correlation")})
        return out

    computed = {name: values(t) for name, t in sets.items()}
    errors = {name: jackknife_standard_error(values, t, n_groups) if n_groups and t.shape[0] > 1 else None
              for name, t in sets.items()}
    out: dict[str, dict[str, Any]] = {}
    for name, (how, label) in labels.items():
        truth_value = computed["truth"][name]
        entry: dict[str, Any] = {"truth": _jsonable(truth_value)}
        for set_name in ("synthesis", "gaussian"):
            if set_name not in computed:
                entry[set_name] = None
                entry[f"relative_error_{set_name}"] = None
                continue
            value = computed[set_name][name]
            entry[set_name] = _jsonable(value)
            if how == "mean":
                err = abs(value - truth_value) / sd_t
            elif how == "logrms":
                a = np.log(np.maximum(np.asarray(value, dtype=np.float64), 1e-300))
                b = np.log(np.maximum(np.asarray(truth_value, dtype=np.float64), 1e-300))
                err = float(np.sqrt(np.mean((a - b) ** 2)))
            else:
                err = _rel(value, truth_value, how)
            entry[f"relative_error_{set_name}"] = float(err)
        entry["error"] = label
        for set_name in ("synthesis", "gaussian", "truth"):
            se = errors.get(set_name)
            entry[f"{set_name}_se"] = None if se is None else _jsonable(se[name])
        out[name] = entry
    return out
