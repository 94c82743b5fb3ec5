"""Real solid harmonics in closed form and the closed-form wavelet response of Gaussian densities."""

from __future__ import annotations

import math

import pytest
import torch

from wavephase.scattering.solid_harmonics import (
    monomial_values,
    monomials,
    real_solid_harmonic_coefficients,
    real_solid_harmonics,
    solid_harmonic_matrix,
    solid_harmonic_response,
)
from wavephase.testing import relative_error

# Small tensors gain nothing from threads, and on a shared machine threads thrash.
pytestmark = pytest.mark.usefixtures("one_torch_thread")

F64 = torch.float64


@pytest.mark.parametrize("l", range(6))
def test_solid_harmonics_orthonormal_and_harmonic(l: int) -> None:
    mono, coef = real_solid_harmonic_coefficients(l)
    assert coef.shape == (2 * l + 1, (l + 1) * (l + 2) // 2) and (mono.sum(1) == l).all()
    x = torch.randn(50, 3, dtype=F64, generator=torch.Generator().manual_seed(l))
    values = real_solid_harmonics(x, l)[:, l * l:]
    # Addition theorem: sum_m R_l^m(x)^2 = (2l+1)/(4 pi) |x|^{2l} for an orthonormal basis.
    expected = (2 * l + 1) / (4 * math.pi) * (x**2).sum(-1) ** l
    torch.testing.assert_close((values**2).sum(-1), expected, rtol=1e-10, atol=1e-12)
    # Harmonic: the Laplacian vanishes (second derivatives by autograd; trivial for l < 2).
    if l >= 2:
        xg = x[:5].clone().requires_grad_(True)
        for m in range(2 * l + 1):
            (grad,) = torch.autograd.grad(real_solid_harmonics(xg, l)[:, l * l + m].sum(), xg, create_graph=True)
            lap = sum(torch.autograd.grad(grad[:, d].sum(), xg, retain_graph=True)[0][:, d] for d in range(3))
            assert float(lap.abs().max()) < 1e-9 * float(expected[:5].max())


def test_closed_form_matches_fft_convolution() -> None:
    """rho * psi by the closed form equals a brute-force periodic convolution on a grid."""
    sigma, scale, L, h, n = 0.35, 0.6, 3, 0.1, 96
    pos = torch.tensor([[0.2, -0.1, 0.3], [-0.9, 0.4, -0.2], [0.5, 0.8, -0.6]], dtype=F64)
    z = torch.tensor([6.0, 1.0, 8.0], dtype=F64)
    t = (torch.arange(n, dtype=F64) - n // 2) * h
    grid = torch.stack(torch.meshgrid(t, t, t, indexing="ij"), -1)
    d2 = ((grid[..., None, :] - pos) ** 2).sum(-1)
    rho = (z * torch.exp(-d2 / (2 * sigma**2))).sum(-1) / (2 * math.pi * sigma**2) ** 1.5
    offsets = torch.fft.ifftshift(grid, dim=(0, 1, 2))  # kernel origin at index 0
    harm = real_solid_harmonics(offsets, L)
    psi = (harm * torch.exp(-(offsets**2).sum(-1) / (2 * scale**2))[..., None]) * (2 * math.pi) ** -1.5
    psi = psi * torch.cat([torch.full((2 * l + 1,), scale ** (-3 - l), dtype=F64) for l in range(L + 1)])
    conv = torch.fft.ifftn(torch.fft.fftn(rho)[..., None] * torch.fft.fftn(psi, dim=(0, 1, 2)), dim=(0, 1, 2)).real
    conv = conv * h**3
    sel = (slice(30, 66, 5),) * 3
    points = grid[sel].reshape(-1, 3)
    analytic = solid_harmonic_response(pos, z, points, scale, sigma, L)
    brute = conv[sel].reshape(-1, (L + 1) ** 2)
    assert relative_error(analytic, brute) < 1e-6


def test_matrix_form_matches_degree_by_degree_evaluation() -> None:
    x = torch.randn(7, 3, dtype=F64, generator=torch.Generator().manual_seed(0))
    L = 4
    assert monomial_values(x, L).shape == (7, sum(len(monomials(l)) for l in range(L + 1)))
    assert solid_harmonic_matrix(L).shape == (35, 25)
    for l in range(L + 1):
        mono, coef = real_solid_harmonic_coefficients(l)
        direct = torch.stack([x[:, 0] ** a * x[:, 1] ** b * x[:, 2] ** c for a, b, c in mono.tolist()], -1)
        torch.testing.assert_close(real_solid_harmonics(x, L)[:, l * l:(l + 1) ** 2],
                                   direct @ torch.from_numpy(coef.T), rtol=1e-12, atol=1e-12)


def test_finite_gradient_at_the_origin() -> None:
    x = torch.zeros(2, 3, dtype=F64, requires_grad=True)
    real_solid_harmonics(x, 3).sum().backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("bad, error", [(torch.zeros(4, 2), ValueError), (torch.zeros(4, 3, dtype=torch.int64), TypeError)])
def test_bad_points(bad: torch.Tensor, error: type) -> None:
    with pytest.raises(error):
        real_solid_harmonics(bad, 2)
