"""Comparison of synthesised fields with true fields, metric by metric, with jackknife standard errors."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from wavephase.io import to_jsonable
from wavephase.metrics.fields import (
    SPIN_WINDOW,
    ArrayLike,
    as_fields,
    flatness,
    ising_observables,
    pixel_pdf,
    power_spectrum,
    spectrum_per_octave,
    spin_histogram,
    structure_functions,
)

__all__ = ["compare_fields", "jackknife_standard_error"]


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

    Shapes
    ------
    x: (n, M, N) -> the structure of fn(x)
    """
    t = as_fields(x)
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
      ``correlation`` ``C(r)`` (relative L2 error) of the thresholded fields, and
      ``spin_histogram`` (:func:`spin_histogram` of the values themselves; error = total
      variation distance).

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

    Shapes
    ------
    syntheses: (n, M, N), truth: (n', M, N), gaussian: (n'', M, N) -> dict
    """
    if kind not in ("generic", "turbulence", "ising"):
        raise ValueError(f"kind must be 'generic', 'turbulence' or 'ising', got {kind!r}.")
    if isinstance(n_groups, bool) or not isinstance(n_groups, (int, np.integer)) or n_groups < 0:
        raise ValueError(f"n_groups must be an int >= 0 (0: no standard errors), got {n_groups!r}.")
    sets = {"synthesis": as_fields(syntheses, "syntheses"), "truth": as_fields(truth, "truth")}
    if gaussian is not None:
        sets["gaussian"] = as_fields(gaussian, "gaussian")
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
        labels["spin_histogram"] = ("tv", "total variation distance of the fractions of values within "
                                          f"{SPIN_WINDOW} of -1, of +1, between and beyond (not thresholded)")

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
            out["spin_histogram"] = spin_histogram(t)
        return out

    computed = {name: values(t) for name, t in sets.items()}
    errors = {name: jackknife_standard_error(values, t, n_groups) if n_groups and t.shape[0] > 1 else None
              for name, t in sets.items()}
    out: dict[str, dict[str, Any]] = {}
    for name, (how, label) in labels.items():
        truth_value = computed["truth"][name]
        entry: dict[str, Any] = {"truth": to_jsonable(truth_value)}
        for set_name in ("synthesis", "gaussian"):
            if set_name not in computed:
                entry[set_name] = None
                entry[f"relative_error_{set_name}"] = None
                continue
            value = computed[set_name][name]
            entry[set_name] = to_jsonable(value)
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
            entry[f"{set_name}_se"] = None if se is None else to_jsonable(se[name])
        out[name] = entry
    return out
