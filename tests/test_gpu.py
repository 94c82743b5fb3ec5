"""The operators on a CUDA GPU agree with the CPU, in values and gradients.

Skipped where torch sees no GPU (CI has none); run with ``pytest -m gpu`` on a
machine that has one.
"""

import numpy as np
import pytest
import torch

from wavephase import PhaseHarmonicStatistics, Scattering2D, SolidHarmonicScattering3D, synthesize
from wavephase.harmonics.scattering_covariance import ScatteringCovariance
from wavephase.sparse.istc import ISTC

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

CUDA = torch.device("cuda")


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().cpu(), b.detach().cpu()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-4), (torch.float64, 1e-10)])
@pytest.mark.parametrize("backend,shape,J", [("matmul", (28, 28), 2), ("fft", (28, 28), 2), ("fft", (64, 48), 3)])
def test_scattering2d_matches_cpu(backend, shape, J, dtype, tol):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 2, *shape, generator=gen, dtype=dtype)
    cpu = Scattering2D(J, shape, L=4, backend=backend)
    gpu = Scattering2D(J, shape, L=4, backend=backend).to(CUDA)
    xc, xg = x.clone().requires_grad_(), x.clone().to(CUDA).requires_grad_()
    yc, yg = cpu(xc), gpu(xg)
    assert yg.device.type == "cuda" and yg.dtype == dtype
    assert _rel(yg, yc) < tol
    w = torch.randn(yc.shape, generator=gen, dtype=dtype)
    (gc,) = torch.autograd.grad((yc * w).sum(), xc)
    (gg,) = torch.autograd.grad((yg * w.to(CUDA)).sum(), xg)
    assert torch.isfinite(gg).all()
    assert _rel(gg, gc) < 10 * tol


def test_scattering2d_gradient_finite_at_zero():
    x = torch.zeros(2, 32, 32, device=CUDA, requires_grad=True)
    Scattering2D(2, (32, 32), L=4).to(CUDA)(x).sum().backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("module", ["phase-harmonics", "scattering-covariance"])
def test_field_statistics_match_cpu(module):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 32, 32, generator=gen, dtype=torch.float64)
    make = (lambda dev: PhaseHarmonicStatistics((32, 32), J=3, L=4, dtype=torch.float64).to(dev)) \
        if module == "phase-harmonics" else \
        (lambda dev: ScatteringCovariance((32, 32), J=3, L=4, dtype=torch.float64).to(dev))
    cpu, gpu = make("cpu").set_reference(x), make(CUDA).set_reference(x.to(CUDA))
    sc, sg = cpu(x), gpu(x.to(CUDA))
    assert sc.keys() == sg.keys()
    for k in sc:
        assert sg[k].device.type == "cuda"
        assert _rel(sg[k], sc[k]) < 1e-9, k
    xg = x.clone().to(CUDA).requires_grad_()
    xc = x.clone().requires_grad_()
    gpu.loss(xg).backward()
    cpu.loss(xc).backward()
    assert _rel(xg.grad, xc.grad) < 1e-8


def test_synthesis_runs_on_gpu_and_lowers_the_loss():
    gen = torch.Generator().manual_seed(2)
    target = torch.randn(32, 32, generator=gen).cumsum(0)
    result = synthesize(target, n_samples=2, steps=20, random_state=0, J=3, L=4, device=CUDA, progress=False)
    x = result.fields
    assert x.device.type == "cuda" and x.shape == (2, 32, 32)
    assert torch.isfinite(x).all()
    assert result.loss_history[-1] < result.loss_history[0]


def test_solid_harmonic_scattering_and_forces_match_cpu():
    pos = torch.tensor([[[0.0, 0.0, 0.0], [1.09, 0.0, 0.0], [-0.36, 1.03, 0.0], [-0.36, -0.51, 0.89],
                         [-0.36, -0.51, -0.89]]], dtype=torch.float64)
    z = torch.tensor([[6.0, 1.0, 1.0, 1.0, 1.0]], dtype=torch.float64)
    pos = pos + 0.05 * torch.randn(pos.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    S = SolidHarmonicScattering3D(J=2, L=2)
    pc, pg = pos.clone().requires_grad_(), pos.clone().to(CUDA).requires_grad_()
    yc = S(pc, z)
    yg = S.to(CUDA)(pg, z.to(CUDA))
    assert yg.device.type == "cuda"
    assert _rel(yg, yc) < 1e-9
    (gc,) = torch.autograd.grad(yc.sum(), pc)
    (gg,) = torch.autograd.grad(yg.sum(), pg)
    assert _rel(gg, gc) < 1e-7


def test_qm9_invariants_and_forces_match_cpu():
    from wavephase.models.molecule_features import qm9_invariants
    from wavephase.testing import random_molecule

    mols = [random_molecule(n, random_state=n) for n in (5, 9)]
    pos = torch.zeros(2, 9, 3, dtype=torch.float64)
    z = torch.zeros(2, 9, dtype=torch.float64)
    for i, (p, c) in enumerate(mols):
        pos[i, :len(c)], z[i, :len(c)] = p, c
    T = qm9_invariants("fast")  # computes in the float64 of the positions
    pc, pg = pos.clone().requires_grad_(), pos.clone().to(CUDA).requires_grad_()
    yc, yg = T(pc, z), T.to(CUDA)(pg, z.to(CUDA))
    assert yg.device.type == "cuda" and _rel(yg, yc) < 1e-9
    w = torch.randn(yc.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    (gc,) = torch.autograd.grad((yc * w).sum(), pc)
    (gg,) = torch.autograd.grad((yg * w.to(CUDA)).sum(), pg)
    assert _rel(gg, gc) < 1e-7


def test_istc_matches_cpu():
    layer = ISTC(16, 32, n_steps=4, lam=0.1, generator=torch.Generator().manual_seed(4)).double()
    x = torch.randn(5, 16, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    zc = layer(x)
    zg = layer.to(CUDA)(x.to(CUDA))
    assert zg.device.type == "cuda"
    assert _rel(zg, zc) < 1e-10
    assert bool((zg >= 0).all())
    assert np.isfinite(zg.sum().item())


def test_sparse_cascade_trains_on_gpu_and_resumes_on_cpu(tmp_path):
    from wavephase.models import SparseScatteringClassifier
    from wavephase.models.features import scattering_features

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 240)
    X = 0.3 * rng.standard_normal((240, 16, 16)).astype(np.float32)
    X[y == 0, 8, 3:13] += 1  # horizontal bars against vertical ones
    X[y == 1, 3:13, 8] += 1
    F = scattering_features(X, J=2, L=4)
    params = dict(J=2, L=4, n_proj=8, n_atoms=16, epochs=4, batch_size=32, lr=5e-3, precomputed=True,
                  checkpoint_dir=tmp_path)
    gpu = SparseScatteringClassifier(device="cuda", **params).fit(F[:200], y[:200])
    assert next(gpu.members_[0].parameters()).device.type == "cuda"
    assert gpu.score(F[200:], y[200:]) > 0.8
    # The finished checkpoint is loaded on the CPU without training: same predictions.
    cpu = SparseScatteringClassifier(device="cpu", **params).fit(F[:200], y[:200])
    np.testing.assert_allclose(cpu.predict_proba(F[200:]), gpu.predict_proba(F[200:]), rtol=1e-4, atol=1e-5)
