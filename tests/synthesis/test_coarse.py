"""Coarse graining, lifting and the conditioning check."""

from __future__ import annotations

import pytest
import torch

from wavephase.synthesis import check_conditioning, coarse_grain, condition, lift
from wavephase.testing import relative_error


def test_coarse_grain_constant_and_lift_round_trip(texture):
    x = texture(3, 32)
    c = coarse_grain(x, 4)
    assert c.shape == (3, 8, 8)
    assert torch.allclose(coarse_grain(torch.full((16, 16), 2.5), 4), torch.full((4, 4), 2.5), atol=1e-6)
    # lift is a right inverse on the band and coarse_grain o lift is idempotent
    assert relative_error(coarse_grain(lift(c, (32, 32)), 4), c) < 1e-6
    # the coarse field is the block average up to the sinc kernel: same mean
    assert torch.allclose(c.mean((-2, -1)), x.mean((-2, -1)), atol=1e-5)


def test_condition_projects_onto_the_coarse_field(texture):
    x, other = texture(2, 32), texture(1, 32, seed=3)[0]
    c = coarse_grain(other, 8)
    y = condition(x, lift(c, (32, 32)), 8)
    assert relative_error(coarse_grain(y, 8), c.expand(2, -1, -1)) < 1e-5
    # a projection: conditioning twice changes nothing, and the fine scales of x are kept
    assert relative_error(condition(y, lift(c, (32, 32)), 8), y) < 1e-6
    assert relative_error(y - lift(coarse_grain(y, 8), (32, 32)), x - lift(coarse_grain(x, 8), (32, 32))) < 1e-5


def test_coarse_grain_bad_factor():
    with pytest.raises(ValueError, match="divide"):
        coarse_grain(torch.randn(30, 30), 4)
    with pytest.raises(ValueError, match="smaller than 2x2"):
        coarse_grain(torch.randn(8, 8), 8)
    with pytest.raises(ValueError, match="common"):
        lift(torch.randn(4, 8), (32, 32))


@pytest.mark.parametrize("c, n_samples, match", [
    (torch.randn(5, 5), 1, "coarse_grain"),
    (torch.randn(3, 4, 4), 2, "n_samples"),
    (torch.randn(2, 2, 4, 4), 1, r"\(m, n\)"),
    (torch.randn(32, 32), 1, "power of two"),
    (torch.randn(12, 12), 1, "power of two"),
])
def test_check_conditioning(c, n_samples, match):
    with pytest.raises(ValueError, match=match):
        check_conditioning(c, (32, 32), n_samples)
    assert check_conditioning(torch.randn(8, 8), (32, 32), 3).shape == (8, 8)
