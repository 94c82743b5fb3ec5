"""Tests of the ``spectrum``, increment (``D``) and pixel-marginal families of PhaseHarmonicStatistics."""

from __future__ import annotations

import math

import pytest
import torch

from wavephase.harmonics import PhaseHarmonicStatistics

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def fields(n: int = 2, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Non-Gaussian float64 test fields (squared smoothed noise plus white noise)."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n, size, size, generator=g, dtype=torch.float64)
    k = torch.fft.fftfreq(size, dtype=torch.float64)
    smooth = torch.fft.ifft2(torch.fft.fft2(w) * torch.exp(-((k[:, None] ** 2 + k[None] ** 2) / 0.02))).real
    return (smooth / smooth.std()).square() + 0.3 * torch.randn(n, size, size, generator=g, dtype=torch.float64)


def test_spectrum_bins_partition_the_wavenumbers_above_the_coarsest_wavelet():
    st = PhaseHarmonicStatistics((32, 48), 3, L=4, rings_per_octave=2, dtype=torch.float64)
    wy = 2 * math.pi * torch.fft.fftfreq(32, dtype=torch.float64)[:, None]
    wx = 2 * math.pi * torch.fft.fftfreq(48, dtype=torch.float64)[None, :]
    radius = (wy**2 + wx**2).sqrt().flatten()
    start = 3 * math.pi / 4 / 4  # peak of the coarsest wavelet, j = 2
    expected = torch.nonzero(radius >= start).flatten()
    assert torch.equal(st.spectrum_index, expected)
    n = st.family_sizes()["spectrum"]
    assert st.spectrum_bin.unique().numel() == n <= 4 * 2 * math.ceil(math.log2(math.pi * math.sqrt(2) / start))
    assert float(st.spectrum_count.sum()) == expected.numel() and bool((st.spectrum_count > 0).all())
    # each bin lies within one ring of half an octave
    for b in range(n):
        r = radius[st.spectrum_index[st.spectrum_bin == b]]
        assert float(r.max() / r.min()) < 2**0.5 + 1e-9
    assert PhaseHarmonicStatistics((32, 32), 3, rings_per_octave=0).family_sizes()["spectrum"] == 0


def test_spectrum_family_is_floored_root_power_ratio():
    x = fields(3)
    st = PhaseHarmonicStatistics((32, 32), 3, dtype=torch.float64)
    raw = st.raw_moments(x)[0]["spectrum"].real
    per = (torch.fft.fft2(x).abs().square() / 32**2).flatten(-2)[:, st.spectrum_index]
    for b in (0, 7, raw.shape[1] - 1):
        torch.testing.assert_close(raw[:, b], per[:, st.spectrum_bin == b].mean(-1))
    st.set_reference(x)
    floor = st.spectrum_floor * x.var((-2, -1), unbiased=False).mean()
    torch.testing.assert_close(st(x)["spectrum"].real, ((raw + floor) / (raw.mean(0) + floor)).sqrt())
    # a field is its own reference: every ratio is 1; the family is translation invariant
    st.set_reference(x[:1])
    torch.testing.assert_close(st(x[:1])["spectrum"].real, torch.ones_like(raw[:1]))
    torch.testing.assert_close(st(torch.roll(x[:1], (3, -5), (-2, -1)))["spectrum"], st(x[:1])["spectrum"])
    # where the reference has no power at all, the floor keeps the moments finite
    smooth = torch.fft.ifft2(torch.fft.fft2(x) * (torch.fft.fftfreq(32).abs() < 0.1)).real
    st.set_reference(smooth)
    assert torch.isfinite(st(x)["spectrum"].real).all() and float(st(x)["spectrum"].real.max()) > 10


def test_marginal_family_has_mean_absolute_deviation():
    x = fields(2)
    st = PhaseHarmonicStatistics((32, 32), 3, dtype=torch.float64)
    mom = st(x)["marginal"].real
    xc = x - x.mean((-2, -1), keepdim=True)
    torch.testing.assert_close(mom[:, 2], xc.abs().mean((-2, -1)) / xc.pow(2).mean((-2, -1)).sqrt())
    # +-1 spins of magnetisation m: E|x - m| = 1 - m^2 = sigma^2, so the moment is sqrt(1 - m^2)
    spins = torch.where(fields(1, seed=3) > 1.0, 1.0, -1.0).double()
    m = float(spins.mean())
    assert abs(m) > 0.1 and abs(float(st(spins)["marginal"].real[0, 2]) - math.sqrt(1 - m * m)) < 1e-12


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_shift_autocorrelations_match_their_rolled_definition(dtype, tol):
    # S11 comes from the periodogram of each subsampled z; it must equal <z(u) conj z(u + tau)>
    # on that grid, tau = 2^j (a, b) in full-grid pixels, on a non-square grid.
    x = fields(2, 48).to(dtype)[..., :40]
    st = PhaseHarmonicStatistics((48, 40), 3, L=4, dtype=dtype)
    z = st.wavelet_transform(x)
    ref = []
    for j in range(st.J):
        s = st._stride(j)
        zj, step = z[:, j, :, ::s, ::s], 2**j // s
        ref.append(torch.stack([(zj * torch.roll(zj, (-a * step, -b * step), (-2, -1)).conj()).mean((-2, -1))
                                for a, b in st.shifts], -1))
    ref = torch.stack(ref, 1).reshape(2, -1)
    got = st.raw_moments(x)[0]["S11"]
    assert float((got - ref).abs().max()) <= tol * float(ref.abs().max())


def test_gradient_of_the_loss_matches_finite_differences():
    st = PhaseHarmonicStatistics((16, 16), 2, L=2, rings_per_octave=1, dtype=torch.float64)
    st.set_reference(fields(1, 16))
    x = fields(1, 16, seed=1).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v: st.loss(v), (x,), eps=1e-6, atol=1e-5)


def test_bad_spectrum_options():
    with pytest.raises(ValueError, match="spectrum_floor"):
        PhaseHarmonicStatistics((32, 32), 3, spectrum_floor=0.0)
    with pytest.raises(ValueError, match="rings_per_octave"):
        PhaseHarmonicStatistics((32, 32), 3, rings_per_octave=-1)


def test_pixel_moments_of_a_set_are_matched_by_one_field_of_the_mean_magnetisation():
    # references: +-1 fields with 600, 700 and 800 up spins (their pixel moments are
    # linear in the magnetisation about the common mean); one +-1 field with 700 up
    # spins matches them all
    g = torch.Generator().manual_seed(0)
    order = torch.randperm(32 * 32, generator=g)

    def spins(n_up: int) -> torch.Tensor:
        s = -torch.ones(32 * 32, dtype=torch.float64)
        s[order[:n_up]] = 1.0
        return s.reshape(32, 32)

    st = PhaseHarmonicStatistics((32, 32), 3, dtype=torch.float64)
    st.set_reference(torch.stack([spins(600), spins(700), spins(800)]))
    own = st(spins(700)[None])
    for family in ("mean", "marginal"):
        torch.testing.assert_close(own[family][0], st.reference_moments[family])
    # a field of another magnetisation does not
    assert float((st(spins(800)[None])["marginal"][0] - st.reference_moments["marginal"]).abs().max()) > 0.05


def test_increment_family_counts_broken_bonds_of_spins():
    st = PhaseHarmonicStatistics((32, 32), 3, dtype=torch.float64)
    assert st.increment_shifts == [(0, 1), (0, 2), (1, -1), (1, 0), (1, 1), (2, 0)]
    x = fields(2)
    raw = st.raw_moments(x)[0]["D"].real.reshape(2, 6, 3)
    d = torch.roll(x, -1, -2) - x  # shift (1, 0)
    torch.testing.assert_close(raw[:, 3], torch.stack([d.abs().mean((-2, -1)), d.pow(2).mean((-2, -1)),
                                                       d.pow(4).mean((-2, -1))], -1))
    # +-1 spins: |d| is 0 or 2, so <|d|> / <d^2>^(1/2) = sqrt(broken fraction) and sqrt<d^4> / <d^2> = 1 / that
    spins = torch.where(fields(1, seed=4) > 1.0, 1.0, -1.0).double()
    mom = st(spins)["D"].real.reshape(6, 3)
    broken = (torch.roll(spins, -1, -1) != spins).double().mean()
    torch.testing.assert_close(mom[0], torch.stack([broken.sqrt(), torch.ones_like(broken), 1 / broken.sqrt()]))
    bare = PhaseHarmonicStatistics((32, 32), 3, increments=False, rings_per_octave=0).set_reference(x)
    assert bare.family_sizes()["D"] == bare.family_sizes()["spectrum"] == 0
    assert bare(x)["D"].shape == bare(x)["spectrum"].shape == (2, 0) and torch.isfinite(bare.loss(x))


def test_increment_lags_add_axis_shifts_whose_moments_are_those_of_the_rolled_field():
    plain = PhaseHarmonicStatistics((32, 32), 3, dtype=torch.float64)
    st = PhaseHarmonicStatistics((32, 32), 3, increment_lags=(4, 8), dtype=torch.float64)
    assert st.increment_shifts == plain.increment_shifts + [(0, 4), (4, 0), (0, 8), (8, 0)]
    assert st.family_sizes()["D"] == 30 and "increment_lags=(4, 8)" in repr(st)
    assert "increment_lags" not in repr(plain)  # earlier configurations keep their fingerprints
    x = fields(2)
    raw = st.raw_moments(x)[0]["D"].real.reshape(2, 10, 3)
    d = torch.roll(x, -8, -2) - x  # shift (8, 0)
    torch.testing.assert_close(raw[:, 9], torch.stack([d.abs().mean((-2, -1)), d.pow(2).mean((-2, -1)),
                                                       d.pow(4).mean((-2, -1))], -1))
    st.set_reference(x[:1])  # a field matches its own moments
    assert float(st.loss(x[:1])) < 1e-12 < float(st.loss(x[1:]))


def test_increment_weight_scales_the_family_by_its_square_root():
    x = fields(2)
    plain = PhaseHarmonicStatistics((32, 32), 3, dtype=torch.float64).set_reference(x[:1])
    heavy = PhaseHarmonicStatistics((32, 32), 3, increment_weight=4.0, dtype=torch.float64).set_reference(x[:1])
    torch.testing.assert_close(heavy(x[1:])["D"], 2 * plain(x[1:])["D"])
    torch.testing.assert_close(heavy(x[1:])["S11"], plain(x[1:])["S11"])
    assert "increment_weight=4.0" in repr(heavy) and "increment_weight" not in repr(plain)
    assert float(heavy.loss(x[1:])) > float(plain.loss(x[1:]))


@pytest.mark.parametrize("kwargs, match", [
    ({"increment_lags": (2,)}, "increment_lags"),
    ({"increment_lags": (4, 4)}, "distinct"),
    ({"increment_lags": (16,)}, "half the field"),
    ({"increment_lags": (4,), "increments": False}, "increments=True"),
    ({"increment_weight": 0.0}, "increment_weight"),
    ({"increment_weight": float("nan")}, "increment_weight"),
])
def test_bad_increment_lags_or_weights_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PhaseHarmonicStatistics((32, 32), 3, **kwargs)


def test_marginal_family_is_skewness_and_root_flatness():
    t = fields(2)
    st = PhaseHarmonicStatistics((32, 32), 3, dtype=torch.float64)
    mom = st(t)["marginal"].real  # no reference: each field's own variance
    xc = t - t.mean((-2, -1), keepdim=True)
    var = xc.pow(2).mean((-2, -1))
    torch.testing.assert_close(mom[:, 0], xc.pow(3).mean((-2, -1)) / var**1.5)
    torch.testing.assert_close(mom[:, 1], xc.pow(4).mean((-2, -1)).sqrt() / var)
    assert PhaseHarmonicStatistics((32, 32), 3, marginal=False)(t.float())["marginal"].shape == (2, 0)


def test_low_family_is_periodogram_below_coarsest_wavelet():
    t = fields(2)
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


def test_pixel_moments_are_taken_about_the_reference_mean():
    x = fields(2)
    st = PhaseHarmonicStatistics((32, 32), 3, dtype=torch.float64)
    mu = x.mean()
    raw = st.raw_moments(x, mu)[0]["mean"].real
    torch.testing.assert_close(raw[:, 1], (x - mu).square().mean((-2, -1)))
    st.set_reference(x)
    # the reference's second pixel moment is its mean square about the common mean, over its variance
    ref = st.reference_moments["mean"].real
    torch.testing.assert_close(ref, torch.stack([mu, torch.ones_like(mu)]) / torch.stack(
        [(x - mu).square().mean().sqrt(), torch.ones_like(mu)]))


def test_subsampled_grid_estimates_the_same_moments():
    x = fields(2, 64)
    full = PhaseHarmonicStatistics((64, 64), 3, L=4, subsample=False, dtype=torch.float64).set_reference(x)
    coarse = PhaseHarmonicStatistics((64, 64), 3, L=4, dtype=torch.float64).set_reference(x)
    # normalised moments are O(1) correlation coefficients: the coarse grid is off by < 0.01
    for family in ("S11", "S00", "S01", "M", "C01", "C00", "Cphase"):
        a, b = full.reference_moments[family], coarse.reference_moments[family]
        assert float((a - b).abs().max()) < 0.01, family
