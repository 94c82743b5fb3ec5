"""Fixtures of the synthesis tests."""

from __future__ import annotations

from typing import Callable

import pytest
import torch


def _texture(n: int = 2, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Non-Gaussian stationary test field: exponential of smoothed noise (flatness ~ 12)."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n, size, size, generator=g)
    k = torch.fft.fftfreq(size)
    kk = (k[:, None] ** 2 + k[None] ** 2).sqrt()
    smooth = torch.fft.ifft2(torch.fft.fft2(w) * torch.exp(-((kk / 0.12) ** 2))).real
    return 3.0 + torch.exp(0.7 * smooth / smooth.std())


@pytest.fixture
def texture() -> Callable[..., torch.Tensor]:
    """``texture(n, size, seed)``: float32 test fields ``(n, size, size)``."""
    return _texture


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    # Every synthesis test runs on one torch thread (fixture in tests/conftest.py).
    yield
