"""ISTA/FISTA against the Lasso optimality conditions; the unrolled ISTC layer."""

from __future__ import annotations

import pytest
import torch

from wavephase.sparse import ISTC, fista, homotopy_lambdas, ista, ista_step, lipschitz_constant, sparse_coding_report


def _problem(P: int = 20, K: int = 40, n: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    D = torch.randn(P, K, generator=g, dtype=torch.float64)
    D = D / D.norm(dim=0, keepdim=True)
    z_true = torch.relu(torch.randn(n, K, generator=g, dtype=torch.float64)) * (torch.rand(n, K, generator=g) < 0.1)
    return z_true @ D.T + 0.01 * torch.randn(n, P, generator=g, dtype=torch.float64), D


def _kkt_violation(x: torch.Tensor, D: torch.Tensor, z: torch.Tensor, lam: float) -> float:
    # Non-negative Lasso optimality: g = Dᵀ(x − Dz); g_k = λ where z_k > 0, g_k ≤ λ where z_k = 0.
    g = (x - z @ D.T) @ D
    active = z > 0
    return float(torch.maximum((g - lam).abs() * active, torch.relu(g - lam) * ~active).max())


def test_ista_step_is_relu_of_gradient_step_with_bias():
    x, D = _problem()
    z = torch.rand(8, 40, dtype=torch.float64)
    L = lipschitz_constant(D)
    expected = torch.clamp(z + (x - z @ D.T) @ D / L - 0.1 / L, min=0)
    torch.testing.assert_close(ista_step(z, x, D, 0.1, L), expected)


@pytest.mark.parametrize("P,K", [(20, 40), (40, 20)])
def test_lipschitz_constant_is_largest_eigenvalue(P, K):
    _, D = _problem(P, K)
    assert float(lipschitz_constant(D)) == pytest.approx(float(torch.linalg.eigvalsh(D.T @ D).max()), rel=1e-10)


def test_ista_step_keeps_batch_shape_and_refuses_mismatched_batches():
    x, D = _problem(n=6)
    z = torch.rand(6, 40, dtype=torch.float64)
    stacked = ista_step(z.reshape(2, 3, 40), x.reshape(2, 3, 20), D, 0.1, lipschitz_constant(D))
    torch.testing.assert_close(stacked.reshape(6, 40), ista_step(z, x, D, 0.1, lipschitz_constant(D)))
    with pytest.raises(ValueError, match="same leading"):
        ista_step(z[:5], x, D, 0.1, 1.0)


@pytest.mark.parametrize("solver,n_iter", [(ista, 3000), (fista, 500)])
def test_solvers_reach_nonnegative_lasso_optimum(solver, n_iter):
    x, D = _problem()
    z = solver(x, D, 0.05, n_iter)
    assert (z >= 0).all()
    assert _kkt_violation(x, D, z, 0.05) < 1e-6


def test_fista_converges_faster_than_ista():
    x, D = _problem()
    lam = 0.05
    ref = fista(x, D, lam, 3000)

    def objective(z: torch.Tensor) -> float:
        return sparse_coding_report(x, D, z, lam)["objective"]

    assert objective(fista(x, D, lam, 50)) - objective(ref) < objective(ista(x, D, lam, 50)) - objective(ref)


def test_larger_lambda_gives_sparser_codes_and_larger_error():
    x, D = _problem()
    small, big = (sparse_coding_report(x, D, fista(x, D, lam, 300), lam) for lam in (0.01, 0.5))
    assert big["sparsity"] < small["sparsity"]
    assert big["relative_error"] > small["relative_error"]


def test_bad_input_is_refused():
    x, D = _problem()
    with pytest.raises(ValueError, match="D must have shape"):
        ista(x, D.T, 0.1)
    with pytest.raises(ValueError, match="lam"):
        ista(x, D, -1.0)
    with pytest.raises(ValueError, match="n_iter"):
        fista(x, D, 0.1, 0)


def test_homotopy_schedule_is_geometric_and_ends_at_target():
    lams = homotopy_lambdas(torch.tensor([8.0, 1.0]), torch.tensor(0.5), 4)
    torch.testing.assert_close(lams[-1], torch.tensor([0.5, 0.5]))
    torch.testing.assert_close(lams[1] / lams[0], lams[2] / lams[1])
    assert float(lams[0][1]) == 1.0


def test_istc_layer_shapes_sparsity_gradients_and_unit_atoms():
    torch.manual_seed(0)
    layer = ISTC(16, 32, n_steps=4, lam=0.2, generator=torch.Generator().manual_seed(1)).double()
    x = torch.randn(3, 5, 16, dtype=torch.float64)
    z = layer(x)
    assert z.shape == (3, 5, 32) and (z >= 0).all()
    torch.testing.assert_close(layer.dictionary.norm(dim=0), torch.ones(32, dtype=torch.float64))
    report = layer.report(x)
    assert 0 < report["sparsity"] < 1 and 0 < report["relative_error"] < 1
    # λ₀ and the step size are treated as constants (detached) by design, so the
    # exact gradient check is on the signal and on λ* with a fixed schedule.
    fixed = ISTC(16, 32, n_steps=4, lam=0.2, homotopy=False, generator=torch.Generator().manual_seed(1)).double()
    assert torch.autograd.gradcheck(
        lambda l, xx: torch.func.functional_call(fixed, {"weight": fixed.weight.detach(), "log_lam": l}, (xx,)),
        (fixed.log_lam.detach().clone().requires_grad_(), x[0, :2].clone().requires_grad_()),
    )
    layer(x).sum().backward()
    assert torch.isfinite(layer.weight.grad).all() and layer.weight.grad.abs().sum() > 0


def test_istc_is_ista_from_zero_along_the_homotopy_schedule():
    layer = ISTC(16, 32, n_steps=4, lam=0.2, generator=torch.Generator().manual_seed(1)).double()
    x = torch.randn(7, 16, dtype=torch.float64)
    D = layer.dictionary.detach()
    lams = homotopy_lambdas((x @ D).amax(-1, keepdim=True), layer.lam.detach(), 4)
    z = torch.zeros(7, 32, dtype=torch.float64)
    for lam in lams:
        z = ista_step(z, x, D, lam, lipschitz_constant(D))
    torch.testing.assert_close(layer(x), z)


def test_istc_rejects_wrong_feature_size_and_non_finite_input_in_training_too():
    with pytest.raises(ValueError, match="last dimension 16"):
        ISTC(16, 8)(torch.randn(2, 15))
    layer = ISTC(16, 8).train()
    with pytest.raises(ValueError, match="x"):
        layer(torch.full((2, 16), float("nan")))
