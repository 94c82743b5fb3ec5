"""End-to-end synthesis experiment: true fields, syntheses, Gaussian model, figures and metrics.

:func:`run_synthesis` is what ``wavephase synth`` and the HTML report call. It
draws ``n_samples`` target fields and at least as many held-out fields of the
same process (never used as targets), synthesises ``n_samples`` fields from
the targets, draws as many samples of the Gaussian model, and compares the
three sets with :func:`wavephase.metrics.fields.compare_fields`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wavephase.validation import check_positive_int

__all__ = ["QUICK_SETTINGS", "basic_metrics", "load_fields", "run_synthesis"]

# (size, n_samples, steps) keeping each run under about two minutes on two cores
QUICK_SETTINGS: dict[str, tuple[int, int, int]] = {
    "ising": (64, 4, 200),
    "turbulence": (128, 2, 150),
    "image": (128, 1, 200),
}


def load_fields(field: str, size: int, n: int, seed: int = 0, progress: bool = True) -> torch.Tensor:
    """Draw ``n`` fields of a named process, or load an image file.

    Parameters
    ----------
    field : str
        ``"ising"`` (critical temperature), ``"turbulence"`` (2D vorticity) or
        the path of a PNG/JPEG image (then a single field is returned).
    size : int
        Side of the square fields.
    n : int
        Number of fields (ignored for images).
    seed : int
        Seed of the simulation.
    progress : bool
        Show the simulation's progress bar.

    Returns
    -------
    torch.Tensor
        float32 fields.

    Shapes
    ------
    -> (n, size, size), or (1, size, size) for an image
    """
    size = check_positive_int(size, "size", minimum=8)
    if field == "ising":
        from wavephase.physics import ising

        return ising(size, n, seed=seed, progress=progress).float()
    if field == "turbulence":
        from wavephase.physics import turbulence2d

        return turbulence2d(size, n, seed=seed, progress=progress).float()
    path = Path(field)
    if path.suffix.lower() not in (".png", ".jpg", ".jpeg") and not path.is_file():
        raise ValueError(f"field={field!r} is neither 'ising', 'turbulence' nor an image file; pass one of "
                         f"them (e.g. --field ising or --field texture.png).")
    from wavephase.data.images import load_image

    return torch.from_numpy(np.ascontiguousarray(load_image(path, size)))[None].float()


def _radial_spectrum(x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Isotropic power spectrum averaged over fields, on integer wavenumber shells (for plots)."""
    M, N = x.shape[-2:]
    p = torch.fft.fft2(x - x.mean((-2, -1), keepdim=True)).abs().square().mean(0) / (M * N)
    kx = torch.fft.fftfreq(M, 1.0 / M)
    ky = torch.fft.fftfreq(N, 1.0 / N)
    k = (kx[:, None] ** 2 + ky[None] ** 2).sqrt().round().long().flatten()
    n_bins = min(M, N) // 2
    keep = (k >= 1) & (k <= n_bins)
    power = torch.zeros(n_bins + 1, dtype=torch.float64).index_add_(0, k[keep], p.flatten()[keep].double())
    count = torch.zeros(n_bins + 1, dtype=torch.float64).index_add_(0, k[keep], torch.ones(int(keep.sum()),
                                                                                      dtype=torch.float64))
    ks = np.arange(1, n_bins + 1)
    return ks, (power[1:] / count[1:].clamp_min(1)).numpy()


def _figures(out: Path, target: torch.Tensor, synth: torch.Tensor, gauss: torch.Tensor, truth: torch.Tensor,
             title: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    rows = min(2, synth.shape[0])
    fig, axes = plt.subplots(rows, 3, figsize=(9, 3 * rows + 0.4), squeeze=False)
    lo, hi = float(np.percentile(target.numpy(), 0.5)), float(np.percentile(target.numpy(), 99.5))
    for r in range(rows):
        for c, (label, f) in enumerate((("target", target), ("synthesis", synth), ("Gaussian", gauss))):
            ax = axes[r, c]
            ax.imshow(f[r % f.shape[0]].numpy(), cmap="RdBu_r" if "ising" not in title else "gray", vmin=lo,
                      vmax=hi, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(label)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out / "fields.png", dpi=100)
    plt.close(fig)
    names.append("fields.png")

    fig, ax = plt.subplots(figsize=(5, 4))
    for label, f, style in (("held-out truth", truth, "k-"), ("synthesis", synth, "C0--"),
                            ("Gaussian", gauss, "C1:")):
        k, p = _radial_spectrum(f)
        ax.loglog(k, np.maximum(p, 1e-30), style, label=label)
    ax.set_xlabel("wavenumber |k|")
    ax.set_ylabel("isotropic power spectrum")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "spectra.png", dpi=100)
    plt.close(fig)
    names.append("spectra.png")

    fig, ax = plt.subplots(figsize=(5, 4))
    allv = torch.cat([truth.flatten(), synth.flatten(), gauss.flatten()]).numpy()
    bins = np.linspace(np.percentile(allv, 0.05), np.percentile(allv, 99.95), 81)
    for label, f, style in (("held-out truth", truth, "k-"), ("synthesis", synth, "C0--"),
                            ("Gaussian", gauss, "C1:")):
        h, edges = np.histogram(f.numpy().ravel(), bins=bins, density=True)
        ax.semilogy(0.5 * (edges[1:] + edges[:-1]), np.maximum(h, 1e-6), style, label=label)
    ax.set_xlabel("field value")
    ax.set_ylabel("probability density")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "pdf.png", dpi=100)
    plt.close(fig)
    names.append("pdf.png")
    return names


def _octave_spectrum(x: torch.Tensor) -> list[float]:
    """Isotropic power in the octaves ``2^o <= |k| < 2^(o+1)``, averaged over fields."""
    ks, p = _radial_spectrum(x)
    top = int(np.log2(ks[-1]))
    return [float(p[(ks >= 2**o) & (ks < 2 ** (o + 1))].sum()) for o in range(top)]


def _flatness(x: torch.Tensor) -> float:
    xc = x.double() - x.double().mean((-2, -1), keepdim=True)
    return float((xc.pow(4).mean((-2, -1)) / xc.pow(2).mean((-2, -1)).square()).mean())


def _ising(x: torch.Tensor) -> tuple[float, float]:
    s = torch.where(x >= x.new_zeros(()), 1.0, -1.0).double()
    energy = -(s * torch.roll(s, 1, -1) + s * torch.roll(s, 1, -2)).mean((-2, -1))
    return float(energy.mean()), float(s.mean((-2, -1)).abs().mean())


def basic_metrics(synth: torch.Tensor, truth: torch.Tensor, gauss: torch.Tensor,
                  ising: bool = False) -> dict[str, dict[str, Any]]:
    """Flatness, isotropic spectrum per octave and (for spins) Ising observables of three field sets.

    For Ising, spins are ``sign(x)`` of each field (``+1`` at 0): the energy
    per spin ``-<s(u) s(u + e_1) + s(u) s(u + e_2)>`` and the mean absolute
    magnetisation ``<|<s>|>``.

    Parameters
    ----------
    synth, truth, gauss : torch.Tensor
        Syntheses, held-out true fields and Gaussian-model samples.
    ising : bool
        Add the Ising observables.

    Returns
    -------
    dict
        Metric -> ``{"synthesis", "gaussian", "truth", "rel_error_synthesis", "rel_error_gaussian"}``
        (lists per octave for the spectrum).

    Shapes
    ------
    synth, truth, gauss: (n_i, M, N)
    """
    funcs: dict[str, Any] = {"flatness": _flatness, "spectrum_per_octave": _octave_spectrum}
    if ising:
        funcs["ising_energy"] = lambda x: _ising(x)[0]
        funcs["ising_abs_magnetisation"] = lambda x: _ising(x)[1]
    out: dict[str, dict[str, Any]] = {}
    for name, f in funcs.items():
        s, t, g = f(synth), f(truth), f(gauss)

        def rel(a: Any, b: Any) -> Any:
            if isinstance(a, list):
                return [abs(u - v) / abs(v) if v else float("nan") for u, v in zip(a, b)]
            return abs(a - b) / abs(b) if b else float("nan")
        out[name] = {"synthesis": s, "gaussian": g, "truth": t, "rel_error_synthesis": rel(s, t),
                     "rel_error_gaussian": rel(g, t)}
    return out


def _scalar_rows(metrics: dict[str, Any]) -> list[tuple[str, float, float, float]]:
    """(name, synthesis, Gaussian, truth) for every metric whose three values are numbers."""
    rows = []
    for name, entry in metrics.items():
        if not isinstance(entry, dict):
            continue
        vals = [entry.get(k) for k in ("synthesis", "gaussian", "truth")]
        if all(isinstance(v, (int, float)) for v in vals):
            rows.append((name, *(float(v) for v in vals)))  # type: ignore[misc]
        elif all(isinstance(v, (list, tuple)) for v in vals) and len({len(v) for v in vals}) == 1:  # type: ignore
            for i, trio in enumerate(zip(*vals)):  # type: ignore[arg-type]
                if all(isinstance(v, (int, float)) for v in trio):
                    rows.append((f"{name}[{i}]", *(float(v) for v in trio)))
    return rows


def _table(rows: list[tuple[str, float, float, float]]) -> str:
    lines = [f"{'metric':<28}{'synthesis':>14}{'Gaussian':>14}{'truth':>14}{'synth err':>12}{'Gauss err':>12}"]
    for name, s, g, t in rows:
        es = abs(s - t) / abs(t) if t else float("nan")
        eg = abs(g - t) / abs(t) if t else float("nan")
        lines.append(f"{name:<28}{s:>14.5g}{g:>14.5g}{t:>14.5g}{es:>11.1%}{eg:>11.1%} ")
    return "\n".join(lines) + "\n"


def run_synthesis(field: str, out_dir: str | Path, *, size: int | None = None, n_samples: int | None = None,
                  steps: int | None = None, seed: int = 0, statistics: str = "phase-harmonics",
                  n_heldout: int | None = None, progress: bool = True) -> dict[str, Any]:
    """Synthesise fields of a physical process (or an image texture) and compare them with held-out truth.

    Parameters
    ----------
    field : str
        ``"ising"``, ``"turbulence"`` or the path of a PNG/JPEG texture.
    out_dir : str or Path
        Output directory: ``fields.png`` (target / synthesis / Gaussian side by
        side), ``spectra.png``, ``pdf.png``, ``metrics.json``, ``metrics.txt``
        and the resumable ``synthesis.pt`` checkpoint.
    size, n_samples, steps : int, optional
        Field side, number of targets (= number of syntheses) and L-BFGS
        iterations; :data:`QUICK_SETTINGS` (under about 2 minutes) by default.
    seed : int
        Seed of the simulations and of the syntheses.
    statistics : str
        Model: ``"phase-harmonics"``, ``"scattering-covariance"`` or ``"gaussian"``.
    n_heldout : int, optional
        Held-out true fields (``max(n_samples, 8)`` by default); images have
        none and are compared with the image itself.
    progress : bool
        Show progress bars.

    Returns
    -------
    dict
        The content of ``metrics.json``: settings, timings, loss history and,
        under ``"metrics"``, :func:`~wavephase.metrics.fields.compare_fields`'s output.
    """
    from wavephase.synthesis.maxent import synthesize

    kind = field if field in ("ising", "turbulence") else "image"
    q_size, q_n, q_steps = QUICK_SETTINGS[kind]
    size = q_size if size is None else check_positive_int(size, "size", minimum=8)
    n_samples = q_n if n_samples is None else check_positive_int(n_samples, "n_samples")
    steps = q_steps if steps is None else check_positive_int(steps, "steps", minimum=0)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    if kind == "image":
        targets = load_fields(field, size, 1)
        truth = targets
    else:
        n_held = max(n_samples, 8) if n_heldout is None else check_positive_int(n_heldout, "n_heldout")
        fields = load_fields(field, size, n_samples + n_held, seed=seed, progress=progress)
        targets, truth = fields[:n_samples], fields[n_samples:]
    timings["true_fields"] = time.perf_counter() - t0

    # Ising is +- symmetric: averaging the targets' moments would cancel their
    # magnetisation, so each synthesis matches one target.
    match = "each" if kind == "ising" else "average"
    synth, info = synthesize(targets, statistics, n_samples=n_samples, steps=steps, seed=seed, match=match,
                             checkpoint=out / "synthesis.pt", progress=progress, return_info=True)
    timings["synthesis"] = info["seconds"]
    t0 = time.perf_counter()
    gauss = synthesize(targets, "gaussian", n_samples=n_samples, seed=seed + 1)
    timings["gaussian"] = time.perf_counter() - t0

    metrics = basic_metrics(synth, truth, gauss, ising=kind == "ising")
    try:
        from wavephase.metrics.fields import compare_fields
    except ImportError:  # metrics.fields is optional: basic_metrics covers the quality targets
        compare_fields = None
    if compare_fields is not None:
        try:
            metrics = {**metrics, **compare_fields(synth, truth, gauss, kind=kind)}
        except ValueError as err:  # e.g. a kind it does not know (images): keep basic_metrics
            metrics["compare_fields_error"] = {"message": str(err)}
    figures = _figures(out, targets, synth, gauss, truth, f"{field} {size}x{size}, {statistics}")
    result: dict[str, Any] = {
        "field": field, "size": size, "n_samples": n_samples, "n_heldout": int(truth.shape[0]),
        "steps": steps, "steps_done": info["steps_done"], "seed": seed, "statistics": statistics,
        "match": match, "diverged": info["diverged"], "resumed": info["resumed"],
        "loss_history": info["loss_history"], "seconds": timings, "figures": figures,
        "metrics": _jsonable(metrics),
    }
    (out / "metrics.json").write_text(json.dumps(result, indent=2))
    header = (f"{field} {size}x{size}: {n_samples} syntheses ({statistics}, {info['steps_done']} L-BFGS steps, "
              f"{timings['synthesis']:.1f} s) vs {truth.shape[0]} held-out true fields\n")
    (out / "metrics.txt").write_text(header + _table(_scalar_rows(result["metrics"])))
    return result


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return _jsonable(obj.detach().cpu().tolist())
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    return obj
