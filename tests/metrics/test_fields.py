import json
import math

import numpy as np
import pytest
import torch

from wavephase.metrics.fields import (
    compare_fields,
    flatness,
    increment_pdf,
    ising_observables,
    jackknife_standard_error,
    pixel_pdf,
    power_spectrum,
    spectrum_per_octave,
    structure_functions,
)


def _white(n=8, side=32, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(n, side, side, generator=g, dtype=torch.float64)


def _smooth(n=8, side=64, seed=0, slope=3.0):
    # Gaussian field with power-law spectrum k^-slope.
    x = _white(n, side, seed)
    k = torch.sqrt(torch.fft.fftfreq(side)[:, None] ** 2 + torch.fft.fftfreq(side)[None, :] ** 2) * side
    filt = torch.where(k > 0, k.clamp(min=1) ** (-slope / 2), torch.zeros_like(k))
    return torch.fft.ifft2(torch.fft.fft2(x) * filt).real


def test_white_noise_spectrum_is_flat_at_its_variance():
    k, p = power_spectrum(_white(16, 32, scale=2.0))
    assert k[0] == 1 and k[-1] == 16 and p.shape == (16,)
    # every ring average of |FFT|^2 / (MN) has expectation sigma^2 = 4
    assert np.all(np.abs(p[2:] / 4.0 - 1) < 0.2)


def test_power_law_slope_is_recovered():
    k, p = power_spectrum(_smooth(slope=3.0))
    sel = (k >= 2) & (k <= 20)
    slope = np.polyfit(np.log(k[sel]), np.log(p[sel]), 1)[0]
    assert slope == pytest.approx(-3.0, abs=0.15)


def test_octave_bands_sum_to_variance_and_are_shift_invariant():
    x = _smooth()
    k_low, e = spectrum_per_octave(x)
    assert list(k_low) == [1, 2, 4, 8, 16]
    var = float((x - x.mean(dim=(-2, -1), keepdim=True)).pow(2).mean())
    assert e.sum() == pytest.approx(var, rel=1e-10)
    e2 = spectrum_per_octave(torch.roll(x, (5, -3), dims=(-2, -1)))[1]
    np.testing.assert_allclose(e2, e, rtol=1e-10)
    # numpy input, single field
    assert spectrum_per_octave(x[0].numpy())[1].shape == (5,)


def test_flatness_of_known_distributions():
    assert flatness(_white(16, 64)) == pytest.approx(3.0, abs=0.1)
    g = torch.Generator().manual_seed(1)
    u = torch.rand(16, 64, 64, generator=g, dtype=torch.float64)
    assert flatness(u) == pytest.approx(1.8, abs=0.05)
    lap = torch.distributions.Laplace(0.0, 1.0).sample((8, 64, 64)).double()
    assert flatness(lap) == pytest.approx(6.0, abs=0.6)
    per = flatness(_white(3, 64), per_field=True)
    assert per.shape == (3,)
    # affine invariance
    x = _white(4, 32)
    assert flatness(3 * x + 7) == pytest.approx(flatness(x), rel=1e-10)
    with pytest.raises(ValueError, match="constant"):
        flatness(torch.ones(4, 4))


def test_pixel_pdf_integrates_to_one_and_matches_gaussian():
    c, d = pixel_pdf(_white(16, 64), bins=np.linspace(-5, 5, 51))
    assert float((d * 0.2).sum()) == pytest.approx(1.0, abs=1e-3)
    gauss = np.exp(-c**2 / 2) / math.sqrt(2 * math.pi)
    assert np.max(np.abs(d - gauss)) < 0.02


def test_increments_and_structure_functions_of_gaussian_and_smooth_fields():
    x = _white(8, 64)
    c, d = increment_pdf(x, 3, bins=np.linspace(-5, 5, 51))
    assert np.max(np.abs(d - np.exp(-c**2 / 2) / math.sqrt(2 * math.pi))) < 0.02
    sf = structure_functions(x, orders=(2, 4), lags=[1, 4])
    # increments of unit white noise: N(0, 2), so S_2 = 2, S_4 = 12, flatness 3
    np.testing.assert_allclose(sf["S"][0], 2.0, rtol=0.05)
    np.testing.assert_allclose(sf["S"][1], 12.0, rtol=0.08)
    np.testing.assert_allclose(sf["flatness"], 3.0, atol=0.1)
    # smooth field: S_2(r) grows with r
    s2 = structure_functions(_smooth(), orders=(2,))["S"][0]
    assert np.all(np.diff(s2) > 0)
    assert structure_functions(_smooth())["lags"] == [1, 2, 4, 8, 16]
    with pytest.raises(ValueError, match="lags"):
        structure_functions(x, lags=[40])
    with pytest.raises(ValueError, match="between 1"):
        increment_pdf(x, 0)


def test_ising_observables_of_simple_configurations():
    up = torch.ones(2, 8, 8)
    obs = ising_observables(up)
    assert obs["energy"] == -2.0 and obs["abs_magnetisation"] == 1.0
    np.testing.assert_allclose(obs["correlation"], 1.0)
    checker = (-1.0) ** (torch.arange(8)[:, None] + torch.arange(8)[None, :]).double()
    obs = ising_observables(0.3 * checker)  # thresholded at 0
    assert obs["energy"] == 2.0 and obs["abs_magnetisation"] == 0.0
    np.testing.assert_allclose(obs["correlation"], [(-1.0) ** r for r in obs["r"]])


def _laplace(shape: tuple[int, ...], g: torch.Generator) -> torch.Tensor:
    # Inverse CDF of the unit Laplace law (torch.distributions takes no generator).
    u = torch.rand(shape, generator=g, dtype=torch.float64) - 0.5
    return -torch.sign(u) * torch.log1p(-2 * u.abs())


def test_compare_fields_is_json_and_ranks_a_gaussian_baseline_worse():
    # Every draw from one seeded generator: the global RNG's state here depends on the
    # tests run before, and some of its states put the sample flatness 0.21 off.
    g = torch.Generator().manual_seed(0)
    truth, synth = (_laplace((8, 32, 32), g) for _ in range(2))
    gauss = torch.randn(8, 32, 32, generator=g, dtype=torch.float64) * math.sqrt(2)
    for kind in ("generic", "turbulence", "ising"):
        out = compare_fields(synth, truth, gauss, kind=kind)
        json.dumps(out)
        for entry in out.values():
            assert set(entry) >= {"synthesis", "gaussian", "truth", "relative_error_synthesis",
                                  "relative_error_gaussian"}
    out = compare_fields(synth, truth, gauss, kind="turbulence")
    assert out["flatness"]["relative_error_synthesis"] < 0.2 < out["flatness"]["relative_error_gaussian"]
    assert out["pixel_pdf"]["relative_error_synthesis"] < out["pixel_pdf"]["relative_error_gaussian"]
    assert out["spectrum_per_octave"]["relative_error_gaussian"] < 0.3  # same variance, white
    self_cmp = compare_fields(truth, truth, kind="ising")
    assert all(v["relative_error_synthesis"] == 0.0 for v in self_cmp.values())
    assert self_cmp["flatness"]["gaussian"] is None


def test_jackknife_standard_error_of_a_mean_is_the_textbook_one():
    x = _white(12, 16, scale=3.0) + torch.arange(12, dtype=torch.float64)[:, None, None] ** 0.5
    per_field = x.mean((-2, -1)).numpy()
    se = jackknife_standard_error(lambda t: float(t.mean()), x, n_groups=12)
    assert math.isclose(se, per_field.std(ddof=1) / math.sqrt(12), rel_tol=1e-9)
    # fewer groups: same order; dict outputs keep their keys, arrays their shapes
    se4 = jackknife_standard_error(lambda t: {"m": float(t.mean()), "s": spectrum_per_octave(t)[1]}, x, 4)
    assert 0.3 < se4["m"] / se < 3 and se4["s"].shape == (3,)
    with pytest.raises(ValueError, match="at least 2"):
        jackknife_standard_error(lambda t: float(t.mean()), x[:1])


def test_compare_fields_reports_standard_errors():
    truth, synth = _white(8, 16, seed=1), _white(4, 16, seed=2)
    out = compare_fields(synth, truth, kind="ising")
    assert out["energy"]["truth_se"] > 0 and out["flatness"]["synthesis_se"] > 0
    assert out["energy"]["gaussian_se"] is None and len(out["spectrum_per_octave"]["truth_se"]) == 3
    assert compare_fields(synth, truth, n_groups=0)["std"]["truth_se"] is None
    assert compare_fields(synth[:1], truth)["std"]["synthesis_se"] is None


def test_bad_inputs_are_rejected():
    x = _white(2, 16)
    with pytest.raises(ValueError, match="same size"):
        compare_fields(x, _white(2, 32))
    with pytest.raises(ValueError, match="kind"):
        compare_fields(x, x, kind="fluid")
    with pytest.raises(ValueError, match=r"\(n, M, N\)"):
        power_spectrum(torch.zeros(2, 2, 8, 8))
    with pytest.raises(ValueError, match="non-finite"):
        power_spectrum(torch.full((8, 8), float("nan")))
    with pytest.raises(TypeError, match="complex"):
        flatness(torch.zeros(8, 8, dtype=torch.complex64))
    with pytest.raises(ValueError, match="at least"):
        power_spectrum(torch.zeros(2, 2))
    with pytest.raises(ValueError, match="constant"):
        compare_fields(x, torch.zeros(2, 16, 16, dtype=torch.float64))
