"""The stationarity diagnostics: stationary fields pass, trends and heterogeneous fields are flagged."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wavephase.metrics import stationarity


def _smooth(n: int, size: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    k = torch.fft.fftfreq(size)
    kk = (k[:, None] ** 2 + k[None] ** 2).sqrt()
    w = torch.fft.ifft2(torch.fft.fft2(torch.randn(n, size, size, generator=g, dtype=torch.float64))
                        * torch.exp(-((kk / 0.1) ** 2))).real
    return w / w.std()


def test_stationary_fields_pass():
    out = stationarity(_smooth(4, 64, 0))
    assert out["stationary"] == [True] * 4 and out["message"] is None
    assert max(out["trend_r2"]) < 0.1 and max(out["halves_log_ratio"]) < 0.5
    assert stationarity(np.random.default_rng(0).normal(size=(32, 32)))["stationary"] == [True]


def test_a_trend_and_a_heterogeneous_field_are_flagged():
    x = _smooth(2, 64, 1)
    ramp = x[0] + torch.linspace(-5, 5, 64, dtype=torch.float64)[None, :]
    half = torch.cat([x[1, :32], 0.1 * x[1, 32:]])
    out = stationarity(torch.stack([x[0], ramp, half]))
    assert out["stationary"] == [True, False, False]
    assert out["trend_r2"][1] > 0.5 and out["halves_log_ratio"][2] > 1.2
    assert "[1, 2]" in out["message"] and "trend" in out["message"] and "energy" in out["message"]


def test_bad_input():
    with pytest.raises(ValueError, match="x"):
        stationarity(np.zeros((2, 2)))
