import math

import numpy as np
import pytest
import torch

from wavephase.harmonics import power_spectrum_2d
from wavephase.metrics.fields import (
    as_fields,
    flatness,
    increment_pdf,
    ising_observables,
    spin_histogram,
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
    # seeded: the sample flatness of 32768 Laplace values spreads by about 0.2 around 6
    v = torch.rand(8, 64, 64, generator=g, dtype=torch.float64) - 0.5
    lap = -torch.sign(v) * torch.log1p(-2 * v.abs())
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


def test_spin_histogram_sees_grey_values_and_drifting_levels_that_thresholding_hides():
    gen = torch.Generator().manual_seed(0)
    spins = torch.where(torch.rand(4, 16, 16, generator=gen) < 0.3, 1.0, -1.0).double()
    h = spin_histogram(spins)
    assert h.shape == (5,) and h.sum() == pytest.approx(1.0)
    assert h[[0, 2, 4]].sum() == 0 and h[3] == pytest.approx(float((spins > 0).double().mean()))
    # levels within the window still count as spins, whichever side of +-1; the window's edges are inside it
    np.testing.assert_array_equal(spin_histogram(spins * 0.95), h)
    np.testing.assert_array_equal(spin_histogram(spins * 1.25), h)
    # grey values: the same signs (so the same Ising observables), but no longer spins
    grey = 0.5 * spins
    assert ising_observables(grey)["energy"] == ising_observables(spins)["energy"]
    assert spin_histogram(grey)[2] == 1.0
    assert spin_histogram(spins * 1.3)[[0, 4]].sum() == 1.0
    with pytest.raises(ValueError, match="window"):
        spin_histogram(spins, window=1.0)


def test_ring_spectrum_is_the_library_power_spectrum_averaged_over_rings():
    x = _white(3, 16, seed=4)
    k, p = power_spectrum(x)
    p2d = power_spectrum_2d(x)
    kk = torch.sqrt(torch.fft.fftfreq(16)[:, None] ** 2 + torch.fft.fftfreq(16)[None, :] ** 2) * 16
    ring = torch.round(kk) == 3
    assert k[2] == 3 and p[2] == pytest.approx(float(p2d[ring].mean()), rel=1e-12)


def test_as_fields_follows_the_dtype_policy():
    t = as_fields(np.arange(64, dtype=np.uint8).reshape(8, 8))
    assert t.shape == (1, 8, 8) and t.dtype == torch.float64 and float(t.max()) == 63.0
    with pytest.raises(ValueError, match="no field"):
        as_fields(np.zeros((0, 8, 8)))
    with pytest.raises(TypeError, match="bool"):
        as_fields(np.zeros((8, 8), dtype=bool))


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match=r"\(n, M, N\)"):
        power_spectrum(torch.zeros(2, 2, 8, 8))
    with pytest.raises(ValueError, match="non-finite"):
        power_spectrum(torch.full((8, 8), float("nan")))
    with pytest.raises(TypeError, match="complex"):
        flatness(torch.zeros(8, 8, dtype=torch.complex64))
    with pytest.raises(ValueError, match="at least"):
        power_spectrum(torch.zeros(2, 2))
