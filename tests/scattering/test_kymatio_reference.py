"""Agreement with Kymatio 0.3.0 on stored reference coefficients (no Kymatio needed)."""

from pathlib import Path

import numpy as np
import pytest
import torch

from wavephase import Scattering2D
from wavephase.testing import relative_error

REFERENCE = Path(__file__).parents[1] / "reference" / "kymatio_scattering2d.npz"


def configs():
    with np.load(REFERENCE, allow_pickle=False) as data:
        names = sorted({key.split("/")[0] for key in data.files if "/" in key})
    return names


@pytest.mark.parametrize("name", configs())
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("backend", ["fft", "matmul"])
def test_agrees_with_kymatio_030(name, dtype, backend):
    with np.load(REFERENCE, allow_pickle=False) as data:
        x, expected = data[f"{name}/x"], data[f"{name}/s"]
        J, L, order = (int(data[f"{name}/{k}"]) for k in ("J", "L", "max_order"))
    S = Scattering2D(J, x.shape[-2:], L=L, max_order=order, dtype=dtype, backend=backend)
    ours = S(torch.from_numpy(x).to(dtype)).double()
    assert ours.shape == expected.shape
    err = relative_error(ours, torch.from_numpy(expected))
    assert err < (1e-6 if dtype == torch.float64 else 1e-4), err
