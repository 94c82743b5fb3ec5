"""The pseudo-spectral solver: conservation laws, damping, forcing, refinement, bad arguments."""

import math

import pytest
import torch

from wavephase.physics import TurbulenceSolver, velocity_from_vorticity
from wavephase.physics.turbulence_solver import wavenumbers


def _solver(n=32, batch=4, *, eps=0.0, drag=0.0, nu=0.0, seed=0, dtype=torch.float64, kf=4.0):
    return TurbulenceSolver(n, batch, forcing_wavenumber=kf, forcing_width=1.0, injection_rate=eps, drag=drag,
                            hyperviscosity=nu, hyperviscosity_order=4, cfl=0.5, max_dt=0.02,
                            generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _spectral_grad(f):
    n = f.shape[-1]
    kx = torch.fft.rfftfreq(n, 1.0 / n, dtype=f.dtype)
    ky = torch.fft.fftfreq(n, 1.0 / n, dtype=f.dtype)[:, None]
    F = torch.fft.rfft2(f)
    return torch.fft.irfft2(1j * kx * F, s=(n, n)), torch.fft.irfft2(1j * ky * F, s=(n, n))


def test_velocity_is_incompressible_and_has_the_given_curl():
    # band-limited field: spectral derivatives of the Nyquist modes are not real
    spec = torch.fft.rfft2(torch.randn(2, 3, 32, 32, dtype=torch.float64))
    spec[..., 16, :] = 0
    spec[..., 16] = 0
    w = torch.fft.irfft2(spec, s=(32, 32))
    u, v = velocity_from_vorticity(w)
    ux, _ = _spectral_grad(u)
    vx, vy = _spectral_grad(v)
    _, uy = _spectral_grad(u)
    assert float((ux + vy).abs().max()) < 1e-10
    torch.testing.assert_close(vx - uy, w - w.mean(dim=(-2, -1), keepdim=True))
    with pytest.raises(ValueError, match="square"):
        velocity_from_vorticity(torch.zeros(8, 16, dtype=torch.float64))


def test_inviscid_unforced_flow_conserves_energy_and_enstrophy():
    # The dealiased advection term conserves both quadratic invariants; only the RK4
    # time-stepping error remains.
    s = _solver()
    s.random_initial_condition(4.0, 0.5)
    e0, z0 = s.energy().clone(), s.enstrophy().clone()
    for _ in range(100):
        s.step()
    assert s.time > 0.5
    torch.testing.assert_close(s.energy(), e0, rtol=1e-5, atol=0)
    torch.testing.assert_close(s.enstrophy(), z0, rtol=1e-4, atol=0)
    assert float((s.energy() / e0 - 1).abs().max()) < 1e-5


def test_linear_drag_decays_energy_exponentially():
    mu = 0.7
    s = _solver(drag=mu)
    s.random_initial_condition(4.0, 0.5)
    e0 = s.energy().clone()
    for _ in range(60):
        s.step()
    torch.testing.assert_close(s.energy(), e0 * math.exp(-2 * mu * s.time), rtol=1e-5, atol=0)


def test_forcing_injects_energy_at_the_requested_rate():
    # Starting from rest without dissipation, E(t) = eps * t in expectation.
    eps = 0.3
    s = _solver(n=32, batch=64, eps=eps)
    for _ in range(50):
        s.step()
    rate = float(s.energy().mean()) / s.time
    assert rate == pytest.approx(eps, rel=0.15)
    # and the forcing only touches the ring |k - k_f| <= 1/2
    spec = s.forcing_sample().abs().sum(0)
    k = torch.sqrt(s.k2)
    assert float(spec[(k < 3.5) | (k > 4.5)].max()) == 0.0
    assert float(spec[(k >= 3.5) & (k <= 4.5)].min()) > 0.0


def test_forced_damped_flow_reaches_the_stationary_energy():
    eps, mu = 0.2, 0.5
    s = _solver(n=32, batch=16, eps=eps, drag=mu, nu=1e-7)
    energies = []
    while s.time < 10.0:
        s.step()
        if s.time > 5.0:
            energies.append(float(s.energy().mean()))
    # stationary balance eps = 2 mu E; the hyperviscous loss at k_f is negligible here
    e = torch.tensor(energies)
    assert torch.isfinite(e).all()
    assert float(e.mean()) == pytest.approx(eps / (2 * mu), rel=0.15)
    first, second = e[: len(e) // 2].mean(), e[len(e) // 2:].mean()
    assert float(abs(first - second) / e.mean()) < 0.1


def test_spectral_refinement_keeps_the_large_scales():
    s = _solver(n=32, batch=2)
    s.random_initial_condition(3.0, 0.5)
    w32 = s.vorticity()
    e = s.energy().clone()
    s.resample(64)
    assert s.n == 64
    torch.testing.assert_close(s.vorticity()[..., ::2, ::2], w32)
    torch.testing.assert_close(s.energy(), e)


def test_solver_rejects_bad_arguments():
    with pytest.raises(ValueError, match="even"):
        _solver(n=33)
    with pytest.raises(ValueError, match="drag"):
        _solver(drag=-0.1)
    with pytest.raises(ValueError, match="forcing_wavenumber"):
        _solver(n=16, kf=6.0)


def test_wavenumbers_are_in_rfft2_layout():
    kx, ky = wavenumbers(8, torch.float64, "cpu")
    assert kx.shape == (1, 5) and ky.shape == (8, 1)
    assert kx.flatten().tolist() == [0, 1, 2, 3, 4] and ky.flatten().tolist() == [0, 1, 2, 3, -4, -3, -2, -1]


def test_solver_device_is_checked():
    from wavephase.exceptions import DeviceUnavailableError

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(DeviceUnavailableError, match="cuda"):
        TurbulenceSolver(32, 1, forcing_wavenumber=4.0, forcing_width=1.0, injection_rate=0.0, drag=0.0,
                         hyperviscosity=0.0, hyperviscosity_order=4, cfl=0.5, max_dt=0.02,
                         generator=torch.Generator(), device="cuda")


def _plain_step(s: TurbulenceSolver, w: torch.Tensor, dt: float) -> torch.Tensor:
    """The integrating-factor RK4 step as its formulas read, every intermediate a new tensor."""
    def nonlinear(w_hat):
        spec = s._grad * w_hat.unsqueeze(-3)
        pad = torch.zeros(*spec.shape[:-1], s.n // 2 + 1, dtype=spec.dtype)
        pad[..., : s.n_cols] = torch.fft.ifft(spec, dim=-2)
        u, v, wx, wy = torch.fft.irfft(pad, n=s.n, dim=-1).unbind(-3)
        half = torch.fft.rfft(u * wx + v * wy, dim=-1)[..., : s.n_cols]
        return -torch.fft.fft(half, dim=-2) * s.dealias

    e2 = torch.exp(s.linear * (dt / 2))
    e1 = e2 * e2
    a = nonlinear(w)
    b = nonlinear(e2 * (w + 0.5 * dt * a))
    c = nonlinear(e2 * w + 0.5 * dt * b)
    d = nonlinear(e1 * w + dt * e2 * c)
    return e1 * w + (dt / 6) * (e1 * a + 2 * e2 * (b + c) + d)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_step_with_reused_buffers_is_bitwise_the_plain_formulas(dtype):
    # The step writes into arrays kept from step to step; the numbers must be exactly those
    # of the formulas (cached and recorded fields depend on them), and the returned
    # nonlinear term must not be one of those arrays.
    s = _solver(n=32, batch=3, drag=0.01, nu=1e-8, dtype=dtype)
    s.random_initial_condition(6.0, 0.5)
    for _ in range(5):
        w = s.w_hat.clone()
        expected = _plain_step(s, w, s.step())
        expected[..., 0, 0] = 0
        assert torch.equal(s.w_hat, expected * s.dealias)
    first = s.nonlinear(s.w_hat)
    second = s.nonlinear(2 * s.w_hat)
    assert first.data_ptr() != second.data_ptr() and not torch.equal(first, second)
    vorticity = s.vorticity()
    s.step()
    assert not torch.equal(vorticity, s.vorticity())
