import math

import numpy as np
import pytest
import torch

from wavephase.filters import custom_bank, gabor_fourier, littlewood_paley, morlet_bank, morlet_fourier


def spatial_gabor_dft(M, N, sigma, theta, xi, slant, tiles=3):
    """Reference: sample the spatial Gabor over (2 tiles + 1)^2 periods, sum, DFT (slow, independent)."""
    R = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    curv = R @ np.diag([1.0, slant**2]) @ R.T / (2 * sigma**2)
    out = np.zeros((M, N), complex)
    for e1 in range(-tiles, tiles + 1):
        for e2 in range(-tiles, tiles + 1):
            u1, u2 = np.mgrid[e1 * M:(e1 + 1) * M, e2 * N:(e2 + 1) * N]
            quad = curv[0, 0] * u1**2 + 2 * curv[0, 1] * u1 * u2 + curv[1, 1] * u2**2
            out += np.exp(-quad + 1j * xi * (u1 * np.cos(theta) + u2 * np.sin(theta)))
    out /= 2 * 3.1415 * sigma**2 / slant
    return np.fft.fft2(out)


@pytest.mark.parametrize("sigma,theta,xi,slant", [(0.8, 0.3, 3 * math.pi / 4, 0.5), (1.6, -1.2, 1.1, 0.5),
                                                   (3.2, 2.0, 0.4, 1.0)])
def test_gabor_closed_form_matches_sampled_periodised_filter(sigma, theta, xi, slant):
    M, N = 24, 20
    ref = spatial_gabor_dft(M, N, sigma, theta, xi, slant)
    f64 = dict(dtype=torch.float64)
    ours = gabor_fourier((M, N), torch.tensor(sigma, **f64), torch.tensor(theta, **f64), torch.tensor(xi, **f64),
                         slant).numpy()
    assert np.abs(ref.imag).max() < 1e-9 * np.abs(ref).max()
    assert np.abs(ours - ref.real).max() < 1e-10 * np.abs(ref).max()


def test_morlet_has_zero_mean_and_expected_peak():
    psi = morlet_fourier((64, 64), torch.tensor(1.6), torch.tensor(0.0), torch.tensor(3 * math.pi / 8))
    assert abs(float(psi[0, 0])) < 1e-12
    peak = np.unravel_index(int(psi.argmax()), psi.shape)
    # centre frequency 3 pi / 8 along the row axis = bin 64 * 3/16 = 12
    assert peak == (12, 0)


def test_bank_shapes_defaults_and_cache():
    bank = morlet_bank((40, 48), J=3, L=6)
    assert bank.psi.shape == (3, 6, 40, 48) and bank.phi.shape == (40, 48)
    assert bank.slant == pytest.approx(4 / 6)
    assert torch.allclose(bank.sigma, torch.tensor([0.8, 1.6, 3.2], dtype=torch.float64))
    assert torch.allclose(bank.xi, 3 * math.pi / 4 / torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64))
    assert bank.sigma_phi == pytest.approx(0.8 * 4)
    assert morlet_bank((40, 48), J=3, L=6) is bank  # cached
    assert morlet_bank((40, 48), J=3, L=6, dtype=torch.float64).psi.dtype == torch.float64
    assert morlet_bank((40, 48), J=3, L=6, sigma0=1.0) is not bank


def test_littlewood_paley_bounds():
    bank = morlet_bank((128, 128), J=5, L=8, dtype=torch.float64)
    lp = bank.littlewood_paley()
    w = torch.fft.fftfreq(128, dtype=torch.float64) * 2 * math.pi
    radius = (w[:, None] ** 2 + w[None, :] ** 2).sqrt()
    # The ScatNet/Kymatio Morlet frame: upper bound ~1.04 everywhere; lower bound 0.75 up to
    # |w| = pi/2 and 0.33 on the disc |w| <= pi, with less coverage only in the square's corners.
    assert float(lp.max()) < 1.05
    assert float(lp[radius <= math.pi / 2].min()) > 0.74
    assert float(lp[radius <= math.pi].min()) > 0.33
    assert float(lp[0, 0]) == pytest.approx(float(bank.phi[0, 0]) ** 2)


def test_wavelet_transform_energy_within_frame_bounds():
    bank = morlet_bank((64, 64), J=4, L=8, dtype=torch.float64)
    lp = littlewood_paley(bank.psi, bank.phi)
    x = torch.randn(4, 64, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    x_hat = torch.fft.fft2(x)
    # theta in [0, pi) plus the mirrored wavelets theta + pi, with half weight each
    energy = (x_hat[:, None, None] * bank.psi).abs().square().sum((1, 2, 3, 4))
    energy_mirror = (x_hat[:, None, None] * torch.flip(torch.roll(torch.flip(bank.psi, (-2, -1)), (1, 1), (-2, -1)),
                                                       ())).abs().square().sum((1, 2, 3, 4))
    total = 0.5 * (energy + energy_mirror) + (x_hat * bank.phi).abs().square().sum((1, 2))
    norm = x_hat.abs().square().sum((1, 2))
    # Parseval: ||Wx||^2 = sum_w A(w) |x_hat(w)|^2, hence bounded by min/max of A.
    expected = (lp * x_hat.abs().square()).sum((1, 2))
    assert torch.allclose(total, expected, rtol=1e-10)
    assert (total >= lp.min() * norm).all() and (total <= lp.max() * norm).all()


@pytest.mark.parametrize("kwargs,error", [
    (dict(shape=(8, 8), J=4), ValueError),
    (dict(shape=(32, 32), J=0), ValueError),
    (dict(shape=(32, 32), J=2.0), TypeError),
    (dict(shape=(32,), J=2), ValueError),
    (dict(shape=(32, 32), J=2, L=0), ValueError),
    (dict(shape=(32, 32), J=2, xi0=4.0), ValueError),
    (dict(shape=(32, 32), J=2, sigma0=-1.0), ValueError),
    (dict(shape=(32, 32), J=2, dtype=torch.int32), TypeError),
])
def test_bad_bank_parameters(kwargs, error):
    with pytest.raises(error, match=r"\w"):
        morlet_bank(**kwargs)


def test_custom_bank_validation():
    psi = torch.rand(2, 4, 16, 16)
    bank = custom_bank(psi, torch.rand(16, 16))
    assert bank.J == 2 and bank.L == 4 and bank.shape == (16, 16)
    with pytest.raises(ValueError, match="phi must have shape"):
        custom_bank(psi, torch.rand(8, 8))
    with pytest.raises(TypeError, match="real"):
        custom_bank(psi.to(torch.complex64), torch.rand(16, 16))
