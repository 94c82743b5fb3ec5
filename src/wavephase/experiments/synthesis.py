"""End-to-end synthesis experiment: true fields, syntheses, Gaussian model, figures and metrics.

:func:`run_synthesis` is what ``wavephase synth`` and the HTML report call. It
draws ``n_targets`` target fields and, from independent simulations (another
seed), the held-out fields of the same process (never used as targets),
synthesises ``n_samples`` fields from the targets, draws as many samples of the
Gaussian model, and compares the three sets with
:func:`wavephase.metrics.compare_fields` (with jackknife standard errors).
Beside them it scores ``n_true`` further true fields (a third seed) against the
same held-out fields: the spread of true fields, the noise floor below which
no model's error can be judged. ``n_targets=1`` is the talk's setting: the
moments of one example field.
"""

from __future__ import annotations

import io
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from wavephase.cores import CoreShare, usable_cores
from wavephase.experiments.outputs import prepare_output_dir, write_metrics
from wavephase.experiments.recipes import SYNTHESIS_RECIPES, recipe_record
from wavephase.experiments.targets import USER_TARGET_SUFFIXES, load_user_target
from wavephase.io import atomic_write_bytes
from wavephase.metrics.discrimination import discrimination_entry
from wavephase.metrics.field_comparison import compare_fields
from wavephase.metrics.fields import power_spectrum
from wavephase.metrics.stationarity import NonStationaryFieldWarning, stationarity
from wavephase.physics import ising, turbulence2d
from wavephase.synthesis import STATISTICS, synthesize
from wavephase.synthesis.two_level import check_two_level
from wavephase.validation import check_device, check_positive_int, check_random_state

__all__ = ["QUICK_SETTINGS", "default_statistics_options", "default_synthesis_settings", "load_fields",
           "run_synthesis"]

# (size, n_samples, steps) keeping each run under about two minutes on two cores; an image's size is its own
QUICK_SETTINGS: dict[str, tuple[int | None, int, int]] = {
    "ising": (64, 4, 200),
    "turbulence": (128, 2, 150),
    "image": (None, 1, 200),
}
# Statistics options by field, under the caller's. Ising: the pixel histogram's quantile function makes the
# syntheses closer to spins (64x64, 64 targets, 8 syntheses, 200 steps; pixel-PDF TV, energy and power-spectrum
# errors: without it 0.29, 2.5 %, 0.078; weight 1: 0.17, 1.3 %, 0.087; weight 3: 0.17, 0.7 %, 0.099; weight 10:
# 0.13, 0.04 %, 0.145, behind the Gaussian model's 0.117 on the spectrum). Many targets' averaged moments are
# not those of any one spin field (true fields are at a loss of 0.9-2.3 from them, the syntheses at 0.07), so
# the syntheses keep some grey values however the histogram is weighed. From one target the moments are those
# of a spin field, and the family (whose gradient jumps as pixels change rank) slows L-BFGS instead: 64x64,
# 4 syntheses, 200 steps, energy 7.7 % off without it, 31 % at weight 3; so it is left out there.
_MANY_TARGETS_OPTIONS: dict[str, dict[str, Any]] = {"ising": {"quantiles": 64, "quantile_weight": 3.0}}
# From one Ising target the ``low`` family pins each field's periodogram at the ~40 wavenumbers below the
# coarsest wavelet to the target's own values, one noisy draw each, and slows L-BFGS: 128x128, recipe
# ising-128-one, seed 0, without it: pixel-PDF TV 0.021 instead of 0.125, power per octave 0.43 instead of
# 0.67, energy 2.15 % instead of 2.2 %, <|m|> 12.9 % instead of 14.3 %, discrimination 0.956 instead of 0.986;
# 100 iterations, 4 fields one by one: energy 4.6 % instead of 11.7 %. Turbulence (128x128, 100 iterations:
# flatness, octave, increment-flatness errors within 0.02 either way) keeps it. From one turbulence target the
# syntheses' increments were more intermittent than the target's at lag 4, which the D family (|n| <= 2) left free;
# lags 4 and 8 with the family weighed 10 (256x256, recipe turbulence-256-one, 2 syntheses, seeds 0 / 2):
# increment flatness 0.96 / 0.43 -> 0.57 / 0.32 (the target's own 0.59 / 0.27), structure functions 0.68 / 0.83 ->
# 0.58 / 0.67, the other errors within the noise of two syntheses; weight 1: 0.78 / 0.38, weight 3: 0.65 / 0.32.
_ONE_TARGET_OPTIONS: dict[str, dict[str, Any]] = {"ising": {"low": False},
                                                   "turbulence": {"increment_lags": (4, 8), "increment_weight": 10.0}}


def default_statistics_options(kind: str, n_targets: int, statistics: str = "phase-harmonics") -> dict[str, Any]:
    """The statistics options :func:`run_synthesis` uses for a kind of field and a number of targets.

    Parameters
    ----------
    kind : str
        ``"ising"``, ``"turbulence"`` or ``"image"``.
    n_targets : int
        Number of target fields whose moments are matched.
    statistics : str
        The moment model; only ``"phase-harmonics"`` has options here.

    Returns
    -------
    dict
        Keyword arguments of :class:`~wavephase.harmonics.PhaseHarmonicStatistics` (a new dict).
    """
    if statistics != "phase-harmonics":
        return {}
    return dict((_MANY_TARGETS_OPTIONS if n_targets > 1 else _ONE_TARGET_OPTIONS).get(kind, {}))


# Ising is +- symmetric: a plain average of the targets' moments would cancel their magnetisation,
# so they are sign-aligned first.
_MATCH = {"ising": "sign", "turbulence": "average", "image": "average"}


def default_synthesis_settings(kind: str, n_targets: int, statistics: str = "phase-harmonics") -> dict[str, Any]:
    """The keyword arguments of :func:`~wavephase.synthesis.synthesize` that :func:`run_synthesis` picks by kind.

    Parameters
    ----------
    kind, n_targets, statistics
        As for :func:`default_statistics_options`.

    Returns
    -------
    dict
        ``match`` (``"sign"`` for Ising, else ``"average"``), ``precondition`` (spectral
        preconditioning, off for Ising: it slows the sharp +-1 edges of spins, 128x128,
        150 steps: energy 4.9 % off instead of 2.0 %, and is what keeps a dealiased
        vorticity's corners empty) and ``statistics_options``
        (:func:`default_statistics_options`, None when empty).
    """
    if kind not in _MATCH:
        raise ValueError(f"kind must be one of {sorted(_MATCH)}, got {kind!r}.")
    return {"match": _MATCH[kind], "precondition": kind != "ising",
            "statistics_options": default_statistics_options(kind, n_targets, statistics) or None}


def _kind(field: str) -> str:
    """``"ising"``, ``"turbulence"`` or ``"image"`` (a user's target: an existing PNG/JPEG or ``.npy`` file)."""
    if field in ("ising", "turbulence"):
        return field
    path = Path(field)
    if path.suffix.lower() not in USER_TARGET_SUFFIXES or not path.is_file():
        raise ValueError(f"field={field!r} is neither 'ising', 'turbulence' nor an existing PNG/JPEG or .npy file; "
                         f"pass one of them (e.g. --field ising or --field texture.png).")
    return "image"


def load_fields(field: str, size: int | None, n: int, random_state: int = 0, progress: bool = True,
                cache: bool = False, device: str | torch.device | None = None,
                num_threads: int | Callable[[], int] | None = 1) -> torch.Tensor:
    """Draw ``n`` fields of a named process, or load a user's target file.

    Parameters
    ----------
    field : str
        ``"ising"`` (critical temperature), ``"turbulence"`` (2D vorticity) or
        the path of a PNG/JPEG image or ``.npy`` array, checked by
        :func:`~wavephase.experiments.targets.load_user_target`.
    size : int or None
        Side of the square fields; None keeps a file's own size.
    n : int
        Number of fields (ignored for images).
    random_state : int
        Seed of the simulation.
    progress : bool
        Show the simulation's progress bar.
    cache : bool
        Keep turbulence fields in the physics cache (see
        :func:`wavephase.physics.turbulence2d`); Ising samples are cheap and not cached.
    device : str or torch.device, optional
        Where the turbulence simulation runs (the CPU by default).
    num_threads : int, callable or None
        CPU threads of the turbulence simulation (see
        :func:`wavephase.physics.turbulence2d`; the fields do not depend on it).

    Returns
    -------
    torch.Tensor
        float32 fields on the CPU.

    Shapes
    ------
    -> (n, size, size); a file's fields
    """
    kind = _kind(field)
    if kind == "image":
        return load_user_target(field, size)
    size = check_positive_int(size, "size", minimum=8)
    if kind == "ising":
        return ising(size, n, random_state=random_state, progress=progress).float()
    return turbulence2d(size, n, random_state=random_state, cache=cache, progress=progress,
                        device=check_device(device), num_threads=num_threads).float()


def _true_field_sets(field: str, kind: str, size: int, counts: list[int], random_state: int, progress: bool,
                     device: torch.device) -> list[torch.Tensor]:
    """Targets, held-out and further true fields: ``counts[i]`` fields of seed ``random_state + i``.

    Turbulence simulations run on one thread each, so on a CPU with a second core
    they run side by side, the largest first (the same fields as one after the
    other: each set has its own seed), and a simulation takes the cores of those
    that have ended (:class:`~wavephase.cores.CoreShare`; the fields do not depend
    on the thread count). They are cached.
    """
    seeds = [random_state + i for i in range(len(counts))]
    turbulence = kind == "turbulence"
    cores = usable_cores()
    workers = min(len(counts), cores) if turbulence and device.type == "cpu" else 1
    if workers > 1:
        share = CoreShare(cores, len(counts))

        def simulate(i: int) -> torch.Tensor:
            with share.job() as threads:
                return load_fields(field, size, counts[i], seeds[i], progress, True, device, threads)

        with ThreadPoolExecutor(workers, thread_name_prefix="wavephase-simulation") as pool:
            futures = {i: pool.submit(simulate, i) for i in sorted(range(len(counts)), key=lambda i: -counts[i])}
            return [futures[i].result() for i in range(len(counts))]
    return [load_fields(field, size, n, seed, progress, turbulence, device) for n, seed in zip(counts, seeds)]


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
        k, p = power_spectrum(f)
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


def _table(metrics: dict[str, Any]) -> str:
    """Plain-text table: values (± standard error) when scalar, each model's error against the held-out truth, and
    that of as many other true fields (``true err``, the noise floor; ``-`` when there are none) and that of the
    targets themselves (``target err``: from one target, the syntheses cannot be closer than it)."""
    def fmt(v: Any, se: Any = None) -> str:
        if isinstance(v, (int, float)):
            return f"{v:.5g}" + (f" ± {se:.2g}" if isinstance(se, (int, float)) else "")
        return "(vector)" if isinstance(v, list) else "-"

    lines = [f"{'metric':<22}{'synthesis':>20}{'Gaussian':>20}{'truth':>20}{'synth err':>11}{'Gauss err':>11}"
             f"{'true err':>11}{'target err':>11}  error"]
    for name, e in metrics.items():
        if not isinstance(e, dict):
            continue
        errs = "".join(f"{fmt(e.get(f'relative_error_{k}')):>11}"
                       for k in ("synthesis", "gaussian", "true_fields", "targets"))
        cells = "".join(f"{fmt(e.get(k), e.get(k + '_se')):>20}" for k in ("synthesis", "gaussian", "truth"))
        lines.append(f"{name:<22}{cells}{errs}  {e.get('error', '')}")
    return "\n".join(lines) + "\n"


def run_synthesis(field: str, out_dir: str | Path, *, size: int | None = None, n_samples: int | None = None,
                  steps: int | None = None, random_state: int = 0, statistics: str = "phase-harmonics",
                  n_targets: int | None = None, n_heldout: int | None = None, threads: int | None = 1,
                  device: str | torch.device | None = None, progress: bool = True,
                  recipe: str | None = None, n_true: int | None = None, J: int | None = None,
                  statistics_options: dict[str, Any] | None = None,
                  two_level: Sequence[float] | None = None) -> dict[str, Any]:
    """Synthesise fields of a physical process (or an image texture) and compare them with held-out truth.

    Every argument and the output folder are checked before any simulation.

    Parameters
    ----------
    field : str
        ``"ising"``, ``"turbulence"`` or the path of a PNG/JPEG texture or a ``.npy``
        field ``(M, M)`` or fields ``(n, M, M)`` (see
        :func:`~wavephase.experiments.targets.load_user_target` for what is refused).
        A target that does not look stationary (:func:`~wavephase.metrics.stationarity`)
        is synthesised all the same, with a :class:`~wavephase.metrics.NonStationaryFieldWarning`
        that ``metrics.json`` (``"warnings"``), ``metrics.txt`` and the report repeat.
    out_dir : str or Path
        Output directory: ``fields.png`` (target / synthesis / Gaussian side by
        side), ``spectra.png``, ``pdf.png``, ``metrics.json``, ``metrics.txt``,
        the syntheses themselves (``syntheses.npy``, ``(n_samples, size, size)``, in
        the targets' units) and the resumable ``synthesis.pt`` checkpoint.
    size, n_samples, steps : int, optional
        Field side, number of syntheses and L-BFGS iterations;
        :data:`QUICK_SETTINGS` (under about 2 minutes) by default; a file keeps its own size by default.
    random_state : int
        Seed of the target simulations and of the syntheses; the held-out
        fields come from independent simulations with seed ``random_state + 1``.
    statistics : str
        Model: ``"phase-harmonics"``, ``"scattering-covariance"`` or ``"gaussian"``.
    n_targets : int, optional
        Target fields whose moments are matched (``n_samples`` by default, at
        least 64 for Ising).
        Ising targets are sign-aligned and averaged (``match="sign"``), so many
        targets cost only their simulation; turbulence targets are averaged.
        Turbulence simulations are cached (:func:`load_fields`).
    n_heldout : int, optional
        Held-out true fields (``max(n_samples, 8)`` by default); images have
        none and are compared with the image itself.
    n_true : int, optional
        Further true fields (seed ``random_state + 2``) scored against the held-out
        fields like the syntheses, ``n_samples`` by default (none for a file): each
        metric's ``"true_fields"`` and ``"relative_error_true_fields"``, the spread of
        true fields below which an error cannot be judged; the targets are scored too
        (``"targets"``, ``"relative_error_targets"``): syntheses from one target match
        its moments, so its own error is theirs to expect. 0 skips both.
    J : int, optional
        Scales of the moments (:func:`~wavephase.synthesis.default_J` by default).
    statistics_options : dict, optional
        Options of the statistics operator, over the field's defaults
        (:func:`default_statistics_options`; Ising from several targets: ``{"quantiles": 64,
        "quantile_weight": 3.0}``, the pixel histogram; from one target: ``{"low": False}``).
    two_level : sequence of float, optional
        Weights of the continuation stages that make syntheses of a two-valued field
        two-valued (:mod:`wavephase.synthesis.two_level`; ``STAGE_STEPS`` L-BFGS iterations
        each, after the ``steps`` of moment matching); none by default.
    threads : int or None
        Torch intra-op threads during the run (restored afterwards); ``None``
        keeps the current setting. One thread is the default because the
        moments are many small operations: on a shared 2-core machine, 2
        threads measured 5x slower than 1 (64x64, 4 fields). Turbulence
        simulations that are not cached yet run one thread each, the sets of
        fields (targets, held-out, further true fields) side by side on up to
        as many cores as the process may use.
    device : str or torch.device, optional
        Where the simulations and syntheses run (the CPU by default).
    progress : bool
        Show progress bars.
    recipe : str, optional
        The :data:`~wavephase.experiments.recipes.SYNTHESIS_RECIPES` entry this run starts from
        (``run_synthesis(out_dir=..., recipe=name, **SYNTHESIS_RECIPES[name])``); ``metrics.json``
        records it and every argument that differs from its settings.

    Returns
    -------
    dict
        The content of ``metrics.json`` (without its ``"run"`` entry): settings,
        timings, loss history and, under ``"metrics"``,
        :func:`~wavephase.metrics.compare_fields`'s output (for Ising: energy and
        mean ``|m|`` of ``sign(x)``) and ``"discrimination"``
        (:func:`~wavephase.metrics.discrimination_entry`: held-out accuracy of a classifier of
        crops, syntheses and Gaussian samples against the held-out fields), also at the top level
        as ``discrimination_accuracy`` and ``discrimination_accuracy_gaussian`` (``None`` for an image).
    """
    recipe_used = recipe_record(recipe, SYNTHESIS_RECIPES, locals())
    kind = _kind(field)
    q_size, q_n, q_steps = QUICK_SETTINGS[kind]
    J = None if J is None else check_positive_int(J, "J")
    user_targets = load_user_target(field, size, J) if kind == "image" else None
    if user_targets is not None:
        size = int(user_targets.shape[-1])
    size = q_size if size is None else check_positive_int(size, "size", minimum=8)
    n_samples = q_n if n_samples is None else check_positive_int(n_samples, "n_samples")
    steps = q_steps if steps is None else check_positive_int(steps, "steps", minimum=0)
    random_state = check_random_state(random_state)
    if statistics not in STATISTICS:
        raise ValueError(f"statistics={statistics!r} is not supported; choose one of {STATISTICS}.")
    if n_targets is None:
        # Ising fields are cheap and their moments are averaged: many targets cost only their sampling
        n_targets = max(n_samples, 64) if kind == "ising" else n_samples
    n_targets = check_positive_int(n_targets, "n_targets")
    n_heldout = max(n_samples, 8) if n_heldout is None else check_positive_int(n_heldout, "n_heldout")
    if kind == "image":
        n_true = 0
    n_true = n_samples if n_true is None else check_positive_int(n_true, "n_true", minimum=0)
    options = {**default_statistics_options(kind, n_targets, statistics), **(statistics_options or {})}
    threads = None if threads is None else check_positive_int(threads, "threads")
    device = check_device(device)
    two_level = list(check_two_level(two_level)) or None
    out = prepare_output_dir(out_dir)
    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _run(field, kind, out, size, n_samples, steps, random_state, statistics, n_targets, n_heldout,
                    device, progress, recipe_used, {"targets": user_targets, "n_true": n_true, "J": J,
                                                    "options": options, "two_level": two_level})
    finally:
        torch.set_num_threads(old_threads)


def _run(field: str, kind: str, out: Path, size: int, n_samples: int, steps: int, random_state: int,
         statistics: str, n_targets: int, n_heldout: int, device: torch.device, progress: bool,
         recipe: dict[str, Any] | None, extra: dict[str, Any]) -> dict[str, Any]:
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    others = None
    if kind == "image":
        targets = truth = extra["targets"]
    else:
        counts = [n_targets, n_heldout] + ([extra["n_true"]] if extra["n_true"] else [])
        targets, truth, *rest = _true_field_sets(field, kind, size, counts, random_state, progress, device)
        others = rest[0] if rest else None
    timings["true_fields"] = time.perf_counter() - t0
    notes = [] if (message := stationarity(targets)["message"]) is None else [message]
    for note in notes:
        warnings.warn(f"field={field!r}: {note}", NonStationaryFieldWarning, stacklevel=3)

    # The kind's settings, with the options already merged with the caller's.
    settings = {**default_synthesis_settings(kind, n_targets, statistics), "statistics_options": extra["options"] or None}
    result = synthesize(targets, statistics, n_samples=n_samples, steps=steps, random_state=random_state,
                        checkpoint=out / "synthesis.pt", device=device, progress=progress, J=extra["J"],
                        two_level=extra["two_level"], **settings)
    synth = result.fields.cpu()
    timings["synthesis"] = result.seconds
    stream = io.BytesIO()
    np.save(stream, synth.numpy(), allow_pickle=False)
    atomic_write_bytes(out / "syntheses.npy", stream.getbuffer())
    t0 = time.perf_counter()
    gauss = synthesize(targets, "gaussian", n_samples=n_samples, random_state=random_state + 1).fields
    timings["gaussian"] = time.perf_counter() - t0

    metrics = compare_fields(synth, truth, gauss, kind=kind if kind != "image" else "generic")
    if others is not None:
        # the floors: as many other true fields, and the targets themselves (syntheses from one target
        # match its moments, so they are as far from the held-out fields as it is)
        for key, fields in (("true_fields", others), ("targets", targets)):
            scored = compare_fields(fields, truth, kind=kind, n_groups=0)
            for name, entry in metrics.items():
                entry[key] = scored[name]["synthesis"]
                entry[f"relative_error_{key}"] = scored[name]["relative_error_synthesis"]
    # issue 22: the score that sees what the moments miss (None for an image: one true field)
    discrimination = discrimination_entry(synth, truth, gauss, random_state=random_state)
    if discrimination is not None:
        spread = None if others is None else discrimination_entry(others, truth, random_state=random_state)
        if spread is not None:  # how well true fields are told from true fields: the score's floor
            discrimination["true_fields"] = spread["synthesis"]
            discrimination["relative_error_true_fields"] = spread["relative_error_synthesis"]
        metrics["discrimination"] = discrimination
    figures = _figures(out, targets, synth, gauss, truth, f"{field} {size}x{size}, {statistics}")
    summary: dict[str, Any] = {
        "field": field, "size": size, "n_samples": n_samples, "n_targets": int(targets.shape[0]),
        "n_heldout": int(truth.shape[0]), "steps": steps, "steps_done": result.steps_done,
        "n_true": 0 if others is None else int(others.shape[0]), "statistics_options": extra["options"],
        "two_level": extra["two_level"],
        "warnings": notes,
        "random_state": random_state, "statistics": statistics, "match": settings["match"], "diverged": result.diverged,
        "resumed": result.resumed, "loss_history": result.loss_history, "seconds": timings, "figures": figures,
        "metrics": metrics, **({"recipe": recipe} if recipe is not None else {}),
        "discrimination_accuracy": None if discrimination is None else discrimination["synthesis"],
        "discrimination_accuracy_gaussian": None if discrimination is None else discrimination["gaussian"],
    }
    write_metrics(out, summary)
    header = (f"{field} {size}x{size}: {n_samples} syntheses of {targets.shape[0]} targets ({statistics}, "
              f"{result.steps_done} L-BFGS steps, {timings['synthesis']:.1f} s) vs {truth.shape[0]} held-out "
              f"true fields (± jackknife standard errors)"
              + (f"; true err: {others.shape[0]} other true fields scored like the syntheses; target err: the "
                 f"targets" if others is not None else "") + "\n" + "".join(f"WARNING: {note}\n" for note in notes))
    atomic_write_bytes(out / "metrics.txt", (header + _table(metrics)).encode())
    return summary
