"""The Gaussian model and the target check shared by every synthesis."""

from __future__ import annotations

import pytest
import torch

from wavephase.harmonics import power_spectrum_2d
from wavephase.synthesis import check_targets, coarse_grain, gaussian_synthesis, synthesize
from wavephase.testing import relative_error


def test_gaussian_has_target_power_spectrum_on_average(texture):
    t = texture(2, 32)
    x = gaussian_synthesis(t, n_samples=400, random_state=1)
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


def test_gaussian_seeded_and_conditioned(texture):
    t = texture(1, 32)
    assert torch.equal(gaussian_synthesis(t, 2, random_state=3), synthesize(t, "gaussian", 2, random_state=3).fields)
    assert not torch.equal(gaussian_synthesis(t, 2, random_state=3), gaussian_synthesis(t, 2, random_state=4))
    c = coarse_grain(t[0], 4)
    x = gaussian_synthesis(t, 3, conditioning=c)
    assert relative_error(coarse_grain(x, 4), c.expand(3, -1, -1)) < 1e-5


@pytest.mark.parametrize("target, match", [
    (torch.ones(32, 32), "constant"),
    (torch.stack([torch.randn(32, 32), torch.full((32, 32), 7.0)]), r"\[1\] are constant"),
    (torch.full((32, 32), float("nan")), "non-finite"),
    (torch.randn(4, 4), "too small"),
    ([torch.randn(32, 32), torch.randn(16, 16)], "different shapes"),
    ([], "empty list"),
    (torch.zeros(0, 32, 32), "no field"),
    (torch.randn(2, 2, 32, 32), r"\(n, M, N\)"),
])
def test_check_targets_names_the_problem(target, match):
    with pytest.raises(ValueError, match=match):
        check_targets(target)
    with pytest.raises(ValueError, match=match):
        gaussian_synthesis(target)


def test_check_targets_accepts_lists_and_arrays():
    fields = [torch.randn(16, 16).numpy(), torch.randn(16, 16).numpy()]
    t = check_targets(fields)
    assert t.shape == (2, 16, 16) and t.dtype == torch.float32
    assert check_targets(torch.randn(16, 16, dtype=torch.float64)).dtype == torch.float64


def test_bad_seed():
    with pytest.raises(TypeError, match="random_state"):
        gaussian_synthesis(torch.randn(16, 16), random_state=1.5)
