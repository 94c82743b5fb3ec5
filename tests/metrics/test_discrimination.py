"""discrimination_accuracy: chance for one generator, certainty for different ones, a split by field, bad input."""

import numpy as np
import pytest
import torch

from wavephase.metrics.discrimination import crop_features, crop_fields, discrimination_accuracy
from wavephase.physics import turbulence2d


def _power_law(n: int, side: int, seed: int, slope: float = 2.0) -> torch.Tensor:
    """Gaussian fields with power spectrum ``|k|^-slope`` (one generator, any seed)."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n, side, side, generator=g, dtype=torch.float64)
    k = torch.fft.fftfreq(side) * side
    kk = (k[:, None] ** 2 + k[None] ** 2).sqrt().clamp(min=1.0)
    return torch.fft.ifft2(torch.fft.fft2(w) * kk ** (-slope / 2)).real


def test_two_sets_from_one_generator_are_indistinguishable():
    accs = []
    for seed in range(3):
        r = discrimination_accuracy(_power_law(8, 128, seed), _power_law(8, 128, 100 + seed), random_state=seed)
        assert r["n_fields"] == [8, 8] and r["n_crops"] == 256 and 0 < r["standard_error"] < 0.2
        accs.append(r["accuracy"])
    # measured 0.49, 0.48, 0.40 for these seeds (0.51 +- 0.07 over 8 seeds)
    assert all(0.3 <= a <= 0.7 for a in accs), accs
    assert abs(np.mean(accs) - 0.5) < 0.1, accs


def test_white_noise_is_told_from_a_power_law_and_a_lognormal_field():
    x = _power_law(6, 96, 1)
    assert discrimination_accuracy(torch.randn(6, 96, 96, dtype=torch.float64), x, crop=48)["accuracy"] > 0.95
    # same spectrum shape, different marginal law: the quantile features see it
    y = torch.exp(x / x.std())
    assert discrimination_accuracy(y, x, crop=48)["accuracy"] > 0.95


@pytest.mark.slow
def test_white_noise_is_told_from_turbulence():
    w = turbulence2d(64, 6, random_state=0, spinup_time=10.0, progress=False).double()
    noise = torch.randn(6, 64, 64, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    noise = noise * w.std() + w.mean()  # same mean and variance: only the structure differs
    r = discrimination_accuracy(noise, w, crop=32, J=2)
    assert r["accuracy"] > 0.95, r


def test_result_is_reproducible_and_crops_are_sub_blocks():
    a, b = _power_law(4, 64, 0), _power_law(4, 64, 1)
    assert discrimination_accuracy(a, b, crop=32, J=2) == discrimination_accuracy(a, b, crop=32, J=2)
    crops = crop_fields(a, 16, 3, random_state=2)
    assert crops.shape == (12, 16, 16)
    # every crop of field i is a block of field i
    for i in range(4):
        for j in range(3):
            c = crops[3 * i + j]
            hits = [(r, s) for r in range(49) for s in range(49) if torch.equal(a[i, r:r + 16, s:s + 16], c)]
            assert hits
    f = crop_features(crops, J=2, L=4)
    assert f.shape[0] == 12 and np.isfinite(f).all()


def test_bad_input_is_named():
    x = _power_law(4, 64, 0)
    with pytest.raises(ValueError, match="candidates holds 1"):
        discrimination_accuracy(x[:1], x)
    with pytest.raises(ValueError, match="crop=128"):
        discrimination_accuracy(x, x, crop=128)
    with pytest.raises(ValueError, match="constant"):
        discrimination_accuracy(x, torch.ones(4, 64, 64))
    with pytest.raises(ValueError, match="n_folds"):
        discrimination_accuracy(x, x, n_folds=1)
    with pytest.raises(ValueError, match="C must be"):
        discrimination_accuracy(x, x, C=0.0)
