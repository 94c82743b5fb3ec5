"""Data shared by the classifier tests: oriented bars on noise."""

from __future__ import annotations

import numpy as np
import pytest


def oriented_bars(n: int, size: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Class = orientation of a randomly placed bar (0: horizontal, 1: vertical, 2: diagonal), plus noise.

    A translation-invariant, orientation-selective problem that scattering
    separates linearly and raw pixels do not.
    """
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = 0.2 * rng.standard_normal((n, size, size)).astype(np.float32)
    u = np.arange(size)
    for i, c in enumerate(y):
        a, b = rng.integers(3, size - 3, 2)
        if c == 0:
            X[i, a, 2:-2] += 1
        elif c == 1:
            X[i, 2:-2, b] += 1
        else:
            X[i, u[2:-2], (u[2:-2] + a) % size] += 1
    return X, y.astype(np.int64)


@pytest.fixture(scope="module")
def bars() -> tuple[np.ndarray, ...]:
    """200 training and 60 test images of oriented bars, 16 x 16, three classes."""
    X, y = oriented_bars(260)
    return X[:200], y[:200], X[200:], y[200:]
