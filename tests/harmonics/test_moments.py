"""The contract every moment statistic shares (MomentStatistics): references, normalisation, loss, numerics."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wavephase.harmonics import (
    MomentStatistics,
    NonFiniteMomentsError,
    PhaseHarmonicStatistics,
    ScatteringCovariance,
    moment_loss,
)
from wavephase.harmonics.moments import root

pytestmark = pytest.mark.usefixtures("one_torch_thread")

OPERATORS = {"phase-harmonics": lambda shape, J, dtype: PhaseHarmonicStatistics(shape, J, 2, dtype=dtype),
             "scattering-covariance": lambda shape, J, dtype: ScatteringCovariance(shape, J, 2, dtype=dtype)}


def noise(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def gradient(op: MomentStatistics, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.clone().requires_grad_(True)
    loss = op.loss(x)
    loss.backward()
    return loss.detach(), x.grad


@pytest.fixture(params=sorted(OPERATORS))
def make(request):
    return OPERATORS[request.param]


def test_both_operators_are_moment_statistics():
    for make_op in OPERATORS.values():
        op = make_op((16, 16), 2, torch.float64)
        assert isinstance(op, MomentStatistics)
        assert tuple(op.family_sizes()) == op.families


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("value", [0.0, 2.5, -1e3])
def test_constant_fields_have_a_finite_loss_and_gradient(make, dtype, value):
    # issue 18: the loss at a constant field (zero included) had a NaN gradient
    op = make((16, 16), 2, dtype).set_reference(noise(2, 16, 16, dtype=dtype))
    loss, grad = gradient(op, torch.full((2, 16, 16), value, dtype=dtype))
    assert math.isfinite(float(loss)) and bool(torch.isfinite(grad).all())
    for v in op(torch.full((16, 16), value, dtype=dtype)).values():
        assert bool(torch.isfinite(v).all())


def test_root_has_a_finite_gradient_at_zero():
    v = torch.tensor([0.0, 4.0], dtype=torch.float64, requires_grad=True)
    root(v).sum().backward()
    assert torch.equal(v.grad, torch.tensor([0.0, 0.25], dtype=torch.float64))


def test_without_a_reference_a_constant_field_is_refused(make):
    # issue 18: the forward pass returned non-finite moments and no error
    op = make((16, 16), 2, torch.float64)
    with pytest.raises(ValueError, match="set_reference"):
        op(torch.zeros(16, 16, dtype=torch.float64))
    with pytest.raises(ValueError, match="set_reference"):
        op(torch.stack([noise(16, 16), torch.full((16, 16), 3.0, dtype=torch.float64)]))


@pytest.mark.parametrize("target, match", [
    (torch.ones(2, 16, 16), "constant"),
    (torch.zeros(0, 16, 16), "no field"),
    (torch.full((16, 16), float("nan")), "non-finite"),
    (torch.zeros(16, 16, dtype=torch.int64), "float32 or float64"),
    (torch.zeros(16, 8), "spatial shape"),
])
def test_bad_references_are_refused(make, target, match):
    op = make((16, 16), 2, torch.float32)
    with pytest.raises((TypeError, ValueError), match=match):
        op.set_reference(target)
    assert op.reference_moments == {} and op.reference_power is None


def test_a_refused_reference_keeps_the_previous_one(make):
    op = make((16, 16), 2, torch.float64).set_reference(noise(2, 16, 16))
    before = {k: v.clone() for k, v in op.reference_moments.items()}
    loss = float(op.loss(noise(16, 16, seed=1)))
    with pytest.raises(ValueError, match="constant"):
        op.set_reference(torch.ones(16, 16, dtype=torch.float64))
    assert set(op.reference_moments) == set(before) == set(op.families)
    for k, v in op.reference_moments.items():
        torch.testing.assert_close(v, before[k])
    assert float(op.loss(noise(16, 16, seed=1))) == loss


def test_overflowing_moments_raise_a_named_error(make):
    op = make((16, 16), 2, torch.float32).set_reference(noise(2, 16, 16, dtype=torch.float32))
    huge = noise(16, 16, seed=1, dtype=torch.float32) * 1e30
    with pytest.raises(NonFiniteMomentsError, match="overflow"):
        op(huge)
    with pytest.raises(ValueError, match="rescale"):
        op.loss(huge)


@pytest.mark.parametrize("scale", [1e30, 1e-30, 3e-36])
def test_normalised_moments_are_exact_at_float32_extremes(make, scale):
    # Normalised moments are homogeneous of degree 0: a field and its reference in any units give the
    # same moments, so float32 fields of any magnitude neither overflow nor underflow.
    x = noise(2, 16, 16, seed=2, dtype=torch.float32)
    ref = noise(3, 16, 16, seed=3, dtype=torch.float32)
    op = make((16, 16), 2, torch.float32)
    unit, scaled = op(x), op(x * scale)
    for k in unit:
        torch.testing.assert_close(scaled[k], unit[k], rtol=1e-4, atol=1e-5)
    op.set_reference(ref)
    unit_loss, unit_grad = gradient(op, x)
    op.set_reference(ref * scale)
    loss, grad = gradient(op, x * scale)
    assert float(loss) == pytest.approx(float(unit_loss), rel=1e-4)
    assert bool(torch.isfinite(grad).all())


def test_empty_batch_gives_empty_moments_and_zero_loss(make):
    op = make((16, 16), 2, torch.float64)
    moments = op(torch.zeros(0, 3, 16, 16, dtype=torch.float64))
    assert {k: tuple(v.shape) for k, v in moments.items()} == {k: (0, 3, n) for k, n in op.family_sizes().items()}
    op.set_reference(noise(1, 16, 16))
    assert float(op.loss(torch.zeros(0, 16, 16, dtype=torch.float64))) == 0.0


def test_batch_dimensions_are_kept(make):
    op = make((16, 16), 2, torch.float64).set_reference(noise(2, 16, 16))
    x = noise(2, 3, 16, 16, seed=4)
    batched, single = op(x), op(x[1, 2])
    for k, v in batched.items():
        assert v.shape == (2, 3, op.family_sizes()[k])
        torch.testing.assert_close(v[1, 2], single[k])


def test_dtype_follows_the_input_and_double_converts_the_operator(make):
    x, ref = noise(2, 16, 16, seed=5), noise(2, 16, 16, seed=6)
    op64 = make((16, 16), 2, torch.float64).set_reference(ref)
    op32 = make((16, 16), 2, torch.float32).set_reference(ref.float())
    out = op32(x)
    assert all(v.dtype == torch.complex128 for v in out.values())
    assert all(v.dtype == torch.complex64 for v in op32(x.float()).values())
    for k, v in op64(x).items():
        torch.testing.assert_close(out[k], v, rtol=1e-4, atol=1e-4)
    op32.double()
    assert op32.psi.dtype == torch.float64 and op32.reference_power.dtype == torch.float64
    assert float(op32.loss(x)) == pytest.approx(float(op64.loss(x)), rel=1e-4)


def test_reference_moments_are_the_normalised_average_and_a_reference_matches_itself(make):
    ref = noise(1, 16, 16, seed=7)
    op = make((16, 16), 2, torch.float64).set_reference(ref)
    assert float(op.loss(ref)) == pytest.approx(0.0, abs=1e-20)
    for k, v in op(ref).items():
        torch.testing.assert_close(v[0], op.reference_moments[k])


def test_moment_loss_needs_a_target():
    with pytest.raises(ValueError, match="set_reference"):
        moment_loss({"a": torch.zeros(1, 2)}, {})


def _fields(draw, M: int, N: int, n: int) -> torch.Tensor:
    kind = draw(st.sampled_from(["noise", "constant", "spike", "sparse"]))
    scale = 10.0 ** draw(st.integers(-30, 30))
    offset = draw(st.sampled_from([0.0, 1.0, -1e3]))
    seed = draw(st.integers(0, 2**16))
    x = noise(n, M, N, seed=seed)
    if kind == "constant":
        x = torch.zeros_like(x)
    elif kind == "spike":
        x = torch.zeros_like(x)
        x[:, 0, 0] = 1.0
    elif kind == "sparse":
        x = x * (x.abs() > 2)
    return x * scale + offset


@st.composite
def problems(draw):
    J = draw(st.integers(1, 2))
    M, N = draw(st.integers(2**J, 20)), draw(st.integers(2**J, 20))
    name = draw(st.sampled_from(sorted(OPERATORS)))
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    x = _fields(draw, M, N, draw(st.integers(1, 2))).to(dtype)
    reference = draw(st.booleans())
    return name, J, (M, N), dtype, x, reference


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_every_finite_field_gives_finite_moments_and_gradients_or_a_named_error(problem):
    # issue 18: finite values and gradients for every finite input, or a ValueError that says why
    name, J, shape, dtype, x, with_reference = problem
    op = OPERATORS[name](shape, J, dtype)
    if with_reference:
        op.set_reference(noise(2, *shape, seed=99, dtype=dtype))
    constant = bool((x.amax((-2, -1)) == x.amin((-2, -1))).any())
    try:
        moments = op(x)
        loss, grad = gradient(op, x) if with_reference else (torch.zeros(()), torch.zeros(()))
    except NonFiniteMomentsError:
        # only a field many orders of magnitude above its reference overflows
        assert with_reference and float(x.abs().max()) > 1e6
        return
    except ValueError as err:
        # only a field without fluctuations and without a reference has no normalisation
        assert not with_reference and "set_reference" in str(err)
        return
    assert with_reference or not constant
    assert all(bool(torch.isfinite(v).all()) for v in moments.values())
    assert math.isfinite(float(loss)) and bool(torch.isfinite(grad).all())
