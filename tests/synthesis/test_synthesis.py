"""Tests of maximum-entropy synthesis: Gaussian model, microcanonical L-BFGS, conditioning, checkpoints."""

from __future__ import annotations

import warnings

import pytest
import torch

from wavephase.harmonics import PhaseHarmonicStatistics
from wavephase.synthesis import (
    SynthesisDivergenceWarning,
    coarse_grain,
    gaussian_synthesis,
    lift,
    power_spectrum_2d,
    synthesize,
)
from wavephase.testing import relative_error


def texture(n: int = 2, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Non-Gaussian stationary test field: exponential of smoothed noise (flatness ~ 12)."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n, size, size, generator=g)
    k = torch.fft.fftfreq(size)
    kk = (k[:, None] ** 2 + k[None] ** 2).sqrt()
    smooth = torch.fft.ifft2(torch.fft.fft2(w) * torch.exp(-((kk / 0.12) ** 2))).real
    return 3.0 + torch.exp(0.7 * smooth / smooth.std())


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --------------------------------------------------------------------------- coarse graining
def test_coarse_grain_constant_and_lift_round_trip():
    x = texture(3, 32)
    c = coarse_grain(x, 4)
    assert c.shape == (3, 8, 8)
    assert torch.allclose(coarse_grain(torch.full((16, 16), 2.5), 4), torch.full((4, 4), 2.5), atol=1e-6)
    # lift is a right inverse on the band and coarse_grain o lift is idempotent
    assert relative_error(coarse_grain(lift(c, (32, 32)), 4), c) < 1e-6
    # the coarse field is the block average up to the sinc kernel: same mean
    assert torch.allclose(c.mean((-2, -1)), x.mean((-2, -1)), atol=1e-5)


def test_coarse_grain_bad_factor():
    with pytest.raises(ValueError, match="divide"):
        coarse_grain(torch.randn(30, 30), 4)
    with pytest.raises(ValueError, match="smaller than 2x2"):
        coarse_grain(torch.randn(8, 8), 8)


# --------------------------------------------------------------------------- Gaussian model
def test_gaussian_has_target_power_spectrum_on_average():
    t = texture(2, 32)
    x = gaussian_synthesis(t, n_samples=400, seed=1)
    assert x.shape == (400, 32, 32) and x.dtype == t.dtype
    p_t, p_x = power_spectrum_2d(t), power_spectrum_2d(x)
    # averaged periodogram of 400 samples: chi^2 fluctuations ~ 1/sqrt(400) per frequency
    assert relative_error(p_x, p_t) < 0.1
    assert abs(float(x.mean() - t.mean())) < 1e-4
    # radially, the error is far smaller than the frequency-wise one
    assert abs(float(x.var() / t.var(unbiased=False)) - 1) < 0.02
    # Gaussian: flatness 3 whatever the target's
    xc = x - x.mean()
    assert abs(float(xc.pow(4).mean() / xc.pow(2).mean() ** 2) - 3) < 0.1


def test_gaussian_seeded_and_conditioned():
    t = texture(1, 32)
    assert torch.equal(synthesize(t, "gaussian", 2, seed=3), synthesize(t, "gaussian", 2, seed=3))
    assert not torch.equal(synthesize(t, "gaussian", 2, seed=3), synthesize(t, "gaussian", 2, seed=4))
    c = coarse_grain(t[0], 4)
    x = synthesize(t, "gaussian", 3, conditioning=c)
    assert relative_error(coarse_grain(x, 4), c.expand(3, -1, -1)) < 1e-5


# --------------------------------------------------------------------------- microcanonical synthesis
def test_synthesis_reduces_loss_and_matches_moments():
    t = texture(2, 32)
    x, info = synthesize(t, n_samples=2, steps=40, J=3, progress=False, return_info=True)
    assert x.shape == (2, 32, 32) and torch.isfinite(x).all()
    hist = info["loss_history"]
    assert hist[-1] < 1e-2 * hist[0]
    assert all(b <= a * (1 + 1e-6) for a, b in zip(hist, hist[1:]))
    # moments of the result, measured independently, close to the target's
    st = PhaseHarmonicStatistics((32, 32), 3)
    ts = (t - t.mean()) / t.var((-2, -1), unbiased=False).mean().sqrt()
    st.set_reference(ts)
    xs = (x - t.mean()) / t.var((-2, -1), unbiased=False).mean().sqrt()
    noise = torch.randn(2, 32, 32)
    assert float(st.loss(xs)) < 1e-2 * float(st.loss(noise))
    # a non-Gaussian marginal is reproduced: the target's flatness, not 3
    def flat(v: torch.Tensor) -> float:
        v = v - v.mean()
        return float(v.pow(4).mean() / v.pow(2).mean() ** 2)
    assert abs(flat(x) - flat(t)) < 0.25 * abs(flat(t) - 3.0)
    # the mean and variance of the target are restored after standardisation
    assert abs(float(x.mean() - t.mean())) < 0.1 * float(t.std())


def test_synthesis_conditioning_preserves_coarse_field():
    t = texture(1, 32)
    c = coarse_grain(texture(1, 32, seed=5)[0], 8)
    x = synthesize(t, n_samples=2, steps=10, J=3, conditioning=c, progress=False)
    assert relative_error(coarse_grain(x, 8), c.expand(2, -1, -1)) < 1e-5
    # the fine scales differ between samples
    assert float((x[0] - x[1]).abs().max()) > 0.1


def test_checkpoint_resume_equals_uninterrupted(tmp_path):
    t = texture(1, 32)
    kw = dict(n_samples=2, J=3, seed=7, checkpoint_every=4, progress=False)
    full = synthesize(t, steps=12, **kw)
    ck = tmp_path / "synth.pt"
    part, info = synthesize(t, steps=8, checkpoint=ck, return_info=True, **kw)
    assert ck.exists() and info["steps_done"] == 8 and not info["resumed"]
    resumed, info = synthesize(t, steps=12, checkpoint=ck, return_info=True, **kw)
    assert info["resumed"] and info["steps_done"] == 12
    torch.testing.assert_close(resumed, full, rtol=1e-5, atol=1e-5)
    # finished: a rerun returns at once with the same fields
    again, info = synthesize(t, steps=12, checkpoint=ck, return_info=True, **kw)
    assert info["evaluations"] == 0 or info["resumed"]
    torch.testing.assert_close(again, full, rtol=1e-5, atol=1e-5)
    # another seed must not silently reuse the checkpoint
    with pytest.raises(ValueError, match="other arguments"):
        synthesize(t, steps=12, checkpoint=ck, **{**kw, "seed": 8})


def test_checkpoint_resume_after_interruption(tmp_path):
    t = texture(1, 32)
    kw = dict(n_samples=1, J=3, seed=2, steps=12, checkpoint_every=4, progress=False)
    full = synthesize(t, **kw)
    ck = tmp_path / "c.pt"

    def kill(done: int, loss: float) -> None:
        if done >= 8:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        synthesize(t, checkpoint=ck, callback=kill, **kw)
    resumed = synthesize(t, checkpoint=ck, **kw)
    torch.testing.assert_close(resumed, full, rtol=1e-5, atol=1e-5)


def test_divergence_returns_last_finite_iterate(monkeypatch):
    t = texture(1, 32)
    calls = {"n": 0}
    original = PhaseHarmonicStatistics.loss

    def flaky(self, x, target_moments=None):
        calls["n"] += 1
        value = original(self, x, target_moments)
        return value * float("nan") if calls["n"] > 15 else value

    monkeypatch.setattr(PhaseHarmonicStatistics, "loss", flaky)
    with pytest.warns(SynthesisDivergenceWarning, match="diverged"):
        x, info = synthesize(t, steps=40, J=3, checkpoint_every=5, progress=False, return_info=True)
    assert info["diverged"] and torch.isfinite(x).all()
    assert info["steps_done"] < 40


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "target, kwargs, match",
    [
        (torch.ones(32, 32), {}, "constant"),
        (torch.full((32, 32), float("nan")), {}, "non-finite"),
        (torch.randn(4, 4), {}, "too small"),
        (torch.randn(16, 16), {"J": 5}, "too small for J"),
        ([torch.randn(32, 32), torch.randn(16, 16)], {}, "different shapes"),
        (torch.randn(2, 2, 32, 32), {}, r"\(n, M, N\)"),
        (torch.randn(32, 32), {"statistics": "wavelets"}, "phase-harmonics"),
        (torch.randn(32, 32), {"conditioning": torch.randn(5, 5)}, "coarse_grain"),
        (torch.randn(32, 32), {"conditioning": torch.randn(3, 4, 4), "n_samples": 2}, "n_samples"),
    ],
)
def test_bad_input(target, kwargs, match):
    with pytest.raises(ValueError, match=match):
        synthesize(target, steps=1, progress=False, **kwargs)


def test_bad_types():
    with pytest.raises(TypeError, match="n_samples"):
        synthesize(torch.randn(32, 32), n_samples=1.5, progress=False)
    with pytest.raises(TypeError, match="dtype"):
        synthesize(torch.randn(32, 32), dtype=torch.float16, progress=False)


def test_float64_and_numpy_target():
    t = texture(1, 32).double()
    x = synthesize(t.numpy(), n_samples=1, steps=3, J=3, progress=False)
    assert x.dtype == torch.float64 and x.shape == (1, 32, 32)


def test_marginal_family_is_skewness_and_root_flatness():
    t = texture(2, 32).double()
    st = PhaseHarmonicStatistics((32, 32), 3, dtype=torch.float64)
    mom = st(t)["marginal"].real  # no reference: each field's own variance
    xc = t - t.mean((-2, -1), keepdim=True)
    var = xc.pow(2).mean((-2, -1))
    torch.testing.assert_close(mom[:, 0], xc.pow(3).mean((-2, -1)) / var**1.5)
    torch.testing.assert_close(mom[:, 1], xc.pow(4).mean((-2, -1)).sqrt() / var)
    assert PhaseHarmonicStatistics((32, 32), 3, marginal=False)(t.float())["marginal"].shape == (2, 0)


def test_match_each_follows_its_own_target():
    a = texture(1, 32, seed=1)
    b = -texture(1, 32, seed=2) + 7.0  # different mean and negative skewness
    x = synthesize(torch.cat([a, b]), n_samples=2, steps=25, J=3, match="each", progress=False)
    assert abs(float(x[0].mean() - a.mean())) < abs(float(x[0].mean() - b.mean()))
    assert abs(float(x[1].mean() - b.mean())) < abs(float(x[1].mean() - a.mean()))
    with pytest.raises(ValueError, match="match"):
        synthesize(a, match="first", progress=False)


def test_match_sign_aligns_targets_and_draws_random_signs():
    a = texture(1, 32, seed=1) - 2.0  # positive mean (the texture is about 4 on average)
    t = torch.cat([a, -texture(1, 32, seed=2) + 2.0])  # the second target has a negative mean
    x = synthesize(t, n_samples=4, steps=20, J=3, match="sign", progress=False)
    means = x.mean((-2, -1))
    aligned = torch.where(t.mean((-2, -1), keepdim=True) < 0, -t, t)
    # every sample has the aligned targets' mean up to its sign, and both signs occur
    assert torch.allclose(means.abs(), aligned.mean().expand(4), rtol=0.1)
    assert bool((means > 0).any()) and bool((means < 0).any())
    with pytest.raises(ValueError, match="conditioning"):
        synthesize(t, match="sign", conditioning=coarse_grain(t[0], 4), progress=False)


def test_preconditioned_start_is_gaussian_and_keeps_empty_frequencies_empty():
    f = torch.fft.fftfreq(32).abs()
    band = f[:, None].maximum(f[None])
    # like a dealiased simulation: no power at all beyond 0.25 cycles per pixel
    t = torch.fft.ifft2(torch.fft.fft2(texture(2, 32).double()) * (band < 0.25)).real.float()
    x0 = synthesize(t, steps=0, J=3, progress=False)
    white = synthesize(t, steps=0, J=3, precondition=False, progress=False)
    p_t = power_spectrum_2d(t)
    corner = band > 0.3
    assert float(p_t[corner].max()) < 1e-8 * float(p_t.mean())
    assert float(power_spectrum_2d(white)[corner].mean()) > 0.1 * float(p_t.mean())
    assert float(power_spectrum_2d(x0)[corner].max()) < 1e-4 * float(p_t.mean())
    x = synthesize(t, n_samples=2, steps=30, J=3, progress=False)
    assert float(power_spectrum_2d(x)[corner].max()) < 1e-4 * float(p_t.mean())


# --------------------------------------------------------------------------- experiment and CLI
def test_run_synthesis_ising_with_more_targets_than_samples(tmp_path):
    import json

    from wavephase.synthesis.run import run_synthesis

    m = run_synthesis("ising", tmp_path, size=16, n_samples=2, n_targets=6, n_heldout=4, steps=3, progress=False)
    assert (m["n_samples"], m["n_targets"], m["n_heldout"], m["match"]) == (2, 6, 4, "sign")
    energy = json.loads((tmp_path / "metrics.json").read_text())["metrics"]["energy"]
    assert energy["truth_se"] > 0 and energy["synthesis_se"] >= 0 and energy["gaussian_se"] >= 0
    assert "±" in (tmp_path / "metrics.txt").read_text()


def test_cli_synth_on_png_texture(tmp_path):
    import json

    import numpy as np
    from PIL import Image

    from wavephase.cli.main import main

    img = texture(1, 48)[0]
    img = ((img - img.min()) / (img.max() - img.min()) * 255).numpy().astype(np.uint8)
    png = tmp_path / "texture.png"
    Image.fromarray(img).save(png)
    out = tmp_path / "out"
    status = main(["synth", "--field", str(png), "--size", "32", "--steps", "6", "--samples", "2",
                   "--out", str(out), "--no-progress"])
    assert status == 0
    for name in ("fields.png", "spectra.png", "pdf.png", "metrics.json", "metrics.txt", "synthesis.pt"):
        assert (out / name).is_file(), name
    m = json.loads((out / "metrics.json").read_text())
    assert m["n_samples"] == 2 and m["steps_done"] == 6 and m["size"] == 32
    flat = m["metrics"]["flatness"]
    assert set(flat) >= {"synthesis", "gaussian", "truth"}
    assert len(m["metrics"]["spectrum_per_octave"]["truth"]) == 4
    assert m["metrics"]["flatness"]["relative_error_synthesis"] >= 0
    assert "flatness" in (out / "metrics.txt").read_text()
    # a rerun resumes from the finished checkpoint instead of starting again
    m2 = json.loads(json.dumps(__import__("wavephase.synthesis.run", fromlist=["x"]).run_synthesis(
        str(png), out, size=32, n_samples=2, steps=6, progress=False)))
    assert m2["resumed"]


def test_cli_synth_bad_field(tmp_path, capsys):
    from wavephase.cli.main import main

    assert main(["synth", "--field", "clouds", "--out", str(tmp_path), "--no-progress"]) == 2
    assert "neither" in capsys.readouterr().err


# --------------------------------------------------------------------------- scattering covariance
def test_scattering_covariance_matches_spatial_definition():
    from wavephase.harmonics.scattering_covariance import ScatteringCovariance

    sc = ScatteringCovariance((32, 32), 3, 4, dtype=torch.float64)
    x = texture(2, 32).double()
    m, power, _ = sc.raw_moments(x)
    z = torch.fft.ifft2(torch.fft.fft2(x)[:, None, None] * sc.psi)
    a = z.abs()

    def conv(f: torch.Tensor, j: int, l: int) -> torch.Tensor:
        return torch.fft.ifft2(torch.fft.fft2(f) * sc.psi[j, l])

    s3 = (z[:, 2, 1] * conv(a[:, 0, 3], 2, 1).conj()).mean((-2, -1))
    torch.testing.assert_close(m["S3"][:, sc.pairs.index((0, 2)), 3, 1], s3)
    s4 = (conv(a[:, 0, 2], 2, 3) * conv(a[:, 1, 2], 2, 3).conj()).mean((-2, -1))
    torch.testing.assert_close(m["S4"][:, sc.triples.index((0, 1, 2)), 2, 3], s4)
    torch.testing.assert_close(m["S1"].real, a.mean((-2, -1)))
    # translation invariance of every family
    sc.set_reference(x)
    shifted = torch.roll(x, (5, -3), (-2, -1))
    for k, v in sc(x).items():
        torch.testing.assert_close(sc(shifted)[k], v)


def test_scattering_covariance_gradient_and_synthesis():
    from wavephase.harmonics.scattering_covariance import ScatteringCovariance

    sc = ScatteringCovariance((16, 16), 2, 2, dtype=torch.float64)
    sc.set_reference(texture(1, 16).double())
    x = torch.randn(1, 16, 16, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: sc.loss(v), (x,), eps=1e-6, atol=1e-5)
    t = texture(1, 32)
    y, info = synthesize(t, "scattering-covariance", steps=20, J=3, L=4, precondition=False, progress=False,
                         return_info=True)
    assert info["loss_history"][-1] < 0.05 * info["loss_history"][0] and torch.isfinite(y).all()


def test_low_family_is_periodogram_below_coarsest_wavelet():
    t = texture(2, 32).double()
    st = PhaseHarmonicStatistics((32, 32), 3, dtype=torch.float64)
    assert st.low_frequencies[0] == (0, 1) and max(max(abs(a), abs(b)) for a, b in st.low_frequencies) == 4
    per = torch.fft.fft2(t).abs().square() / 32**2
    a, b = st.low_frequencies[5]
    raw = st.raw_moments(t)[0]["low"].real
    torch.testing.assert_close(raw[:, 5], per[:, a % 32, b % 32])
    # normalised by the reference periodogram, averaged over the reference fields
    st.set_reference(t)
    low = st(t)["low"].real
    torch.testing.assert_close(low[:, 5], per[:, a % 32, b % 32] / per[:, a % 32, b % 32].mean())
    torch.testing.assert_close(low.mean(0), torch.ones_like(low[0]))
    assert PhaseHarmonicStatistics((32, 32), 3, low=False)(t.float())["low"].shape == (2, 0)
