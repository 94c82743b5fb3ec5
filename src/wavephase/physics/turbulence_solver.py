"""The pseudo-spectral solver of forced dissipative 2D turbulence (vorticity of incompressible Navier–Stokes).

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

import math
from dataclasses import dataclass

import numpy as np
import torch

from wavephase.validation import check_device, check_positive_int, check_real_tensor

__all__ = ["TurbulenceSolver", "check_real_number", "velocity_from_vorticity", "wavenumbers"]


def wavenumbers(n: int, dtype: torch.dtype, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer wavenumbers of an ``n x n`` grid in ``rfft2`` layout.

    Parameters
    ----------
    n : int
        Grid side.
    dtype : torch.dtype
        Real dtype of the result.
    device : torch.device or str
        Device of the result.

    Returns
    -------
    kx, ky : torch.Tensor
        ``(1, n // 2 + 1)`` along the last axis and ``(n, 1)`` along the other.

    Shapes
    ------
    -> kx (1, n // 2 + 1), ky (n, 1)
    """
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

    Shapes
    ------
    w: (..., n, n) -> u (..., n, n), v (..., n, n)
    """
    check_real_tensor(w, "w", min_ndim=2)
    n_y, n_x = w.shape[-2:]
    if n_y != n_x:
        raise ValueError(f"w must be square (..., n, n), got {tuple(w.shape)}; crop or pad it to a square.")
    kx, ky = wavenumbers(n_x, w.dtype, w.device)
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
            check_real_number(value, name, positive=True)
        for name, value in (("injection_rate", injection_rate), ("drag", drag), ("hyperviscosity", hyperviscosity)):
            check_real_number(value, name, nonnegative=True)
        hyperviscosity_order = check_positive_int(hyperviscosity_order, "hyperviscosity_order")
        self.p = _Params(size, forcing_wavenumber, forcing_width, injection_rate, drag, hyperviscosity,
                         hyperviscosity_order, cfl, max_dt)
        self.n = n = size
        self.batch = batch
        self.dtype = dtype
        self.device = check_device(device)
        self.generator = generator
        kx, self.ky = wavenumbers(n, dtype, self.device)
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
        # Intermediates of a time step, reused from step to step: fresh megabyte-sized
        # arrays at every stage are faulted in from the system again and again (128 x 128,
        # 8 simulations: 2800 page faults and about 40 % of the time of a step).
        self._buffers: dict[str, torch.Tensor] = {}

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

        Shapes
        ------
        -> (batch, n, n_cols) complex
        """
        m, n = self._small, self.n
        noise = torch.randn(self.batch, m, m, generator=self.generator, dtype=torch.float64)
        small = torch.fft.rfft2(noise)[:, self._small_idx[0], self._small_idx[1]]
        out = torch.zeros(self.batch, n, self.n_cols, dtype=self._cdtype(), device=self.device)
        out[:, self._big_idx[0], self._big_idx[1]] = (small * (self._amp * n / m)).to(out.dtype).to(self.device)
        return out

    def _buffer(self, name: str, shape: tuple[int, ...], dtype: torch.dtype, zeros: bool = False) -> torch.Tensor:
        """The reused array ``name``: uninitialised (or zero) when made, the same memory on later requests."""
        buf = self._buffers.get(name)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            make = torch.zeros if zeros else torch.empty
            buf = self._buffers[name] = make(shape, dtype=dtype, device=self.device)
        return buf

    def nonlinear(self, w_hat: torch.Tensor, track_speed: bool = False,
                  out: torch.Tensor | None = None) -> torch.Tensor:
        """Dealiased advection term ``-FFT(u . grad w)``.

        Parameters
        ----------
        w_hat : torch.Tensor
            ``(batch, n, n_cols)`` vorticity spectrum (columns ``k_x < n / 3`` of ``rfft2``).
        track_speed : bool
            Also record ``max |u| + max |v|`` (for the CFL step) in ``last_max_speed``.
        out : torch.Tensor, optional
            Contiguous complex tensor of ``w_hat``'s shape to write the result to.

        Returns
        -------
        torch.Tensor
            Spectrum of the same shape (``out`` when given).

        Shapes
        ------
        w_hat: (batch, n, n_cols) complex -> (batch, n, n_cols) complex
        """
        *batch, n, c = w_hat.shape
        grad = torch.mul(self._grad, w_hat.unsqueeze(-3),
                         out=self._buffer("grad", (*batch, 4, n, c), self._grad.dtype))
        u, v, wx, wy = self._to_grid(grad, out=self._buffer("grid", (*batch, 4, n, n), self.dtype)).unbind(-3)
        if track_speed:
            # max |u| from the extremes: no |u| array (the value is the same).
            (u_min, u_max), (v_min, v_max) = torch.aminmax(u), torch.aminmax(v)
            self.last_max_speed = float(torch.maximum(u_max, -u_min) + torch.maximum(v_max, -v_min))
        advection = torch.mul(u, wx, out=self._buffer("advection", u.shape, u.dtype))
        advection.add_(torch.mul(v, wy, out=self._buffer("advection_v", v.shape, v.dtype)))
        spectrum = self._to_spectrum(advection)
        return torch.mul(spectrum.neg_(), self.dealias, out=out)

    def _to_grid(self, spec: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        # irfft2 of a spectrum whose columns k_x >= n_cols are zero, without touching them.
        # irfft zero-fills missing columns ~3x slower than a padded input, so the spectrum is
        # copied into a zero buffer whose tail stays zero.
        shape = (*spec.shape[:-1], self.n // 2 + 1)
        buf = self._buffer(f"pad{len(shape)}", shape, spec.dtype, zeros=True)
        torch.fft.ifft(spec, dim=-2, out=buf[..., : self.n_cols])
        return torch.fft.irfft(buf, n=self.n, dim=-1, out=out)

    def _to_spectrum(self, field: torch.Tensor) -> torch.Tensor:
        # rfft2 restricted to the stored columns, into reused arrays.
        *batch, n, _ = field.shape
        half = torch.fft.rfft(field, dim=-1, out=self._buffer("half", (*batch, n, n // 2 + 1), self._grad.dtype))
        return torch.fft.fft(half[..., : self.n_cols], dim=-2,
                             out=self._buffer("spectrum", (*batch, n, self.n_cols), self._grad.dtype))

    def step(self) -> float:
        """Advance every simulation by one adaptive time step.

        Returns
        -------
        float
            The step ``dt`` taken.
        """
        w = self.w_hat
        a, b, c, d, t, t2 = (self._buffer(name, w.shape, w.dtype) for name in "abcdtu")
        self.nonlinear(w, track_speed=True, out=a)
        speed = self.last_max_speed
        dx = 2 * math.pi / self.n
        dt = self.p.max_dt if speed == 0 else min(self.p.max_dt, self.p.cfl * dx / speed)
        e2 = torch.exp(self.linear * (dt / 2))
        e1 = e2 * e2
        # The classical RK4 stages with an integrating factor, each operation the one
        # torch evaluates in the written formulas (so the same rounding), into reused arrays:
        # b = N(e2 (w + dt/2 a)), c = N(e2 w + dt/2 b), d = N(e1 w + dt e2 c).
        torch.mul(a, 0.5 * dt, out=t).add_(w)
        self.nonlinear(torch.mul(e2, t, out=t), out=b)
        torch.mul(e2, w, out=t).add_(torch.mul(b, 0.5 * dt, out=t2))
        self.nonlinear(t, out=c)
        torch.mul(e1, w, out=t).add_(torch.mul(dt * e2, c, out=t2))
        self.nonlinear(t, out=d)
        # w = e1 w + dt/6 (e1 a + 2 e2 (b + c) + d)
        torch.mul(2 * e2, b.add_(c), out=t2).add_(torch.mul(e1, a, out=t)).add_(d)
        w = torch.mul(e1, w).add_(t2.mul_(dt / 6))
        if self._amp > 0:
            w.add_(math.sqrt(dt) * self.forcing_sample())
        w[..., 0, 0] = 0
        self.w_hat = w.mul_(self.dealias)
        self.time += dt
        return dt

    def vorticity(self) -> torch.Tensor:
        """Current vorticity fields.

        Returns
        -------
        torch.Tensor
            ``(batch, n, n)`` real tensor.

        Shapes
        ------
        -> (batch, n, n)
        """
        return self._to_grid(self.w_hat)

    def energy(self) -> torch.Tensor:
        """Kinetic energy ``<|u|^2> / 2`` of each simulation, from ``|w_hat|^2 / |k|^2`` (Parseval).

        Shapes
        ------
        -> (batch,)
        """
        return 0.5 * (self.w_hat.abs() ** 2 * self.inv_k2 * self.half_weight).sum(dim=(-2, -1)) / self.n**4

    def enstrophy(self) -> torch.Tensor:
        """Enstrophy ``<w^2> / 2`` of each simulation, from ``|w_hat|^2`` (Parseval).

        Shapes
        ------
        -> (batch,)
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


def check_real_number(value: object, name: str, *, positive: bool = False, nonnegative: bool = False) -> float:
    """Check a finite real parameter of the simulation.

    Parameters
    ----------
    value : object
        Candidate number.
    name : str
        Argument name used in error messages.
    positive, nonnegative : bool
        Also require ``value > 0`` or ``value >= 0``.

    Returns
    -------
    float
        ``value`` as a Python float.
    """
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
