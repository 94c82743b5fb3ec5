import numpy as np
import pytest
import torch

from wavephase import Scattering2D
from wavephase.metrics import deform, deformation_ratios, fourier_modulus, smooth_displacement


def textured_bump(M=64, seed=0):
    u = torch.arange(M, dtype=torch.float64)
    env = torch.exp(-((u[:, None] - M / 2) ** 2 + (u[None, :] - M / 2) ** 2) / (2 * 12.0**2))
    return env * torch.randn(M, M, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def test_displacement_has_requested_gradient_and_zero_gives_identity():
    tau = smooth_displacement((48, 40), 0.03, seed=2)
    jac = torch.stack([torch.gradient(tau[c], dim=d)[0] for c in range(2) for d in range(2)])
    assert tau.shape == (2, 48, 40)
    assert float(jac.abs().max()) == pytest.approx(0.03, rel=1e-6)
    x = textured_bump(48)[:, 4:44]
    assert torch.allclose(deform(x, torch.zeros(2, 48, 40, dtype=torch.float64)), x, atol=1e-12)


def test_scattering_is_lipschitz_to_deformations_fourier_modulus_is_not():
    x = textured_bump()
    S = Scattering2D(4, (64, 64), dtype=torch.float64)
    eps = [0.0025, 0.005, 0.01, 0.02, 0.04]
    r = deformation_ratios(x, {"scattering": S, "fourier": fourier_modulus}, eps, seed=0)
    scat, four = np.array(r["scattering"]), np.array(r["fourier"])
    # ~linear growth: log-log slope near 1 and a bounded ratio / ||grad tau|| (Lipschitz constant)
    slope = np.polyfit(np.log(eps), np.log(scat), 1)[0]
    assert 0.9 < slope < 1.6
    lipschitz = scat / np.array(eps)
    assert lipschitz.max() / lipschitz.min() < 3.0
    assert scat[-1] < 0.01
    # high-frequency content: the Fourier modulus moves far more than the scattering transform
    assert (four > 20 * scat).all()


def test_bad_inputs():
    with pytest.raises(ValueError, match="max_gradient"):
        smooth_displacement((8, 8), -1.0)
    with pytest.raises(ValueError, match="tau must have shape"):
        deform(torch.zeros(8, 8), torch.zeros(2, 4, 4))
    with pytest.raises(ValueError, match="zero"):
        deformation_ratios(torch.zeros(8, 8), {"f": fourier_modulus}, [0.1])
