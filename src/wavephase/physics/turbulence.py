"""Samples of forced 2D turbulence: spin-up, sampling, and a resumable, cached simulation.

:func:`turbulence2d` runs :class:`~wavephase.physics.turbulence_solver.TurbulenceSolver`
(see its module for the equations and the scheme) from random initial
conditions through a spin-up, mostly on a grid of half the side, and samples
each simulation at regular times. With ``cache=True`` the fields are kept in
the library's cache and the simulation saves its state every ~30 s, both
through :class:`wavephase.runs.Checkpoint`: a killed run resumes where it
stopped, and a corrupt or stale file is recomputed, never reused.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from wavephase.data.cache import cache_dir
from wavephase.physics.turbulence_solver import TurbulenceSolver, check_real_number
from wavephase.resources import check_memory, parse_memory_limit
from wavephase.runs import Checkpoint, fingerprint
from wavephase.validation import check_device, check_positive_int, check_random_state

__all__ = ["default_hyperviscosity", "turbulence2d"]

# Seconds between two checkpoints of a cached run.
_CHECKPOINT_SECONDS = 30.0

# Bump when the numerics change, so that cached fields of an older scheme are not reused.
_CACHE_VERSION = 1

# Grid-sized arrays of the simulation's dtype held per chain by the solver and its RK4 stages
# (measured: about 290 bytes per grid point and chain in float64).
_SOLVER_PLANES = 40
# float32 copies of the samples: the list of samples, their stack, the result.
_SAMPLE_COPIES = 3


def default_hyperviscosity(size: int, order: int = 4, cutoff_damping: float = 20.0) -> float:
    """Hyperviscosity whose damping rate at the dealiasing cutoff ``k = size / 3`` is ``cutoff_damping``.

    Parameters
    ----------
    size : int
        Grid side ``n``.
    order : int
        Order ``p`` of ``(-Laplacian)^p``.
    cutoff_damping : float
        Damping rate ``nu_p (n / 3)^(2 p)`` at the cutoff, in inverse time units.

    Returns
    -------
    float
        ``nu_p``.
    """
    return cutoff_damping / (size / 3.0) ** (2 * order)


def _levels(size: int, coarse_spinup: bool, spinup_time: float) -> list[tuple[int, float]]:
    # Vortices form at scales far above the grid scale, so most of the spin-up runs on a
    # grid of half the side (about 8x cheaper per time unit: 4x fewer points, 2x larger
    # dt); the last stretch on the full grid regrows the finest filaments, which takes a
    # few enstrophy-cascade times. Below 128 points the vortex cores themselves are
    # under-resolved (flatness ~4 instead of ~10 at 64^2), hence the floor.
    if coarse_spinup and size // 2 >= 128 and (size // 2) % 2 == 0:
        return [(size // 2, 0.95 * spinup_time), (size, 0.05 * spinup_time)]
    return [(size, spinup_time)]


def turbulence2d(size: int, n_samples: int, random_state: int = 0, *, forcing_wavenumber: float = 4.0,
                 forcing_width: float = 1.0, injection_rate: float = 0.01, drag: float = 0.01,
                 hyperviscosity: float | None = None, hyperviscosity_order: int = 4,
                 initial_wavenumber: float = 10.0, initial_energy: float | None = None,
                 cfl: float = 1.0, max_dt: float = 0.05, spinup_time: float = 40.0,
                 sample_interval: float = 2.0, n_chains: int | None = None, coarse_spinup: bool = True,
                 cache: bool = False, progress: bool = True, dtype: torch.dtype = torch.float64,
                 device: str | torch.device = "cpu", num_threads: int | Callable[[], int] | None = 1,
                 memory_limit: int | float | str | None = None) -> torch.Tensor:
    """Vorticity fields of forced dissipative 2D turbulence with coherent vortices.

    ``n_chains`` independent simulations (default ``min(n_samples, 16)``) start
    from random-phase vorticity with an energy spectrum peaked near
    ``initial_wavenumber`` and energy ``initial_energy``, and are integrated for
    ``spinup_time`` under ring forcing, linear drag and hyperviscosity (see the
    module docstring for the equations and the scheme). Each chain then yields
    one field every ``sample_interval`` time units until ``n_samples`` exist.

    The default regime is a weakly forced, weakly damped one: the forcing's
    energy over one large-eddy time is a small fraction of the flow's energy,
    so like-signed vortices form and merge as in decaying turbulence, while the
    initial energy equals the stationary energy ``injection_rate / (2 drag)``,
    so the energy stays statistically steady (measured at 128 x 128, 4 runs:
    mean energy 0.46-0.50 for ``t`` in 8..80) while the enstrophy decays onto a
    plateau (3.0 at ``t = 40``, 2.5 at ``t = 64`` and 2.5 at ``t = 80``). The
    vorticity is strongly non-Gaussian: flatness ``<w^4> / <w^2>^2`` of 14 on
    average at ``t = 40`` (the default ``spinup_time``; 14.4 measured over 8
    fields at 256 x 256), slowly relaxing to about 8-12 at ``t = 50..80``; pass
    ``spinup_time=80`` for fields closer to the stationary state, at twice the
    cost. Time units: ``injection_rate = 0.01`` and ``drag = 0.01`` give an rms
    velocity near 1 in a ``2 pi`` box.

    Parameters
    ----------
    size : int
        Grid side ``n`` (even, at least 32); the box is ``[0, 2 pi)^2``.
    n_samples : int
        Number of fields returned.
    random_state : int
        Seed of the initial condition and of the forcing.
    forcing_wavenumber : float
        Centre ``k_f`` of the forcing ring (units of ``2 pi / box``).
    forcing_width : float
        Width of the ring ``|k - k_f| <= width / 2``.
    injection_rate : float
        Mean energy injection rate ``epsilon >= 0`` of the white-in-time forcing.
    drag : float
        Linear (Ekman) drag ``mu >= 0``.
    hyperviscosity : float or None
        Coefficient ``nu_p`` of ``(-Laplacian)^p``; ``None`` gives a damping
        rate of 20 at the dealiasing cutoff ``k = n / 3``
        (``nu_p = 20 (3 / n)^(2 p)``), rescaled on each grid of the spin-up.
    hyperviscosity_order : int
        Order ``p``.
    initial_wavenumber : float
        Peak ``k_0`` of the initial energy spectrum ``k^3 exp(-2 (k / k_0)^2)``.
    initial_energy : float or None
        Initial kinetic energy; ``None`` means ``injection_rate / (2 drag)``
        (0.5 when ``drag = 0``).
    cfl : float
        Courant number of the adaptive step (``<= 1`` for RK4 stability).
    max_dt : float
        Largest time step.
    spinup_time : float
        Time integrated before the first sample (the progress bar shows the
        mean energy ``E`` and enstrophy ``Z`` to monitor stationarity).
    sample_interval : float
        Time between two samples of one chain (about one large-eddy turnover
        time ``2 pi / (k_f u_rms)`` at the defaults).
    n_chains : int or None
        Number of simulations run as one batch.
    coarse_spinup : bool
        When ``n / 2 >= 128``, run the first 95 % of the spin-up on the
        ``n / 2`` grid and refine spectrally (about 5x faster at ``n = 256``; the
        vortices are resolved on the coarse grid and the last 5 % regrows the
        finest filaments).
    cache : bool
        Store the result under ``cache_dir("physics")`` as a
        :class:`~wavephase.runs.Checkpoint` bound to every argument and the
        version of the numerics, and return it from there on later calls (a
        corrupt or stale file is recomputed). A run with ``cache=True`` also
        saves its state every ~30 s next to the cache file and resumes from it
        after a kill.
    progress : bool
        Show a tqdm bar over simulated time.
    dtype : torch.dtype
        Precision of the simulation (``torch.float64`` or ``torch.float32``).
    device : str or torch.device
        Where the simulation runs (see :func:`~wavephase.validation.check_device`).
    num_threads : int, callable or None
        CPU threads torch may use during the simulation (the previous setting
        is restored afterwards); ``None`` keeps torch's setting; a callable
        returning an int is asked again at every time step (e.g.
        :meth:`wavephase.cores.CoreShare.threads`, which gives a simulation the
        cores of those that ran beside it once they end). The fields do not
        depend on it: the same with any number of threads. The default 1
        is the fastest on small or shared machines: the FFTs of a few hundred
        points per side gain little from threads, and on an oversubscribed
        machine (measured: 2 cores, load 8) two threads made a 256 x 256 step
        ten times slower than one.
    memory_limit : int, float or str, optional
        Largest memory the simulations and the samples may need (bytes, or e.g.
        ``"8GB"``); default ``$WAVEPHASE_MEMORY_LIMIT``, else a quarter of the memory
        available (see :mod:`wavephase.resources`). Past it,
        :class:`~wavephase.exceptions.ResourceLimitError` is raised before anything
        is allocated.

    Returns
    -------
    torch.Tensor
        ``(n_samples, size, size)`` float32 vorticity on the CPU, not normalised
        (zero mean by construction; divide by ``std`` to normalise).

    Shapes
    ------
    -> (n_samples, size, size)
    """
    size = check_positive_int(size, "size", minimum=32)
    if size % 2:
        raise ValueError(f"size must be even, got {size}; use e.g. {size + 1}.")
    n_samples = check_positive_int(n_samples, "n_samples")
    random_state = check_random_state(random_state)
    kf = check_real_number(forcing_wavenumber, "forcing_wavenumber", positive=True)
    width = check_real_number(forcing_width, "forcing_width", positive=True)
    eps = check_real_number(injection_rate, "injection_rate", nonnegative=True)
    mu = check_real_number(drag, "drag", nonnegative=True)
    order = check_positive_int(hyperviscosity_order, "hyperviscosity_order")
    nu = None if hyperviscosity is None else check_real_number(hyperviscosity, "hyperviscosity", nonnegative=True)
    k0 = check_real_number(initial_wavenumber, "initial_wavenumber", positive=True)
    if initial_energy is None:
        e0 = eps / (2 * mu) if mu > 0 and eps > 0 else 0.5
    else:
        e0 = check_real_number(initial_energy, "initial_energy", nonnegative=True)
    cfl = check_real_number(cfl, "cfl", positive=True)
    if cfl > 1.5:
        raise ValueError(f"cfl={cfl} is above the RK4 stability limit; use cfl <= 1.")
    max_dt = check_real_number(max_dt, "max_dt", positive=True)
    spinup = check_real_number(spinup_time, "spinup_time", nonnegative=True)
    interval = check_real_number(sample_interval, "sample_interval", positive=True)
    chains = min(n_samples, 16) if n_chains is None else check_positive_int(n_chains, "n_chains")
    chains = min(chains, n_samples)
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype}.")
    threads = num_threads if num_threads is None or callable(num_threads) else check_positive_int(num_threads,
                                                                                                  "num_threads")
    device = check_device(device)
    levels = _levels(size, bool(coarse_spinup), spinup)
    if kf + width / 2 >= levels[0][0] / 3:
        raise ValueError(
            f"forcing_wavenumber + forcing_width / 2 = {kf + width / 2} must be below the dealiasing cutoff "
            f"{levels[0][0]} / 3 of the coarsest grid; lower forcing_wavenumber, raise size or pass "
            f"coarse_spinup=False."
        )


    per_point = _SOLVER_PLANES * chains * torch.finfo(dtype).bits / 8 + _SAMPLE_COPIES * 4 * n_samples
    check_memory(float(size) ** 2 * per_point,
                 f"{chains} turbulence simulation(s) of {size}x{size} and {n_samples} sample(s)", device,
                 parse_memory_limit(memory_limit), "lower size, n_samples or n_chains")
    args = dict(size=size, n_samples=n_samples, random_state=random_state, forcing_wavenumber=kf,
                forcing_width=width, injection_rate=eps, drag=mu, hyperviscosity=nu, hyperviscosity_order=order,
                initial_wavenumber=k0, initial_energy=e0, cfl=cfl, max_dt=max_dt, spinup_time=spinup,
                sample_interval=interval, n_chains=chains, coarse_spinup=bool(coarse_spinup), dtype=str(dtype),
                device=device.type, version=_CACHE_VERSION)
    store = partial = Checkpoint(None, args)
    if cache:
        path = cache_dir("physics") / f"turbulence2d-{fingerprint(args)[:24]}.npy"
        store = Checkpoint(path, args, what="turbulence cache", on_mismatch="recompute")
        cached = store.load_array()
        if cached is not None:
            return torch.from_numpy(cached)
        partial = Checkpoint(path.with_name(path.name + ".partial"), args, what="turbulence checkpoint",
                             on_mismatch="recompute")

    per_chain = -(-n_samples // chains)
    solver_args = dict(forcing_wavenumber=kf, forcing_width=width, injection_rate=eps, drag=mu,
                       hyperviscosity_order=order, cfl=cfl, max_dt=max_dt, dtype=dtype, device=device)
    previous_threads = torch.get_num_threads()
    try:
        out = _simulate(levels, chains, per_chain, interval, solver_args, nu, k0, e0, random_state, progress,
                        partial, _thread_setter(threads))
    finally:
        torch.set_num_threads(previous_threads)
    out = out[:n_samples].contiguous()
    store.save_array(out.numpy())
    partial.remove()
    return out


def _thread_setter(threads: int | Callable[[], int] | None) -> Callable[[], None]:
    """A function that sets this thread's torch thread count to ``threads`` (asked afresh when callable)."""
    if threads is None:
        return lambda: None
    if not callable(threads):
        torch.set_num_threads(threads)
        return lambda: None

    def follow() -> None:
        n = check_positive_int(threads(), "num_threads()")
        if n != torch.get_num_threads():
            torch.set_num_threads(n)

    follow()  # the solver's set-up runs on the share of now, too
    return follow


def _simulate(levels: list[tuple[int, float]], chains: int, per_chain: int, interval: float,
              solver_args: dict[str, Any], nu: float | None, k0: float, e0: float, random_state: int,
              progress: bool, partial: Checkpoint, set_threads: Callable[[], None]) -> torch.Tensor:
    """Spin ``chains`` simulations up through the grid ``levels``, then take ``per_chain`` samples of each."""
    gen = torch.Generator().manual_seed(random_state)
    final, n0 = levels[-1][0], levels[0][0]
    order = solver_args["hyperviscosity_order"]
    nu0 = default_hyperviscosity(n0, order) if nu is None else nu * (final / n0) ** (2 * order)
    solver = TurbulenceSolver(n0, chains, hyperviscosity=nu0, generator=gen, **solver_args)
    solver.random_initial_condition(k0, e0)
    # Times at which the grid is refined, then at which samples are taken.
    switch_times = list(np.cumsum([t for _, t in levels])[:-1])
    spinup = sum(t for _, t in levels)
    sample_times = [spinup + i * interval for i in range(per_chain)]
    total_time = sample_times[-1]
    samples: list[torch.Tensor] = []
    level = 0

    state = partial.load()
    if state is not None:
        level = int(state["level"])
        if solver.n != levels[level][0]:
            solver.resample(levels[level][0])
        solver.w_hat = state["w_hat"].to(solver.w_hat.dtype).to(solver.device)
        solver.time = float(state["time"])
        gen.set_state(state["generator"])
        samples = list(state["samples"])

    bar = None
    if progress:
        bar = tqdm(total=round(total_time, 3), desc=f"turbulence {final}x{final}", unit="time",
                   bar_format="{l_bar}{bar}| t={n:.2f}/{total:.2f} [{elapsed}<{remaining}{postfix}]")
        bar.update(round(min(solver.time, total_time), 3))
    last_save = time.monotonic()
    step_count = 0
    while len(samples) < per_chain:
        next_sample = sample_times[len(samples)]
        if level < len(switch_times) and solver.time >= switch_times[level]:
            level += 1
            solver.resample(levels[level][0])
            continue
        if solver.time >= next_sample:
            samples.append(solver.vorticity().to(torch.float32).cpu())
            continue
        # Land exactly on the next event so that every sample is taken at its scheduled time.
        target = min(next_sample, switch_times[level] if level < len(switch_times) else next_sample)
        old_max = solver.p.max_dt
        solver.p.max_dt = min(old_max, max(target - solver.time, 1e-12))
        before = solver.time
        set_threads()
        solver.step()
        solver.p.max_dt = old_max
        if not bool(torch.isfinite(solver.w_hat).all()):
            raise FloatingPointError(
                f"the turbulence simulation blew up at t={solver.time:.3f}; lower cfl or max_dt, or raise "
                f"hyperviscosity."
            )
        if bar is not None:
            bar.update(round(solver.time - before, 6))
            if step_count % 50 == 0:
                # Energy and enstrophy on the bar show whether the spin-up has become stationary.
                bar.set_postfix(E=f"{float(solver.energy().mean()):.3g}", Z=f"{float(solver.enstrophy().mean()):.3g}",
                                n=solver.n, refresh=False)
        step_count += 1
        if partial.path is not None and time.monotonic() - last_save > _CHECKPOINT_SECONDS:
            partial.save({"level": level, "w_hat": solver.w_hat.cpu(), "time": solver.time,
                          "generator": gen.get_state(), "samples": samples})
            last_save = time.monotonic()
    if bar is not None:
        bar.close()
    # Chain-major interleaving: sample i of every chain before sample i + 1 of any.
    return torch.stack(samples, dim=1).reshape(-1, final, final)
