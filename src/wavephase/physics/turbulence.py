"""Forced dissipative two-dimensional turbulence (vorticity of incompressible Navier–Stokes).

The vorticity ``w = dv/dx - du/dy`` of an incompressible flow on the periodic
box ``[0, 2 pi)^2`` obeys

.. math:: \\partial_t w + u \\cdot \\nabla w = f - \\mu w - \\nu_p (-\\Delta)^p w,

with velocity ``u = (d psi/dy, -d psi/dx)`` from the stream function
``-Laplacian(psi) = w`` (so ``div u = 0`` by construction), a linear drag
``mu`` that removes the energy of the inverse cascade at large scales, a
hyperviscosity of order ``p`` that removes the enstrophy of the direct cascade
at the grid scale, and a random forcing ``f`` that is white in time and lives
on the ring ``|k - k_f| <= width / 2`` of wavenumbers.

Numerics: pseudo-spectral with ``rfft2``, 2/3-rule dealiasing (square mask
``|k_x|, |k_y| < n / 3``), fourth-order Runge–Kutta with an integrating factor
for the linear (drag + hyperviscosity) terms, so these are integrated exactly,
an adaptive time step from the CFL condition, and the forcing added as an
Euler–Maruyama increment ``sqrt(dt) * xi`` whose amplitude gives a known mean
energy injection rate ``epsilon``. Independent simulations run as one batch.

Time is measured in units of the forcing time ``eta**(-1/3)`` where
``eta = epsilon * k_f**2`` is the enstrophy injection rate; with the default
``injection_rate`` this unit is 1.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from dataclasses import dataclass

import numpy as np
import torch

from wavephase.validation import check_positive_int, check_real_tensor

__all__ = ["turbulence2d", "TurbulenceSolver", "velocity_from_vorticity"]


def _wavenumbers(n: int, dtype: torch.dtype, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
    ky = torch.fft.fftfreq(n, d=1.0 / n, dtype=dtype, device=device).reshape(n, 1)
    kx = torch.fft.rfftfreq(n, d=1.0 / n, dtype=dtype, device=device).reshape(1, n // 2 + 1)
    return kx, ky


def velocity_from_vorticity(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Velocity ``(u, v)`` of a periodic vorticity field on ``[0, 2 pi)^2``.

    Parameters
    ----------
    w : torch.Tensor
        ``(..., n, n)`` real vorticity; its mean is ignored (it carries no velocity).

    Returns
    -------
    tuple of torch.Tensor
        ``u`` (along the last axis, ``x``) and ``v`` (along the second-to-last
        axis, ``y``), both ``(..., n, n)``; ``du/dx + dv/dy = 0`` and
        ``dv/dx - du/dy = w - mean(w)``.
    """
    check_real_tensor(w, "w", min_ndim=2)
    n_y, n_x = w.shape[-2:]
    if n_y != n_x:
        raise ValueError(f"w must be square (..., n, n), got {tuple(w.shape)}; crop or pad it to a square.")
    kx, ky = _wavenumbers(n_x, w.dtype, w.device)
    k2 = kx**2 + ky**2
    k2[0, 0] = 1.0
    psi_hat = torch.fft.rfft2(w) / k2
    psi_hat[..., 0, 0] = 0
    u = torch.fft.irfft2(1j * ky * psi_hat, s=(n_y, n_x))
    v = torch.fft.irfft2(-1j * kx * psi_hat, s=(n_y, n_x))
    return u, v


@dataclass
class _Params:
    size: int
    forcing_wavenumber: float
    forcing_width: float
    injection_rate: float
    drag: float
    hyperviscosity: float
    hyperviscosity_order: int
    cfl: float
    max_dt: float


class TurbulenceSolver:
    """Batched pseudo-spectral solver of forced 2D Navier–Stokes in vorticity form.

    Parameters
    ----------
    size : int
        Grid side ``n`` (even, at least 8).
    batch : int
        Number of independent simulations advanced together.
    forcing_wavenumber : float
        Centre ``k_f`` of the forcing ring, in units of ``2 pi / box``.
    forcing_width : float
        Width of the forcing ring.
    injection_rate : float
        Mean energy injection rate ``epsilon`` of the forcing.
    drag : float
        Linear drag ``mu``.
    hyperviscosity : float
        Coefficient ``nu_p`` of ``(-Laplacian)^p``.
    hyperviscosity_order : int
        Order ``p``.
    cfl : float
        Courant number; ``dt = cfl * dx / max(|u| + |v|)``.
    max_dt : float
        Upper bound on ``dt``.
    generator : torch.Generator
        Random source of the forcing (on the CPU).
    dtype : torch.dtype
        ``torch.float32`` or ``torch.float64``.
    device : str or torch.device
        Where the fields live.
    """

    def __init__(self, size: int, batch: int, *, forcing_wavenumber: float, forcing_width: float,
                 injection_rate: float, drag: float, hyperviscosity: float, hyperviscosity_order: int,
                 cfl: float, max_dt: float, generator: torch.Generator, dtype: torch.dtype = torch.float64,
                 device: str | torch.device = "cpu") -> None:
        size = check_positive_int(size, "size", minimum=8)
        if size % 2:
            raise ValueError(f"size must be even, got {size}; use e.g. {size + 1}.")
        batch = check_positive_int(batch, "batch")
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype}.")
        for name, value in (("forcing_width", forcing_width), ("cfl", cfl), ("max_dt", max_dt)):
            _check_float(value, name, positive=True)
        for name, value in (("injection_rate", injection_rate), ("drag", drag), ("hyperviscosity", hyperviscosity)):
            _check_float(value, name, nonnegative=True)
        hyperviscosity_order = check_positive_int(hyperviscosity_order, "hyperviscosity_order")
        self.p = _Params(size, forcing_wavenumber, forcing_width, injection_rate, drag, hyperviscosity,
                         hyperviscosity_order, cfl, max_dt)
        self.n = n = size
        self.batch = batch
        self.dtype = dtype
        self.device = torch.device(device)
        self.generator = generator
        kx, self.ky = _wavenumbers(n, dtype, self.device)
        # Only the columns k_x < n / 3 survive dealiasing, so the state stores just those
        # (a third fewer than rfft2's n / 2 + 1) and the transforms skip the rest.
        self.n_cols = c = int(math.ceil(n / 3))
        self.kx = kx[:, :c]
        k2 = self.kx**2 + self.ky**2
        self.k2 = k2
        inv = 1.0 / torch.where(k2 > 0, k2, torch.ones_like(k2))
        self.inv_k2 = torch.where(k2 > 0, inv, torch.zeros_like(inv))
        cut = n / 3.0
        self.dealias = ((self.kx.abs() < cut) & (self.ky.abs() < cut)).to(dtype)
        self.linear = -(drag + hyperviscosity * k2**hyperviscosity_order)
        # Multipliers giving u, v, dw/dx, dw/dy from w_hat, built once and applied in one
        # batched product so that the four inverse transforms are a single call.
        cd = self._cdtype()
        self._grad = torch.stack([1j * self.ky * self.inv_k2, -1j * self.kx * self.inv_k2,
                                  (1j * self.kx).expand(n, c), (1j * self.ky).expand(n, c)]).to(cd)
        # rfft2 stores the k_x >= 0 half plane: every column but k_x = 0 stands for two modes
        # (the Nyquist column, counted once, is never kept).
        w = torch.full((1, c), 2.0, dtype=dtype, device=self.device)
        w[0, 0] = 1.0
        self.half_weight = w
        self._setup_forcing()
        self.time = 0.0
        self.w_hat = torch.zeros(batch, n, c, dtype=self._cdtype(), device=self.device)
        self.last_max_speed = 0.0
        self._pad_buffers: dict[tuple[int, ...], torch.Tensor] = {}

    def _cdtype(self) -> torch.dtype:
        return torch.complex128 if self.dtype == torch.float64 else torch.complex64

    def _setup_forcing(self) -> None:
        # White noise is drawn on a small grid that just holds the ring and its
        # spectrum is scattered into the big one: exactly Hermitian and cheap.
        kf, width, n = self.p.forcing_wavenumber, self.p.forcing_width, self.n
        kmax = kf + width / 2
        m = 2 * int(math.floor(kmax)) + 2
        m += m % 2
        if kmax >= n / 3:
            raise ValueError(
                f"forcing_wavenumber + forcing_width / 2 = {kmax} must be below the dealiasing cutoff "
                f"size / 3 = {n / 3:.1f}; lower forcing_wavenumber or raise size."
            )
        skx = torch.fft.rfftfreq(m, d=1.0 / m, dtype=torch.float64).reshape(1, -1)
        sky = torch.fft.fftfreq(m, d=1.0 / m, dtype=torch.float64).reshape(-1, 1)
        kk = torch.sqrt(skx**2 + sky**2)
        ring = (kk >= kf - width / 2) & (kk <= kf + width / 2) & (kk > 0)
        iy, ix = torch.nonzero(ring, as_tuple=True)
        if iy.numel() == 0:
            raise ValueError(
                f"the forcing ring |k - {kf}| <= {width / 2} holds no wavenumber; widen forcing_width."
            )
        ky_int = sky[iy, 0].round().long()
        kx_int = skx[0, ix].round().long()
        self._small = m
        self._small_idx = (iy, ix)
        self._big_idx = ((ky_int % n).to(self.device), kx_int.to(self.device))
        k2 = (kx_int**2 + ky_int**2).double()
        weight = torch.where(kx_int == 0, 1.0, 2.0).double()
        # Expected injection rate per unit amplitude^2 with E|xi_k|^2 = n^2 per mode (see module doc).
        rate_per_amp2 = 0.5 * float((weight / k2).sum()) / n**2
        self._amp = math.sqrt(self.p.injection_rate / rate_per_amp2) if self.p.injection_rate > 0 else 0.0

    def random_initial_condition(self, peak_wavenumber: float, energy: float) -> None:
        """Set random-phase vorticity with energy spectrum ``~ k^3 exp(-2 (k / k_0)^2)``.

        Parameters
        ----------
        peak_wavenumber : float
            ``k_0``, near the peak of the energy spectrum.
        energy : float
            Kinetic energy ``<|u|^2> / 2`` of every simulation.
        """
        noise = torch.randn(self.batch, self.n, self.n, generator=self.generator, dtype=torch.float64)
        k = torch.sqrt(self.k2).to(torch.float64).cpu()
        # White vorticity noise has an energy spectrum ~ k^-1 (shell area k over k^2); the filter
        # k^2 exp(-(k/k0)^2) turns it into k^3 exp(-2 (k/k0)^2).
        filt = (k / peak_wavenumber) ** 2 * torch.exp(-((k / peak_wavenumber) ** 2))
        w = torch.fft.rfft2(noise)[..., : self.n_cols] * filt
        w[..., 0, 0] = 0
        self.w_hat = (w.to(self._cdtype()).to(self.device)) * self.dealias
        e = self.energy()
        self.w_hat = self.w_hat * torch.sqrt(energy / e).reshape(-1, 1, 1).to(self.w_hat.dtype)

    def forcing_sample(self) -> torch.Tensor:
        """Draw one forcing spectrum ``xi_hat`` (energy injection ``epsilon`` per unit time).

        Returns
        -------
        torch.Tensor
            ``(batch, n, n_cols)`` complex spectrum supported on the forcing ring.
        """
        m, n = self._small, self.n
        noise = torch.randn(self.batch, m, m, generator=self.generator, dtype=torch.float64)
        small = torch.fft.rfft2(noise)[:, self._small_idx[0], self._small_idx[1]]
        out = torch.zeros(self.batch, n, self.n_cols, dtype=self._cdtype(), device=self.device)
        out[:, self._big_idx[0], self._big_idx[1]] = (small * (self._amp * n / m)).to(out.dtype).to(self.device)
        return out

    def nonlinear(self, w_hat: torch.Tensor, track_speed: bool = False) -> torch.Tensor:
        """Dealiased advection term ``-FFT(u . grad w)``.

        Parameters
        ----------
        w_hat : torch.Tensor
            ``(batch, n, n_cols)`` vorticity spectrum (columns ``k_x < n / 3`` of ``rfft2``).
        track_speed : bool
            Also record ``max |u| + max |v|`` (for the CFL step) in ``last_max_speed``.

        Returns
        -------
        torch.Tensor
            Spectrum of the same shape.
        """
        f = self._to_grid(self._grad * w_hat.unsqueeze(-3))
        u, v, wx, wy = f.unbind(-3)
        if track_speed:
            self.last_max_speed = float(u.abs().amax() + v.abs().amax())
        return -self._to_spectrum(u * wx + v * wy) * self.dealias

    def _to_grid(self, spec: torch.Tensor) -> torch.Tensor:
        # irfft2 of a spectrum whose columns k_x >= n_cols are zero, without touching them.
        # irfft zero-fills missing columns ~3x slower than a padded input, so the spectrum is
        # copied into a zero buffer that is allocated once per shape (its tail stays zero).
        shape = (*spec.shape[:-1], self.n // 2 + 1)
        buf = self._pad_buffers.get(shape)
        if buf is None or buf.dtype != spec.dtype:
            buf = torch.zeros(shape, dtype=spec.dtype, device=spec.device)
            self._pad_buffers[shape] = buf
        buf[..., : self.n_cols] = torch.fft.ifft(spec, dim=-2)
        return torch.fft.irfft(buf, n=self.n, dim=-1)

    def _to_spectrum(self, field: torch.Tensor) -> torch.Tensor:
        # rfft2 restricted to the stored columns.
        return torch.fft.fft(torch.fft.rfft(field, dim=-1)[..., : self.n_cols], dim=-2)

    def step(self) -> float:
        """Advance every simulation by one adaptive time step.

        Returns
        -------
        float
            The step ``dt`` taken.
        """
        w = self.w_hat
        a = self.nonlinear(w, track_speed=True)
        speed = self.last_max_speed
        dx = 2 * math.pi / self.n
        dt = self.p.max_dt if speed == 0 else min(self.p.max_dt, self.p.cfl * dx / speed)
        e2 = torch.exp(self.linear * (dt / 2))
        e1 = e2 * e2
        b = self.nonlinear(e2 * (w + 0.5 * dt * a))
        c = self.nonlinear(e2 * w + 0.5 * dt * b)
        d = self.nonlinear(e1 * w + dt * e2 * c)
        w = e1 * w + (dt / 6) * (e1 * a + 2 * e2 * (b + c) + d)
        if self._amp > 0:
            w = w + math.sqrt(dt) * self.forcing_sample()
        w[..., 0, 0] = 0
        self.w_hat = w * self.dealias
        self.time += dt
        return dt

    def vorticity(self) -> torch.Tensor:
        """Current vorticity fields.

        Returns
        -------
        torch.Tensor
            ``(batch, n, n)`` real tensor.
        """
        return self._to_grid(self.w_hat)

    def energy(self) -> torch.Tensor:
        """Kinetic energy ``<|u|^2> / 2`` of each simulation.

        Returns
        -------
        torch.Tensor
            ``(batch,)``.
        """
        return 0.5 * (self.w_hat.abs() ** 2 * self.inv_k2 * self.half_weight).sum(dim=(-2, -1)) / self.n**4

    def enstrophy(self) -> torch.Tensor:
        """Enstrophy ``<w^2> / 2`` of each simulation.

        Returns
        -------
        torch.Tensor
            ``(batch,)``.
        """
        return 0.5 * (self.w_hat.abs() ** 2 * self.half_weight).sum(dim=(-2, -1)) / self.n**4

    def resample(self, size: int) -> None:
        """Change the grid to ``size`` by spectral padding or truncation (keeps the flow).

        The hyperviscosity is rescaled so that its damping rate at the
        dealiasing cutoff stays the same; the large scales are unchanged.

        Parameters
        ----------
        size : int
            New grid side (even).
        """
        old, new = self.n, size
        keep = int(math.ceil(min(old, new) / 3))  # modes |k_x|, |k_y| < keep survive on both grids
        nu = self.p.hyperviscosity * (old / new) ** (2 * self.p.hyperviscosity_order)
        w_old = self.w_hat
        gen = self.generator
        t = self.time
        self.__init__(new, self.batch, forcing_wavenumber=self.p.forcing_wavenumber,  # type: ignore[misc]
                      forcing_width=self.p.forcing_width, injection_rate=self.p.injection_rate,
                      drag=self.p.drag, hyperviscosity=nu, hyperviscosity_order=self.p.hyperviscosity_order,
                      cfl=self.p.cfl, max_dt=self.p.max_dt, generator=gen, dtype=self.dtype, device=self.device)
        self.time = t
        scale = (new / old) ** 2
        w = torch.zeros_like(self.w_hat)
        w[:, :keep, :keep] = w_old[:, :keep, :keep] * scale
        w[:, -(keep - 1):, :keep] = w_old[:, -(keep - 1):, :keep] * scale
        self.w_hat = w * self.dealias


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


def _check_float(value: object, name: str, *, positive: bool = False, nonnegative: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} ({value!r}).")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}.")
    if positive and v <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}.")
    if nonnegative and v < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}.")
    return v


def _levels(size: int, coarse_spinup: bool, spinup_time: float) -> list[tuple[int, float]]:
    # Vortices form at scales far above the grid scale, so most of the spin-up runs on a
    # grid of half the side (about 8x cheaper per time unit: 4x fewer points, 2x larger
    # dt); the last stretch on the full grid regrows the finest filaments, which takes a
    # few enstrophy-cascade times. Below 128 points the vortex cores themselves are
    # under-resolved (flatness ~4 instead of ~10 at 64^2), hence the floor.
    if coarse_spinup and size // 2 >= 128 and (size // 2) % 2 == 0:
        return [(size // 2, 0.95 * spinup_time), (size, 0.05 * spinup_time)]
    return [(size, spinup_time)]


def turbulence2d(size: int, n_samples: int, seed: int = 0, *, forcing_wavenumber: float = 4.0,
                 forcing_width: float = 1.0, injection_rate: float = 0.01, drag: float = 0.01,
                 hyperviscosity: float | None = None, hyperviscosity_order: int = 4,
                 initial_wavenumber: float = 10.0, initial_energy: float | None = None,
                 cfl: float = 1.0, max_dt: float = 0.05, spinup_time: float = 40.0,
                 sample_interval: float = 2.0, n_chains: int | None = None, coarse_spinup: bool = True,
                 cache: bool = False, progress: bool = True, dtype: torch.dtype = torch.float64,
                 device: str | torch.device = "cpu", num_threads: int | None = 1) -> torch.Tensor:
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
    seed : int
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
        Store the result under ``cache_dir("physics")``, keyed by every argument
        and the library version, and return it from there on later calls; the
        file is written atomically and checked by SHA-256 when read back. A run
        with ``cache=True`` also checkpoints itself every ~30 s next to the cache
        file and resumes from that checkpoint after a kill.
    progress : bool
        Show a tqdm bar over simulated time.
    dtype : torch.dtype
        Precision of the simulation (``torch.float64`` or ``torch.float32``).
    device : str or torch.device
        Where the simulation runs.
    num_threads : int or None
        CPU threads torch may use during the simulation (the previous setting
        is restored afterwards); ``None`` keeps torch's setting. The default 1
        is the fastest on small or shared machines: the FFTs of a few hundred
        points per side gain little from threads, and on an oversubscribed
        machine (measured: 2 cores, load 8) two threads made a 256 x 256 step
        ten times slower than one.

    Returns
    -------
    torch.Tensor
        ``(n_samples, size, size)`` float32 vorticity on the CPU, not normalised
        (zero mean by construction; divide by ``std`` to normalise).
    """
    size = check_positive_int(size, "size", minimum=32)
    if size % 2:
        raise ValueError(f"size must be even, got {size}; use e.g. {size + 1}.")
    n_samples = check_positive_int(n_samples, "n_samples")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__} ({seed!r}).")
    kf = _check_float(forcing_wavenumber, "forcing_wavenumber", positive=True)
    width = _check_float(forcing_width, "forcing_width", positive=True)
    eps = _check_float(injection_rate, "injection_rate", nonnegative=True)
    mu = _check_float(drag, "drag", nonnegative=True)
    order = check_positive_int(hyperviscosity_order, "hyperviscosity_order")
    nu = None if hyperviscosity is None else _check_float(hyperviscosity, "hyperviscosity", nonnegative=True)
    k0 = _check_float(initial_wavenumber, "initial_wavenumber", positive=True)
    if initial_energy is None:
        e0 = eps / (2 * mu) if mu > 0 and eps > 0 else 0.5
    else:
        e0 = _check_float(initial_energy, "initial_energy", nonnegative=True)
    cfl = _check_float(cfl, "cfl", positive=True)
    if cfl > 1.5:
        raise ValueError(f"cfl={cfl} is above the RK4 stability limit; use cfl <= 1.")
    max_dt = _check_float(max_dt, "max_dt", positive=True)
    spinup = _check_float(spinup_time, "spinup_time", nonnegative=True)
    interval = _check_float(sample_interval, "sample_interval", positive=True)
    chains = min(n_samples, 16) if n_chains is None else check_positive_int(n_chains, "n_chains")
    chains = min(chains, n_samples)
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype}.")
    threads = None if num_threads is None else check_positive_int(num_threads, "num_threads")
    levels = _levels(size, bool(coarse_spinup), spinup)
    if kf + width / 2 >= levels[0][0] / 3:
        raise ValueError(
            f"forcing_wavenumber + forcing_width / 2 = {kf + width / 2} must be below the dealiasing cutoff "
            f"{levels[0][0]} / 3 of the coarsest grid; lower forcing_wavenumber, raise size or pass "
            f"coarse_spinup=False."
        )

    args = dict(size=size, n_samples=n_samples, seed=int(seed), forcing_wavenumber=kf, forcing_width=width,
                injection_rate=eps, drag=mu, hyperviscosity=nu, hyperviscosity_order=order,
                initial_wavenumber=k0, initial_energy=e0, cfl=cfl, max_dt=max_dt, spinup_time=spinup,
                sample_interval=interval, n_chains=chains, coarse_spinup=bool(coarse_spinup),
                dtype=str(dtype), device=torch.device(device).type, version=_CACHE_VERSION)
    cache_file = ckpt_file = None
    if cache:
        from wavephase.data.cache import cache_dir

        key = hashlib.sha256(json.dumps(args, sort_keys=True).encode()).hexdigest()[:24]
        cache_file = cache_dir("physics") / f"turbulence2d-{key}.pt"
        ckpt_file = cache_file.with_name(cache_file.name + ".partial")
        cached = _read_cache(cache_file, (n_samples, size, size))
        if cached is not None:
            return cached

    per_chain = -(-n_samples // chains)
    total_time = spinup + (per_chain - 1) * interval
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        out = _simulate(levels, chains, per_chain, interval, total_time, kf, width, eps, mu, nu, order, k0, e0,
                        cfl, max_dt, int(seed), dtype, device, progress, ckpt_file)
    finally:
        torch.set_num_threads(previous_threads)
    out = out[:n_samples].contiguous()
    if cache_file is not None:
        _write_cache(cache_file, out)
        if ckpt_file is not None and ckpt_file.exists():
            ckpt_file.unlink()
    return out


# Seconds between two checkpoints of a cached run.
_CHECKPOINT_SECONDS = 30.0

# Bump when the numerics change, so that cached fields of an older scheme are not reused.
_CACHE_VERSION = 1


def _simulate(levels: list[tuple[int, float]], chains: int, per_chain: int, interval: float, total_time: float,
              kf: float, width: float, eps: float, mu: float, nu: float | None, order: int, k0: float,
              e0: float, cfl: float, max_dt: float, seed: int, dtype: torch.dtype,
              device: str | torch.device, progress: bool, ckpt_file: object) -> torch.Tensor:
    import time as _time

    from wavephase.checkpoint import load_checkpoint, save_checkpoint

    gen = torch.Generator().manual_seed(seed)
    final = levels[-1][0]
    n0 = levels[0][0]
    nu0 = default_hyperviscosity(n0, order) if nu is None else nu * (final / n0) ** (2 * order)
    solver = TurbulenceSolver(n0, chains, forcing_wavenumber=kf, forcing_width=width, injection_rate=eps,
                              drag=mu, hyperviscosity=nu0, hyperviscosity_order=order, cfl=cfl,
                              max_dt=max_dt, generator=gen, dtype=dtype, device=device)
    solver.random_initial_condition(k0, e0)
    # Times at which the grid is refined, then at which samples are taken.
    switch_times = list(np.cumsum([t for _, t in levels])[:-1])
    spinup = sum(t for _, t in levels)
    sample_times = [spinup + i * interval for i in range(per_chain)]
    samples: list[torch.Tensor] = []
    level = 0

    state = load_checkpoint(ckpt_file) if ckpt_file is not None else None
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
        from tqdm.auto import tqdm

        bar = tqdm(total=round(total_time, 3), desc=f"turbulence {final}x{final}", unit="time",
                   bar_format="{l_bar}{bar}| t={n:.2f}/{total:.2f} [{elapsed}<{remaining}{postfix}]")
        bar.update(round(min(solver.time, total_time), 3))
    last_save = _time.monotonic()
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
        if ckpt_file is not None and _time.monotonic() - last_save > _CHECKPOINT_SECONDS:
            save_checkpoint({"level": level, "w_hat": solver.w_hat.cpu(), "time": solver.time,
                             "generator": gen.get_state(), "samples": samples}, ckpt_file)
            last_save = _time.monotonic()
    if bar is not None:
        bar.close()
    # Chain-major interleaving: sample i of every chain before sample i + 1 of any.
    return torch.stack(samples, dim=1).reshape(-1, final, final)


def _read_cache(path: object, shape: tuple[int, int, int]) -> torch.Tensor | None:
    from pathlib import Path

    from wavephase.io import sha256_file

    path = Path(str(path))
    digest_file = path.with_name(path.name + ".sha256")
    if not path.exists() or not digest_file.exists():
        return None
    if sha256_file(path) != digest_file.read_text().strip():
        # A corrupt cache entry is regenerated rather than trusted.
        return None
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        return None
    if not isinstance(data, torch.Tensor) or tuple(data.shape) != shape or data.dtype != torch.float32:
        return None
    return data


def _write_cache(path: object, fields: torch.Tensor) -> None:
    from pathlib import Path

    from wavephase.io import atomic_write_bytes

    path = Path(str(path))
    buf = io.BytesIO()
    torch.save(fields, buf)
    data = buf.getvalue()
    atomic_write_bytes(path, data)
    atomic_write_bytes(path.with_name(path.name + ".sha256"), hashlib.sha256(data).hexdigest().encode())
