"""Fourier-domain subsampling on filter blocks (wavephase.scattering.periodize)."""

import pytest
import torch

from wavephase.filters import morlet_bank
from wavephase.scattering.periodize import (
    filter_blocks,
    kymatio_level,
    paired,
    periodized_product,
    periodized_sum,
    periodized_sum_adjoint,
)


def subsampled_spectrum(x_hat, filters, k):
    """Reference: full-size product, then the mean of the k x k blocks (aliasing)."""
    y = x_hat * filters
    M, N = y.shape[-2:]
    return y.reshape(*y.shape[:-2], k, M // k, k, N // k).sum((-4, -2)) / k**2


@pytest.mark.parametrize("is_paired", [False, True])
def test_periodized_product_real_filters_match_complex_filters(is_paired):
    # Real filters take the (re, im)-pair path; complex filters the plain complex product.
    g = torch.Generator().manual_seed(3)
    filters = torch.rand(3, 16, 12, generator=g, dtype=torch.float64)
    blocks, values = filter_blocks(filters, 4)
    x_hat = torch.randn(2, 1, 16, 12, generator=g, dtype=torch.complex128, requires_grad=True)
    y = periodized_product(x_hat, paired(values) if is_paired else values, blocks, is_paired=is_paired)
    ref = periodized_product(x_hat, values.to(torch.complex128), blocks)
    assert y.shape == ref.shape == (2, 3, 4, 3)
    torch.testing.assert_close(y, ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ref, subsampled_spectrum(x_hat, filters, 4), rtol=1e-12, atol=1e-12)
    w = torch.randn(y.shape, generator=g, dtype=torch.complex128)
    (grad,) = torch.autograd.grad((y * w.conj()).real.sum(), x_hat)
    (grad_ref,) = torch.autograd.grad((ref * w.conj()).real.sum(), x_hat)
    torch.testing.assert_close(grad, grad_ref, rtol=1e-12, atol=1e-12)


def test_adjoint_is_the_transpose_of_the_sum():
    # <P x, y> = <x, P* y> for a filter bank whose blocks are partly dropped.
    g = torch.Generator().manual_seed(4)
    bank = morlet_bank((32, 32), 3, 4, dtype=torch.float64)
    blocks, values = filter_blocks(bank.psi[1], 2)
    x = torch.randn(3, 1, 32, 32, generator=g, dtype=torch.float64)
    y = periodized_sum(x, values, blocks)
    w = torch.randn(y.shape, generator=g, dtype=torch.float64)
    adjoint = periodized_sum_adjoint(w, values, blocks, -2, x.shape)
    torch.testing.assert_close((y * w).sum(), (x * adjoint).sum(), rtol=1e-12, atol=0)


def test_filter_blocks_drop_negligible_values_and_crop_to_their_support():
    bank = morlet_bank((64, 64), 3, 4, dtype=torch.float64)
    blocks, values = filter_blocks(bank.psi[2], 4)
    peak = values.abs().amax()
    nonzero = values[values != 0].abs()
    # Tails below the tolerance are exact zeros (no float32 denormals left to slow products).
    assert (nonzero > 1e-9 * peak).all() and (values.float()[values != 0].abs() > torch.finfo(torch.float32).tiny).all()
    assert len(blocks.crops) == len(blocks.index) == len(values) and blocks.k == 4 and not blocks.complete
    for b, (r0, r1, c0, c1) in enumerate(blocks.crops):
        inside = torch.zeros_like(values[b], dtype=torch.bool)
        inside[..., r0:r1, c0:c1] = True
        assert (values[b][~inside] == 0).all() and (values[b][inside] != 0).any()
    areas = [(r1 - r0) * (c1 - c0) for r0, r1, c0, c1 in blocks.crops]
    assert areas == sorted(areas, reverse=True) and areas[-1] < areas[0]


def test_filter_blocks_refuse_a_grid_the_factor_does_not_divide():
    with pytest.raises(ValueError, match="not divisible"):
        filter_blocks(torch.ones(2, 10, 12), 4)


def test_kymatio_level_keeps_the_low_band():
    f = torch.arange(64.0).reshape(8, 8)
    assert torch.equal(kymatio_level(f, 0), f)
    # rows and columns -2, -1, 0, 1 of the 8-point grid, laid out as on a 4-point grid
    assert torch.equal(kymatio_level(f, 1), f[[0, 1, 6, 7]][:, [0, 1, 6, 7]])
