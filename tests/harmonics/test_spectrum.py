"""The one power spectrum of the library: periodogram and its batch average."""

from __future__ import annotations

import pytest
import torch

from wavephase.harmonics import periodogram, power_spectrum_2d


def test_periodogram_sums_to_the_mean_square_and_is_translation_invariant():
    x = torch.randn(3, 12, 20, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    p = periodogram(x)
    assert p.shape == x.shape
    torch.testing.assert_close(p.mean((-2, -1)), x.square().mean((-2, -1)))
    torch.testing.assert_close(periodogram(torch.roll(x, (3, -5), (-2, -1))), p)
    # the zero wavenumber holds M N <x>^2: the periodogram is not centred
    torch.testing.assert_close(p[:, 0, 0], 12 * 20 * x.mean((-2, -1)).square())


def test_power_spectrum_is_the_centred_periodogram_averaged_over_the_batch():
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1), dtype=torch.float64) + 5.0
    p = power_spectrum_2d(x)
    assert p.shape == (16, 16) and float(p[0, 0]) == pytest.approx(0.0, abs=1e-20)
    torch.testing.assert_close(p.mean(), x.var((-2, -1), unbiased=False).mean())
    torch.testing.assert_close(p, periodogram(x - x.mean((-2, -1), keepdim=True)).reshape(-1, 16, 16).mean(0))
    assert power_spectrum_2d(x.float()).dtype == torch.float32


def test_power_spectrum_bad_input():
    with pytest.raises(ValueError, match="no field"):
        power_spectrum_2d(torch.zeros(0, 8, 8))
    with pytest.raises(ValueError, match="non-finite"):
        power_spectrum_2d(torch.full((8, 8), float("inf")))
    with pytest.raises(TypeError, match="float32 or float64"):
        power_spectrum_2d(torch.zeros(8, 8, dtype=torch.int32))
