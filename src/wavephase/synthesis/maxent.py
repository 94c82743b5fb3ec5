"""Maximum-entropy synthesis of stationary 2D fields.

Two models of a field ``x`` given one or several target realisations:

* **Gaussian** (``statistics="gaussian"``): the maximum-entropy field with the
  target's mean and power spectrum is a stationary Gaussian field; a sample is
  white noise filtered by the square root of the (target-averaged) periodogram.
  No optimisation is involved.
* **Microcanonical** (``statistics="phase-harmonics"`` or
  ``"scattering-covariance"``): starting from a sample of the Gaussian model
  (or white noise with the target's mean and variance, ``precondition=False``),
  each of ``n_samples`` fields is driven by L-BFGS (strong Wolfe line search)
  until its moments ``Phi(x)`` match the target's, minimising
  ``sum_samples ||Phi(x_i) - Phi(target)||^2``. Gradient descent from a
  high-entropy start approximates a sample of the maximum-entropy
  (microcanonical) model defined by the moments ``Phi`` (Bruna and Mallat 2019).
  Several targets are matched through their average moments (the expectations
  the model is conditioned on), one target per sample (``match="each"``), or,
  for processes symmetric under ``x -> -x``, through the average over
  sign-aligned targets (``match="sign"``).

The optimisation runs in standardised units (target mean 0, variance 1) so
that L-BFGS tolerances do not depend on the field's units. With
``precondition=True`` it runs on ``y`` with ``x = C y``, ``C`` the filter by the
targets' amplitude spectrum: white ``y`` is then a Gaussian-model sample, and
wavenumbers where the targets have (almost) no power, such as the corners of a
dealiased simulation, are neither filled with noise at the start nor able to
make the loss ill-conditioned.

Conditioning on a coarse field ``c = coarse_grain(x, f)``: the synthesised
field is parametrised as ``x = y - lift(coarse_grain(y)) + lift(c)``, a linear
map onto the affine set of fields whose low frequencies equal ``c``'s, so the
constraint holds exactly at every L-BFGS iterate without disturbing its
curvature estimates.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from wavephase.harmonics.moments import MomentStatistics, NonFiniteMomentsError
from wavephase.harmonics.scattering_covariance import ScatteringCovariance
from wavephase.harmonics.statistics import PhaseHarmonicStatistics
from wavephase.resources import check_memory, parse_memory_limit
from wavephase.runs import Checkpoint
from wavephase.synthesis.coarse import check_conditioning, lift
from wavephase.synthesis.gaussian import check_targets, gaussian_synthesis
from wavephase.synthesis.start import initial_noise, parametrisation, preconditioner
from wavephase.synthesis.two_level import STAGE_STEPS, check_two_level, pearson_gap, two_level_loss
from wavephase.validation import check_device, check_image_shape, check_positive_int, check_random_state

__all__ = ["STATISTICS", "SynthesisDivergenceWarning", "SynthesisResult", "build_statistics", "default_J",
           "synthesize"]

STATISTICS = ("phase-harmonics", "scattering-covariance", "gaussian")
_OPERATORS: dict[str, type[MomentStatistics]] = {"phase-harmonics": PhaseHarmonicStatistics,
                                                 "scattering-covariance": ScatteringCovariance}

# Copies of the samples held besides the L-BFGS history: iterate, gradient, direction, best, field (measured).
_SAMPLE_COPIES = 8


class SynthesisDivergenceWarning(UserWarning):
    """The synthesis loss became NaN or infinite; the last finite iterate was returned."""


class _NonFiniteLoss(Exception):
    """Raised inside the L-BFGS closure to abandon a step whose loss is NaN or infinite."""

    def __init__(self, value: float) -> None:
        super().__init__(value)
        self.value = value


@dataclass
class SynthesisResult:
    """What :func:`synthesize` returns, whatever its arguments.

    Attributes
    ----------
    fields : torch.Tensor
        The synthesised fields ``(n_samples, M, N)``, in the computation's dtype and device.
    loss_history : list of float
        Loss after each L-BFGS call, the first entry at the initial noise (empty for
        the Gaussian model).
    steps_done : int
        L-BFGS iterations done, those of a resumed run included.
    evaluations : int
        Loss and gradient evaluations.
    diverged : bool
        The loss became non-finite; ``fields`` is then the last finite iterate.
    resumed : bool
        The run went on from a checkpoint.
    seconds : float
        Wall-clock time of the call.
    """

    fields: torch.Tensor
    loss_history: list[float]
    steps_done: int
    evaluations: int
    diverged: bool
    resumed: bool
    seconds: float


def default_J(shape: Sequence[int]) -> int:
    """Default number of scales: ``log2(min(M, N)) - 2`` (largest wavelet 1/4 of the field), at least 1.

    Parameters
    ----------
    shape : (int, int)
        Field size.

    Returns
    -------
    int
        ``J``.
    """
    return max(1, int(math.floor(math.log2(min(shape)))) - 2)


def build_statistics(statistics: str, shape: tuple[int, int], J: int, L: int = 8, *, dn: int = 2,
                     dtype: torch.dtype = torch.float32, device: torch.device | str | None = None,
                     **kwargs: Any) -> MomentStatistics:
    """The moment operator named ``statistics`` (with ``set_reference``, ``forward``, ``loss``).

    Parameters
    ----------
    statistics : str
        ``"phase-harmonics"`` or ``"scattering-covariance"``.
    shape : (int, int)
        Field size.
    J, L : int
        Scales and orientations.
    dn : int
        Shift radius of the phase harmonic statistics.
    dtype : torch.dtype
        Filter dtype.
    device : torch.device or str, optional
        Device of the filters (the CPU by default).
    **kwargs
        Passed to the operator.

    Returns
    -------
    MomentStatistics
        The operator.
    """
    if statistics not in _OPERATORS:
        raise ValueError(f"statistics={statistics!r} is not supported; choose one of {tuple(_OPERATORS)}.")
    if statistics == "phase-harmonics":
        kwargs["dn"] = dn
    return _OPERATORS[statistics](shape, J, L, dtype=dtype, **kwargs).to(check_device(device))


def synthesize(target: Any, statistics: str = "phase-harmonics", n_samples: int = 1, steps: int = 300,
               random_state: int = 0, conditioning: Any = None, *, match: str = "average", J: int | None = None,
               L: int = 8, dn: int = 2, precondition: bool = True, statistics_options: dict[str, Any] | None = None,
               checkpoint: str | os.PathLike[str] | None = None, checkpoint_every: int = 20, history_size: int = 50,
               dtype: torch.dtype | None = None, device: torch.device | str | None = None, progress: bool = True,
               callback: Callable[[int, float], None] | None = None,
               memory_limit: int | float | str | None = None, two_level: Sequence[float] | None = None,
               two_level_steps: int = STAGE_STEPS) -> SynthesisResult:
    """Maximum-entropy synthesis of fields with the target's statistics.

    Parameters
    ----------
    target : torch.Tensor or array-like or list of them
        One field ``(M, N)`` or several ``(n, M, N)`` realisations of the same
        process; their moments are averaged.
    statistics : str
        ``"phase-harmonics"`` (:class:`~wavephase.harmonics.PhaseHarmonicStatistics`),
        ``"scattering-covariance"`` (:class:`~wavephase.harmonics.ScatteringCovariance`)
        or ``"gaussian"`` (exact Gaussian sample, no optimisation).
    n_samples : int
        Number of fields, optimised together in one batch, each matching the
        target moments on its own.
    steps : int
        Maximum number of L-BFGS iterations (each costs about 1.2 gradient evaluations).
    random_state : int
        Seed of the initial white noise (a private generator; the global RNG is untouched).
    conditioning : torch.Tensor, optional
        Coarse field ``coarse_grain(x, 2**J_c)`` of shape ``(m, n)`` (shared by
        all samples) or ``(n_samples, m, n)``: the samples' low frequencies are
        constrained to it exactly.
    match : str
        ``"average"``: every sample matches the moments averaged over the
        targets. ``"each"``: sample ``i`` matches the moments of target
        ``i mod n`` alone (one microcanonical ensemble per target); this keeps
        the spread of per-field quantities, e.g. the magnetisation of Ising
        fields, which averaging over ``+-`` symmetric targets would cancel.
        ``"sign"``: for processes symmetric under ``x -> -x`` (Ising spins):
        each target is multiplied by the sign of its mean before the moments
        are averaged, so that many targets can be averaged without cancelling
        the magnetisation, and each sample gets a random global sign at the
        end. Not combinable with ``conditioning``.
    J : int, optional
        Number of scales; ``log2(min(M, N)) - 2`` by default.
    L : int
        Number of orientations.
    dn : int
        Shift radius of the phase harmonic statistics.
    precondition : bool
        Optimise ``y`` with ``x = C y``, ``C`` the filter by the targets'
        amplitude spectrum (zero at ``k = 0`` unless ``match="each"``, so that the
        samples' mean is the targets'): the white-noise start is then a sample of the Gaussian model,
        and wavenumbers where the targets have no power (a dealiased simulation's
        dissipation range and corners) stay as empty as theirs instead of making
        the loss ill-conditioned (256x256 vorticity: essential). ``False``
        starts from white noise; it converges faster for +-1 spins, whose sharp
        edges need the high frequencies that ``C`` damps.
    statistics_options : dict, optional
        Extra keyword arguments of the statistics operator.
    checkpoint : path-like, optional
        File (a :class:`~wavephase.runs.Checkpoint`) where the iterate, the L-BFGS
        state and the step count are saved atomically every ``checkpoint_every``
        iterations; a rerun with the same arguments, targets and conditioning
        resumes from it (and returns at once if it had finished).
    checkpoint_every : int
        Iterations per L-BFGS call (also the checkpoint and progress period).
        The result does not depend on whether a checkpoint file is used.
    history_size : int
        L-BFGS memory.
    dtype : torch.dtype, optional
        Computation dtype; the target's by default.
    device : torch.device or str, optional
        Computation device; the target's by default.
    progress : bool
        Show a tqdm progress bar.
    callback : callable, optional
        ``callback(steps_done, loss)`` after each L-BFGS call (e.g. to log).
    memory_limit : int, float or str, optional
        Largest memory the synthesis may need (bytes, or e.g. ``"8GB"``): the samples,
        the L-BFGS history and the moments with their gradient grow with
        ``n_samples`` and the field size. Default ``$WAVEPHASE_MEMORY_LIMIT``, else a
        quarter of the memory available (see :mod:`wavephase.resources`).
    two_level : sequence of float, optional
        Weights of the two-level moment (:mod:`wavephase.synthesis.two_level`) in
        successive stages after the first ``steps`` iterations, e.g.
        ``(0.01, 0.1, 1, 10)``: each stage adds ``w (sqrt g(x) - sqrt g(target))^2``
        per sample to the loss (``g(target)`` averaged over the targets) and restarts
        L-BFGS from the previous stage's fields. For two-valued fields (spins), whose
        syntheses are otherwise grey.
    two_level_steps : int
        L-BFGS iterations per ``two_level`` stage.

    Returns
    -------
    SynthesisResult
        ``result.fields`` holds the samples; the other fields say how the run went.

    Raises
    ------
    ValueError
        On constant, non-finite or too small targets, targets of different
        shapes, an unknown ``statistics``, a conditioning field of the wrong
        size; :class:`~wavephase.exceptions.StaleFileError` for a checkpoint
        written with other arguments or targets, and
        :class:`~wavephase.exceptions.ChecksumError` for a corrupt one.
    ResourceLimitError
        When the synthesis would need more memory than ``memory_limit``, before
        anything large is allocated.

    Warns
    -----
    SynthesisDivergenceWarning
        If the loss becomes NaN or infinite; the lowest-loss finite iterate is returned.

    Shapes
    ------
    target: (M, N) or (n, M, N) -> fields (n_samples, M, N)
    """
    t0 = time.perf_counter()
    t = check_targets(target)
    n_samples = check_positive_int(n_samples, "n_samples")
    steps = check_positive_int(steps, "steps", minimum=0)
    random_state = check_random_state(random_state)
    checkpoint_every = check_positive_int(checkpoint_every, "checkpoint_every")
    history_size = check_positive_int(history_size, "history_size")
    two_level = check_two_level(two_level, two_level_steps)
    if match not in ("average", "each", "sign"):
        raise ValueError(f"match={match!r} is not supported; use 'average', 'each' or 'sign'.")
    if statistics not in STATISTICS:
        raise ValueError(f"statistics={statistics!r} is not supported; choose one of {STATISTICS}.")
    dtype = t.dtype if dtype is None else dtype
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype}.")
    device = t.device if device is None else check_device(device)
    t = t.to(device=device, dtype=dtype)
    M, N = t.shape[-2:]
    J = default_J((M, N)) if J is None else J
    check_image_shape((M, N), J, "target shape")
    cond = None if conditioning is None else check_conditioning(conditioning, (M, N), n_samples)
    memory_limit = parse_memory_limit(memory_limit)
    history_copies = 0 if statistics == "gaussian" else 2 * history_size
    samples_bytes = n_samples * M * N * t.element_size() * (history_copies + _SAMPLE_COPIES)
    check_memory(samples_bytes, f"the synthesis of {n_samples} field(s) of {M}x{N}", device, memory_limit,
                 "lower n_samples (run several syntheses) or history_size")
    if match == "sign":
        if cond is not None:
            raise ValueError("match='sign' flips the sign of the samples, which the coarse conditioning field "
                             "fixes; use match='average' with conditioning.")
        t = t * torch.where(t.mean((-2, -1), keepdim=True) < 0, -1.0, 1.0).to(t)

    if statistics == "gaussian":
        x = gaussian_synthesis(t, n_samples, random_state, cond)
        return SynthesisResult(x, [], 0, 0, False, False, time.perf_counter() - t0)

    # standardised units: L-BFGS tolerances and step sizes are then unit-free
    mu = t.double().mean()
    sigma = t.double().var((-2, -1), unbiased=False).mean().sqrt()
    ts = ((t.double() - mu) / sigma).to(dtype)
    stats = build_statistics(statistics, (M, N), J, L, dn=dn, dtype=dtype, device=device,
                             memory_limit=memory_limit, **(statistics_options or {}))
    check_memory(samples_bytes + stats.memory_estimate(n_samples, dtype), f"the synthesis of {n_samples} field(s) "
                 f"of {M}x{N} with {statistics} ({J} scales, {L} angles)", device, memory_limit,
                 "lower n_samples (run several syntheses), J or L")
    stats.set_reference(ts)
    target_moments = None
    if match == "each":
        with torch.no_grad():
            per_target = stats(ts)
        index = torch.arange(n_samples, device=device) % ts.shape[0]
        target_moments = {k: v[index] for k, v in per_target.items()}
    low, factor = None, 1
    if cond is not None:
        low = lift(((cond.to(device=device, dtype=torch.float64) - mu) / sigma).to(dtype), (M, N))
        factor = M // cond.shape[-2]
    colour = preconditioner(ts, fix_mean=match != "each") if precondition else None
    field = parametrisation(colour, low, factor)

    noise, signs = initial_noise(random_state, n_samples, (M, N), match)
    y = nn.Parameter(noise.to(device=device, dtype=dtype))

    def optimizer() -> torch.optim.LBFGS:
        return torch.optim.LBFGS([y], lr=1.0, max_iter=checkpoint_every, max_eval=4 * checkpoint_every,
                                 tolerance_grad=0.0, tolerance_change=1e-12, history_size=history_size,
                                 line_search_fn="strong_wolfe")

    opt = optimizer()
    settings = {"statistics": statistics, "n_samples": n_samples, "random_state": random_state, "J": J, "L": L,
                "dn": dn, "match": match, "dtype": str(dtype), "options": repr(statistics_options),
                "operator": repr(stats), "every": checkpoint_every, "history": history_size,
                "precondition": bool(precondition)}
    if two_level:
        settings["two_level"] = [list(two_level), two_level_steps]
    # stage 0 matches the moments; stage k > 0 adds the two-level term with weight two_level[k - 1]
    weights, budgets = (0.0, *two_level), (steps, *[two_level_steps] * len(two_level))
    target_gap = pearson_gap(ts.double()).mean() if two_level else None
    ckpt = Checkpoint(checkpoint, settings, ts, cond, what="synthesis checkpoint", on_mismatch="raise")
    done, stage, stage_done, history, evaluations, resumed = 0, 0, 0, [], 0, False
    state = ckpt.load()
    if state is not None:
        with torch.no_grad():
            y.copy_(state["y"].to(y))
        opt.load_state_dict(state["optimizer"])
        done, history, evaluations = int(state["steps_done"]), list(state["loss_history"]), int(state["evaluations"])
        stage, stage_done = int(state.get("stage", 0)), int(state.get("stage_done", done))
        resumed = True

    best: dict[str, Any] = {"loss": math.inf, "x": None}

    def objective(x: torch.Tensor) -> torch.Tensor:
        loss = stats.loss(x, target_moments)
        return loss + two_level_loss(x, target_gap, weights[stage]) if weights[stage] else loss

    def closure() -> torch.Tensor:
        nonlocal evaluations
        opt.zero_grad()
        x = field(y)
        evaluations += 1
        try:
            loss = objective(x)
        except NonFiniteMomentsError:
            raise _NonFiniteLoss(math.inf) from None
        value = float(loss.detach())
        if not math.isfinite(value):
            # the strong Wolfe line search cannot bracket a NaN: leave L-BFGS at once
            raise _NonFiniteLoss(value)
        loss.backward()
        if value < best["loss"]:
            best["loss"], best["x"] = value, x.detach().clone()
        return loss

    def current_loss() -> float:
        with torch.no_grad():
            try:
                return float(objective(field(y)))
            except NonFiniteMomentsError:
                return math.inf

    if not history:
        history.append(current_loss())
    diverged = False
    total = sum(budgets)
    bar = tqdm(total=total, initial=min(done, total), desc=f"synthesis {statistics}", unit="it") if progress else None
    try:
        while stage < len(budgets):
            if stage_done >= budgets[stage]:
                # a new objective: the last one's curvature pairs and best iterate do not hold for it
                stage, stage_done, opt = stage + 1, 0, optimizer()
                best["loss"] = math.inf
                continue
            y_before = y.detach().clone()
            n_before = int(opt.state[y].get("n_iter", 0)) if y in opt.state else 0
            opt.param_groups[0]["max_iter"] = min(checkpoint_every, budgets[stage] - stage_done)
            try:
                opt.step(closure)
                value = current_loss()
            except _NonFiniteLoss as err:
                value = err.value
            made = int(opt.state[y].get("n_iter", 0)) - n_before
            if not math.isfinite(value) or not bool(torch.isfinite(y).all()):
                diverged = True
                with torch.no_grad():
                    y.copy_(y_before)
                warnings.warn(f"synthesis diverged (loss {value}) after {done} L-BFGS iterations; returning the "
                              f"last finite iterate (loss {best['loss']:.4g}).", SynthesisDivergenceWarning,
                              stacklevel=2)
                break
            done, stage_done = done + max(made, 1), stage_done + max(made, 1)
            history.append(value)
            if bar is not None:
                bar.update(min(done, total) - bar.n)
                bar.set_postfix(loss=f"{value:.3e}")
            stalled = made < opt.param_groups[0]["max_iter"] and abs(history[-2] - value) <= 1e-7 * abs(history[-2])
            last = stage == len(budgets) - 1
            if (stalled or value == 0.0) and not last:
                stage_done = budgets[stage]  # converged: on to the next stage (saved, so a resumed run does too)
            ckpt.save({"y": y.detach().cpu(), "optimizer": opt.state_dict(), "steps_done": done,
                       "loss_history": history, "evaluations": evaluations, "stage": stage,
                       "stage_done": stage_done})
            if callback is not None:
                callback(done, value)
            if (stalled or value == 0.0) and last:
                break
    finally:
        if bar is not None:
            bar.close()

    with torch.no_grad():
        if diverged and best["x"] is not None:
            xs = best["x"].double()
        else:
            # in float64, so that the round-off of the colouring FFTs does not fill wavenumbers where the
            # targets hold no power (float32: 12x the truth's round-off power near 128x128 vorticity's Nyquist)
            field64 = parametrisation(None if colour is None else colour.double(), None if low is None
                                       else low.double(), factor)
            xs = field64(y.detach().double())
        x = xs * sigma + mu
        if signs is not None:
            x = x * signs.to(x.device)
    return SynthesisResult(x.to(dtype), history, done, evaluations, diverged, resumed, time.perf_counter() - t0)
