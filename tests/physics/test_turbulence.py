import math

import pytest
import torch

from wavephase.physics import TurbulenceSolver, turbulence2d, velocity_from_vorticity


def _solver(n=32, batch=4, *, eps=0.0, drag=0.0, nu=0.0, seed=0, dtype=torch.float64, kf=4.0):
    return TurbulenceSolver(n, batch, forcing_wavenumber=kf, forcing_width=1.0, injection_rate=eps, drag=drag,
                            hyperviscosity=nu, hyperviscosity_order=4, cfl=0.5, max_dt=0.02,
                            generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _flatness(w):
    w = w.double() - w.double().mean(dim=(-2, -1), keepdim=True)
    return (w**4).mean(dim=(-2, -1)) / (w**2).mean(dim=(-2, -1)) ** 2


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


def test_generated_fields_are_dealiased_reproducible_and_finite():
    kw = dict(spinup_time=1.0, sample_interval=0.5, progress=False)
    w = turbulence2d(32, 3, seed=1, n_chains=2, **kw)
    assert w.shape == (3, 32, 32) and w.dtype == torch.float32
    assert torch.isfinite(w).all()
    spec = torch.fft.rfft2(w.double()).abs()
    k = torch.fft.fftfreq(32, 1 / 32).abs()[:, None]
    kx = torch.fft.rfftfreq(32, 1 / 32)[None, :]
    outside = (k >= 32 / 3) | (kx >= 32 / 3)
    assert float(spec[:, outside].max()) < 1e-4 * float(spec.max())
    torch.testing.assert_close(w, turbulence2d(32, 3, seed=1, n_chains=2, **kw))
    assert not torch.equal(w, turbulence2d(32, 3, seed=2, n_chains=2, **kw))
    # samples of one chain are taken sample_interval apart, not copies
    assert not torch.equal(w[0], w[2])


def test_spectral_refinement_keeps_the_large_scales():
    s = _solver(n=32, batch=2)
    s.random_initial_condition(3.0, 0.5)
    w32 = s.vorticity()
    e = s.energy().clone()
    s.resample(64)
    assert s.n == 64
    torch.testing.assert_close(s.vorticity()[..., ::2, ::2], w32)
    torch.testing.assert_close(s.energy(), e)


@pytest.mark.slow
def test_vorticity_is_strongly_non_gaussian():
    # Coherent vortices: at 64^2 the default regime gives flatness ~5-8 after 30 time units
    # (measured); a Gaussian field has 3.
    w = turbulence2d(64, 4, seed=0, spinup_time=30.0, initial_wavenumber=6.0, dtype=torch.float32,
                     progress=False)
    assert float(_flatness(w).mean()) > 4.0


def test_cache_round_trip_and_corruption(tmp_path, monkeypatch):
    monkeypatch.setenv("WAVEPHASE_CACHE", str(tmp_path))
    kw = dict(spinup_time=0.3, progress=False, cache=True)
    a = turbulence2d(32, 2, seed=5, **kw)
    files = sorted(p.name for p in (tmp_path / "physics").iterdir())
    assert len(files) == 2 and files[1].endswith(".sha256")
    data = tmp_path / "physics" / files[0]
    torch.save(torch.zeros(2, 32, 32), data)  # tampered entry: digest no longer matches
    b = turbulence2d(32, 2, seed=5, **kw)
    torch.testing.assert_close(a, b)
    assert not torch.equal(torch.load(data, weights_only=True), torch.zeros(2, 32, 32))
    c = turbulence2d(32, 2, seed=5, **kw)
    assert torch.equal(b, c)


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        (dict(size=33), ValueError, "even"),
        (dict(size=16), ValueError, "size"),
        (dict(n_samples=0), ValueError, "n_samples"),
        (dict(drag=-1.0), ValueError, "drag"),
        (dict(cfl=5.0), ValueError, "cfl"),
        (dict(forcing_wavenumber=20.0), ValueError, "forcing_wavenumber"),
        (dict(injection_rate=float("nan")), ValueError, "injection_rate"),
        (dict(dtype=torch.int32), TypeError, "dtype"),
        (dict(seed="x"), TypeError, "seed"),
        (dict(num_threads=0), ValueError, "num_threads"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, err, match):
    args = dict(size=32, n_samples=1, progress=False, spinup_time=0.1)
    args.update(kwargs)
    with pytest.raises(err, match=match):
        turbulence2d(**args)


def test_cached_run_resumes_after_a_kill(tmp_path, monkeypatch):
    import wavephase.physics.turbulence as turb

    monkeypatch.setenv("WAVEPHASE_CACHE", str(tmp_path / "a"))
    kw = dict(spinup_time=0.5, sample_interval=0.2, n_chains=1, max_dt=0.01, progress=False, cache=True)
    original = turb.TurbulenceSolver.step
    counted = {"n": 0}

    def counting_step(self):
        counted["n"] += 1
        return original(self)

    monkeypatch.setattr(turb.TurbulenceSolver, "step", counting_step)
    reference = turbulence2d(32, 2, seed=7, **kw)
    total_steps, counted["n"] = counted["n"], 0
    assert total_steps > 65

    monkeypatch.setenv("WAVEPHASE_CACHE", str(tmp_path / "b"))
    monkeypatch.setattr(turb, "_CHECKPOINT_SECONDS", 0.0)
    calls = {"n": 0}

    def dying_step(self):
        calls["n"] += 1
        if calls["n"] == 60:  # t ~ 0.6: past the first sample
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(turb.TurbulenceSolver, "step", dying_step)
    with pytest.raises(KeyboardInterrupt):
        turbulence2d(32, 2, seed=7, **kw)
    partial = list((tmp_path / "b" / "physics").glob("*.partial"))
    assert len(partial) == 1
    monkeypatch.setattr(turb.TurbulenceSolver, "step", counting_step)
    resumed = turbulence2d(32, 2, seed=7, **kw)
    torch.testing.assert_close(resumed, reference, rtol=0, atol=0)
    # it went on from the checkpoint: the 59 steps done before the kill are not redone
    assert counted["n"] == total_steps - 59
    assert not list((tmp_path / "b" / "physics").glob("*.partial"))


def test_solver_rejects_bad_arguments():
    with pytest.raises(ValueError, match="even"):
        _solver(n=33)
    with pytest.raises(ValueError, match="drag"):
        _solver(drag=-0.1)
    with pytest.raises(ValueError, match="forcing_wavenumber"):
        _solver(n=16, kf=6.0)
