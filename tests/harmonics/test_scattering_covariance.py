"""ScatteringCovariance: the Fourier-domain moments against their spatial definition."""

from __future__ import annotations

import pytest
import torch

from wavephase.harmonics import ScatteringCovariance

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def texture(n: int = 2, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Non-Gaussian stationary test field: exponential of smoothed noise."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n, size, size, generator=g, dtype=torch.float64)
    k = torch.fft.fftfreq(size, dtype=torch.float64)
    kk = (k[:, None] ** 2 + k[None] ** 2).sqrt()
    smooth = torch.fft.ifft2(torch.fft.fft2(w) * torch.exp(-((kk / 0.12) ** 2))).real
    return 3.0 + torch.exp(0.7 * smooth / smooth.std())


def test_scattering_covariance_matches_spatial_definition():
    sc = ScatteringCovariance((32, 32), 3, 4, dtype=torch.float64)
    x = texture(2, 32)
    m, power, _ = sc.raw_moments(x)
    z = sc.wavelet_transform(x)
    a = z.abs()

    def conv(f: torch.Tensor, j: int, l: int) -> torch.Tensor:
        return torch.fft.ifft2(torch.fft.fft2(f) * sc.psi[j, l])

    s3 = (z[:, 2, 1] * conv(a[:, 0, 3], 2, 1).conj()).mean((-2, -1))
    torch.testing.assert_close(m["S3"][:, sc.pairs.index((0, 2)), 3, 1], s3)
    s4 = (conv(a[:, 0, 2], 2, 3) * conv(a[:, 1, 2], 2, 3).conj()).mean((-2, -1))
    torch.testing.assert_close(m["S4"][:, sc.triples.index((0, 1, 2)), 2, 3], s4)
    torch.testing.assert_close(m["S1"].real, a.mean((-2, -1)))
    torch.testing.assert_close(power, a.square().mean((-2, -1)))
    # translation invariance of every family
    sc.set_reference(x)
    shifted = torch.roll(x, (5, -3), (-2, -1))
    for k, v in sc(x).items():
        torch.testing.assert_close(sc(shifted)[k], v)


def test_scattering_covariance_normalisation_and_gradient():
    sc = ScatteringCovariance((16, 16), 2, 2, dtype=torch.float64)
    t = texture(1, 16)
    sc.set_reference(t)
    # a reference's own S2 is 1 and its mean family (<x> / sigma, 1)
    torch.testing.assert_close(sc.reference_moments["S2"].real, torch.ones(4, dtype=torch.float64))
    torch.testing.assert_close(sc.reference_moments["mean"][1].real, torch.tensor(1.0, dtype=torch.float64))
    assert sc.family_sizes() == {"mean": 2, "S1": 4, "S2": 4, "S3": 3 * 4, "S4": 4 * 4}
    x = torch.randn(1, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1), requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: sc.loss(v), (x,), eps=1e-6, atol=1e-5)
