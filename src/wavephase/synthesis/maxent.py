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

import hashlib
import math
import os
import warnings
from typing import Any, Callable, Sequence

import torch
from torch import nn

from wavephase.checkpoint import load_checkpoint, save_checkpoint
from wavephase.validation import as_float_tensor, check_image_shape, check_positive_int, check_real_tensor

__all__ = [
    "STATISTICS",
    "SynthesisDivergenceWarning",
    "build_statistics",
    "coarse_grain",
    "default_J",
    "gaussian_synthesis",
    "lift",
    "power_spectrum_2d",
    "synthesize",
]

STATISTICS = ("phase-harmonics", "scattering-covariance", "gaussian")

# power floor of the preconditioner, relative to the mean power
_PRECONDITION_FLOOR = 1e-6


class SynthesisDivergenceWarning(UserWarning):
    """The synthesis loss became NaN or infinite; the last finite iterate was returned."""


class _NonFiniteLoss(Exception):
    """Raised inside the L-BFGS closure to abandon a step whose loss is NaN or infinite."""

    def __init__(self, value: float) -> None:
        super().__init__(value)
        self.value = value


# --------------------------------------------------------------------------- coarse graining
def _band(size: int, coarse: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices, on the fine and the coarse grid, of the frequencies ``|k| < coarse / 2``."""
    half = (coarse - 1) // 2  # the coarse Nyquist frequency is dropped so that lift is real
    k = torch.arange(-half, half + 1, device=device)
    return k % size, k % coarse


def _check_factor(shape: Sequence[int], factor: int, name: str = "factor") -> tuple[int, int]:
    factor = check_positive_int(factor, name)
    M, N = int(shape[-2]), int(shape[-1])
    if M % factor or N % factor:
        raise ValueError(f"{name}={factor} must divide the field size {(M, N)}; crop or pad the field "
                         f"to a multiple of {factor}.")
    if M // factor < 2 or N // factor < 2:
        raise ValueError(f"{name}={factor} leaves a coarse grid smaller than 2x2 for a field of size {(M, N)}; "
                         f"use a smaller factor.")
    return M // factor, N // factor


def coarse_grain(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Fourier low-pass then subsample by ``factor``.

    Keeps the Fourier coefficients of frequencies ``|k_i| < m_i / 2`` (``m`` the
    coarse size, so the coarse Nyquist frequency is dropped and the result is
    real), and returns them on the coarse grid, scaled so that a constant field
    keeps its value. It is the local average of ``x`` over ``factor x factor``
    blocks with an ideal (sinc) kernel.

    Parameters
    ----------
    x : torch.Tensor
        Real fields, periodic.
    factor : int
        Subsampling factor; must divide both sides (e.g. ``2**J_c``).

    Returns
    -------
    torch.Tensor
        Coarse fields.

    Shapes
    ------
    x: (..., M, N) -> (..., M / factor, N / factor)
    """
    check_real_tensor(x, "x", min_ndim=2)
    m, n = _check_factor(x.shape, factor)
    M, N = x.shape[-2:]
    rb, rc = _band(M, m, x.device)
    cb, cc = _band(N, n, x.device)
    xf = torch.fft.fft2(x)
    small = xf.new_zeros(*x.shape[:-2], m, n)
    small[..., rc[:, None], cc[None, :]] = xf[..., rb[:, None], cb[None, :]]
    return torch.fft.ifft2(small).real * (m * n / (M * N))


def lift(c: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Band-limited interpolation of a coarse field onto the fine grid (right inverse of :func:`coarse_grain`).

    ``coarse_grain(lift(c, shape), factor) == c`` for every ``c`` without
    energy at the coarse Nyquist frequency (in particular for any output of
    :func:`coarse_grain`).

    Parameters
    ----------
    c : torch.Tensor
        Real coarse fields.
    shape : (int, int)
        Fine grid size, a multiple of the coarse size.

    Returns
    -------
    torch.Tensor
        Fine fields with no energy at frequencies outside the coarse band.

    Shapes
    ------
    c: (..., m, n) -> (..., M, N)
    """
    check_real_tensor(c, "c", min_ndim=2)
    M, N = int(shape[0]), int(shape[1])
    m, n = c.shape[-2:]
    if M % m or N % n or M // m != N // n:
        raise ValueError(f"coarse field of size {(m, n)} does not divide the fine size {(M, N)} by one common "
                         f"factor; pass coarse_grain(x, factor) of a field of size {(M, N)}.")
    rb, rc = _band(M, m, c.device)
    cb, cc = _band(N, n, c.device)
    cf = torch.fft.fft2(c)
    big = cf.new_zeros(*c.shape[:-2], M, N)
    big[..., rb[:, None], cb[None, :]] = cf[..., rc[:, None], cc[None, :]] * (M * N / (m * n))
    return torch.fft.ifft2(big).real


# --------------------------------------------------------------------------- Gaussian model
def power_spectrum_2d(x: torch.Tensor) -> torch.Tensor:
    """Periodogram ``|FFT(x - <x>)|^2 / (M N)`` averaged over the leading dimensions.

    Parameters
    ----------
    x : torch.Tensor
        Real fields.

    Returns
    -------
    torch.Tensor
        Power at each 2D frequency (FFT order); sums to the spatial variance.

    Shapes
    ------
    x: (..., M, N) -> (M, N)
    """
    check_real_tensor(x, "x", min_ndim=2)
    M, N = x.shape[-2:]
    xc = x - x.mean((-2, -1), keepdim=True)
    p = torch.fft.fft2(xc).abs().square() / (M * N)
    return p.reshape(-1, M, N).mean(0)


def gaussian_synthesis(target: torch.Tensor, n_samples: int = 1, seed: int = 0,
                       conditioning: torch.Tensor | None = None) -> torch.Tensor:
    """Samples of the stationary Gaussian field with the target's mean and power spectrum.

    White noise filtered by ``sqrt(P)`` (``P`` the target periodogram, averaged
    over the targets): its expected periodogram is exactly ``P``. With
    ``conditioning``, the low frequencies are replaced by the coarse field's,
    which is the exact conditional sample since the Fourier coefficients of a
    periodic stationary Gaussian field are independent.

    Parameters
    ----------
    target : torch.Tensor
        One or several target fields.
    n_samples : int
        Number of samples.
    seed : int
        Seed of the white noise (a private generator; the global RNG is untouched).
    conditioning : torch.Tensor, optional
        Coarse field from :func:`coarse_grain`, shared by all samples or one per sample.

    Returns
    -------
    torch.Tensor
        Samples, same dtype and device as ``target``.

    Shapes
    ------
    target: (M, N) or (n, M, N); conditioning: (m, n) or (n_samples, m, n) -> (n_samples, M, N)
    """
    t = _as_targets(target)
    n_samples = check_positive_int(n_samples, "n_samples")
    M, N = t.shape[-2:]
    gen = torch.Generator().manual_seed(int(seed))
    noise = torch.randn(n_samples, M, N, generator=gen, dtype=torch.float64).to(t.device)
    amp = power_spectrum_2d(t.double()).sqrt()
    x = torch.fft.ifft2(torch.fft.fft2(noise) * amp).real + t.double().mean()
    if conditioning is not None:
        c = _check_conditioning(conditioning, (M, N), n_samples).to(x)
        factor = M // c.shape[-2]
        x = x - lift(coarse_grain(x, factor), (M, N)) + lift(c, (M, N))
    return x.to(t.dtype)


# --------------------------------------------------------------------------- input checks
def _as_targets(target: Any) -> torch.Tensor:
    """Validate target field(s) and return them as ``(n, M, N)``."""
    if isinstance(target, (list, tuple)):
        if not target:
            raise ValueError("target is an empty list; pass one field (M, N) or a stack (n, M, N).")
        arrays = [as_float_tensor(t, f"target[{i}]") for i, t in enumerate(target)]
        shapes = {tuple(a.shape) for a in arrays}
        if len(shapes) > 1:
            raise ValueError(f"the target fields have different shapes {sorted(shapes)}; crop them to one "
                             f"common size (M, N) before synthesis.")
        t = torch.stack([a.to(arrays[0].dtype) for a in arrays])
    else:
        t = as_float_tensor(target, "target")
    check_real_tensor(t, "target")
    if t.ndim == 2:
        t = t[None]
    if t.ndim != 3:
        raise ValueError(f"target must have shape (M, N) or (n, M, N), got {tuple(t.shape)}; "
                         f"reshape a batch of fields to (n, M, N).")
    if min(t.shape[-2:]) < 8:
        raise ValueError(f"target of size {tuple(t.shape[-2:])} is too small; synthesis needs fields of at "
                         f"least 8 x 8 pixels.")
    var = t.double().var((-2, -1), unbiased=False)
    scale = t.double().abs().amax((-2, -1)).clamp_min(1e-300)
    if bool((var <= (1e-12 * scale) ** 2).any()):
        bad = [int(i) for i in torch.nonzero(var <= (1e-12 * scale) ** 2).flatten()]
        raise ValueError(f"target field(s) {bad} are constant (zero variance); a texture model needs "
                         f"fluctuations.")
    return t


def _check_conditioning(c: Any, shape: tuple[int, int], n_samples: int) -> torch.Tensor:
    c = as_float_tensor(c, "conditioning")
    if c.ndim not in (2, 3):
        raise ValueError(f"conditioning must have shape (m, n) or (n_samples, m, n), got {tuple(c.shape)}.")
    if c.ndim == 3 and c.shape[0] not in (1, n_samples):
        raise ValueError(f"conditioning holds {c.shape[0]} coarse fields for n_samples={n_samples}; pass one "
                         f"shared field (m, n) or one per sample.")
    M, N = shape
    m, n = c.shape[-2:]
    factor = M // m if m else 0
    if not m or not n or M % m or N % n or M // m != N // n or factor < 2 or factor & (factor - 1):
        raise ValueError(f"conditioning has size {(m, n)}, which is not the target size {(M, N)} divided by "
                         f"one power of two >= 2; build it with coarse_grain(field, 2**J_c).")
    return c


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
                     dtype: torch.dtype = torch.float32,
                     device: torch.device | str | None = None, **kwargs: Any) -> nn.Module:
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
        Filter device.
    **kwargs
        Passed to the operator.

    Returns
    -------
    torch.nn.Module
        The operator.
    """
    if statistics == "phase-harmonics":
        from wavephase.harmonics.statistics import PhaseHarmonicStatistics

        return PhaseHarmonicStatistics(shape, J, L, dn=dn, dtype=dtype, device=device, **kwargs)
    if statistics == "scattering-covariance":
        from wavephase.harmonics.scattering_covariance import ScatteringCovariance

        return ScatteringCovariance(shape, J, L, dtype=dtype, device=device, **kwargs)
    raise ValueError(f"statistics={statistics!r} is not supported; choose one of {STATISTICS}.")


def _fingerprint(parts: dict[str, Any], tensors: Sequence[torch.Tensor | None]) -> str:
    h = hashlib.sha256(repr(sorted(parts.items())).encode())
    for t in tensors:
        if t is not None:
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


# --------------------------------------------------------------------------- microcanonical synthesis
def synthesize(target: Any, statistics: str = "phase-harmonics", n_samples: int = 1, steps: int = 300,
               seed: int = 0, conditioning: Any = None, *, match: str = "average", J: int | None = None,
               L: int = 8, dn: int = 2,
               precondition: bool = True, statistics_options: dict[str, Any] | None = None, checkpoint: str | os.PathLike[str] | None = None,
               checkpoint_every: int = 20, history_size: int = 50, dtype: torch.dtype | None = None,
               device: torch.device | str | None = None, progress: bool = True, return_info: bool = False,
               callback: Callable[[int, float], None] | None = None,
               ) -> torch.Tensor | tuple[torch.Tensor, dict[str, Any]]:
    """Maximum-entropy synthesis of fields with the target's statistics.

    Parameters
    ----------
    target : torch.Tensor or array-like or list of them
        One field ``(M, N)`` or several ``(n, M, N)`` realisations of the same
        process; their moments are averaged.
    statistics : str
        ``"phase-harmonics"`` (:class:`~wavephase.harmonics.PhaseHarmonicStatistics`),
        ``"scattering-covariance"`` (:class:`~wavephase.harmonics.scattering_covariance.ScatteringCovariance`)
        or ``"gaussian"`` (exact Gaussian sample, no optimisation).
    n_samples : int
        Number of fields, optimised together in one batch, each matching the
        target moments on its own.
    steps : int
        Maximum number of L-BFGS iterations (each costs about 1.2 gradient evaluations).
    seed : int
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
        amplitude spectrum (power floored at ``1e-6`` of its mean): the white-noise
        start is then a sample of the Gaussian model, and directions where the
        targets have almost no power (a dealiased simulation's corners) no longer
        make the loss ill-conditioned (256x256 vorticity: essential). ``False``
        starts from white noise; it converges faster for +-1 spins, whose sharp
        edges need the high frequencies that ``C`` damps.
    statistics_options : dict, optional
        Extra keyword arguments of the statistics operator.
    checkpoint : path-like, optional
        File where the iterate, the L-BFGS state and the step count are saved
        atomically every ``checkpoint_every`` iterations; a rerun with the same
        arguments resumes from it (and returns at once if it had finished).
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
    return_info : bool
        Also return a dict with ``loss_history`` (loss after each L-BFGS call,
        the first entry at the initial noise), ``steps_done``, ``evaluations``,
        ``diverged``, ``resumed``, ``seconds``.
    callback : callable, optional
        ``callback(steps_done, loss)`` after each L-BFGS call (e.g. to log).

    Returns
    -------
    torch.Tensor or (torch.Tensor, dict)
        Synthesised fields (and the info dict when ``return_info``).

    Raises
    ------
    ValueError
        On constant, non-finite or too small targets, targets of different
        shapes, an unknown ``statistics``, a conditioning field of the wrong
        size, or a checkpoint written with other arguments.

    Warns
    -----
    SynthesisDivergenceWarning
        If the loss becomes NaN or infinite; the lowest-loss finite iterate is returned.

    Shapes
    ------
    target: (M, N) or (n, M, N) -> (n_samples, M, N)
    """
    import time

    t0 = time.perf_counter()
    t = _as_targets(target)
    n_samples = check_positive_int(n_samples, "n_samples")
    steps = check_positive_int(steps, "steps", minimum=0)
    checkpoint_every = check_positive_int(checkpoint_every, "checkpoint_every")
    history_size = check_positive_int(history_size, "history_size")
    if match not in ("average", "each", "sign"):
        raise ValueError(f"match={match!r} is not supported; use 'average', 'each' or 'sign'.")
    if statistics not in STATISTICS:
        raise ValueError(f"statistics={statistics!r} is not supported; choose one of {STATISTICS}.")
    dtype = t.dtype if dtype is None else dtype
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype}.")
    device = t.device if device is None else torch.device(device)
    t = t.to(device=device, dtype=dtype)
    M, N = t.shape[-2:]
    J = default_J((M, N)) if J is None else J
    check_image_shape((M, N), J, "target shape")
    cond = None if conditioning is None else _check_conditioning(conditioning, (M, N), n_samples)
    if match == "sign":
        if cond is not None:
            raise ValueError("match='sign' flips the sign of the samples, which the coarse conditioning field "
                             "fixes; use match='average' with conditioning.")
        t = t * torch.where(t.mean((-2, -1), keepdim=True) < 0, -1.0, 1.0).to(t)

    if statistics == "gaussian":
        x = gaussian_synthesis(t, n_samples, seed, cond)
        info = {"loss_history": [], "steps_done": 0, "evaluations": 0, "diverged": False, "resumed": False,
                "seconds": time.perf_counter() - t0}
        return (x, info) if return_info else x

    # standardised units: L-BFGS tolerances and step sizes are then unit-free
    mu = t.double().mean()
    sigma = t.double().var((-2, -1), unbiased=False).mean().sqrt()
    ts = ((t.double() - mu) / sigma).to(dtype)
    stats = build_statistics(statistics, (M, N), J, L, dn=dn, dtype=dtype, device=device,
                             **(statistics_options or {}))
    stats.set_reference(ts)
    target_moments = None
    if match == "each":
        with torch.no_grad():
            per_target = stats(ts)
        index = torch.arange(n_samples, device=device) % ts.shape[0]
        target_moments = {k: v[index] for k, v in per_target.items()}

    low = None
    factor = 1
    if cond is not None:
        cs = ((cond.to(device=device, dtype=torch.float64) - mu) / sigma).to(dtype)
        factor = M // cs.shape[-2]
        low = lift(cs, (M, N))

    colour = None
    if precondition:
        # amplitude spectrum of the targets (unit mean power; the mean stays free)
        power = power_spectrum_2d(ts.double())
        colour = (power + _PRECONDITION_FLOOR * power.mean()).sqrt()
        colour = colour / colour.square().mean().sqrt()
        colour[0, 0] = 1.0
        colour = colour.to(device=device, dtype=dtype)

    def field(y: torch.Tensor) -> torch.Tensor:
        if colour is not None:
            y = torch.fft.ifft2(torch.fft.fft2(y) * colour).real
        if low is None:
            return y
        return y - lift(coarse_grain(y, factor), (M, N)) + low

    gen = torch.Generator().manual_seed(int(seed))
    noise = torch.randn(n_samples, M, N, generator=gen, dtype=torch.float64)
    noise = (noise - noise.mean((-2, -1), keepdim=True)) / noise.std((-2, -1), unbiased=False, keepdim=True)
    y = nn.Parameter(noise.to(device=device, dtype=dtype))
    # drawn now so that the initial noise does not depend on match
    signs = (2.0 * torch.randint(0, 2, (n_samples, 1, 1), generator=gen, dtype=torch.float64) - 1.0
             if match == "sign" else None)

    opt = torch.optim.LBFGS([y], lr=1.0, max_iter=checkpoint_every, max_eval=4 * checkpoint_every,
                            tolerance_grad=0.0, tolerance_change=1e-12, history_size=history_size,
                            line_search_fn="strong_wolfe")
    fp = _fingerprint({"statistics": statistics, "n_samples": n_samples, "seed": int(seed), "J": J, "L": L,
                       "dn": dn, "match": match, "dtype": str(dtype), "opts": repr(statistics_options), "operator": repr(stats), "every": checkpoint_every,
                       "history": history_size, "precondition": precondition}, [ts, cond])
    done, history, evaluations, resumed = 0, [], 0, False
    if checkpoint is not None:
        state = load_checkpoint(checkpoint)
        if state is not None:
            if state.get("fingerprint") != fp:
                raise ValueError(f"checkpoint {checkpoint} was written by a synthesis with other arguments "
                                 f"(target, statistics, n_samples, seed, J, L, dn, dtype or conditioning); delete "
                                 f"it or pass another checkpoint path.")
            with torch.no_grad():
                y.copy_(state["y"].to(y))
            opt.load_state_dict(state["optimizer"])
            done, history, evaluations = int(state["steps_done"]), list(state["loss_history"]), int(state["evaluations"])
            resumed = True

    best: dict[str, Any] = {"loss": math.inf, "x": None}

    def closure() -> torch.Tensor:
        nonlocal evaluations
        opt.zero_grad()
        x = field(y)
        loss = stats.loss(x, target_moments)
        value = float(loss.detach())
        if math.isfinite(value):
            loss.backward()
            if value < best["loss"]:
                best["loss"], best["x"] = value, x.detach().clone()
        evaluations += 1
        if not math.isfinite(value):
            # the strong Wolfe line search cannot bracket a NaN: leave L-BFGS at once
            raise _NonFiniteLoss(value)
        return loss

    def current_loss() -> float:
        with torch.no_grad():
            return float(stats.loss(field(y), target_moments))

    if not history:
        history.append(current_loss())
    diverged = False
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, initial=min(done, steps), desc=f"synthesis {statistics}", unit="it")
    try:
        while done < steps:
            y_before = y.detach().clone()
            n_before = int(opt.state[y].get("n_iter", 0)) if y in opt.state else 0
            opt.param_groups[0]["max_iter"] = min(checkpoint_every, steps - done)
            try:
                opt.step(closure)
                value = current_loss()
            except _NonFiniteLoss as err:
                value = err.value
            n_after = int(opt.state[y].get("n_iter", 0))
            made = n_after - n_before
            if not math.isfinite(value) or not bool(torch.isfinite(y).all()):
                diverged = True
                with torch.no_grad():
                    y.copy_(y_before)
                warnings.warn(f"synthesis diverged (loss {value}) after {done} L-BFGS iterations; returning the "
                              f"last finite iterate (loss {best['loss']:.4g}).", SynthesisDivergenceWarning,
                              stacklevel=2)
                break
            done += max(made, 1)
            history.append(value)
            if bar is not None:
                bar.update(min(done, steps) - bar.n)
                bar.set_postfix(loss=f"{value:.3e}")
            if checkpoint is not None:
                save_checkpoint({"fingerprint": fp, "y": y.detach().cpu(), "optimizer": opt.state_dict(),
                                 "steps_done": done, "loss_history": history, "evaluations": evaluations}, checkpoint)
            if callback is not None:
                callback(done, value)
            stalled = made < opt.param_groups[0]["max_iter"] and abs(history[-2] - value) <= 1e-7 * abs(history[-2])
            if stalled or value == 0.0:
                break
    finally:
        if bar is not None:
            bar.close()

    with torch.no_grad():
        if diverged and best["x"] is not None:
            xs = best["x"]
        else:
            xs = field(y.detach())
        x = xs.double() * sigma + mu
        if signs is not None:
            x = x * signs.to(x.device)
        x = x.to(dtype)
    info = {"loss_history": history, "steps_done": done, "evaluations": evaluations, "diverged": diverged,
            "resumed": resumed, "seconds": time.perf_counter() - t0}
    return (x, info) if return_info else x
