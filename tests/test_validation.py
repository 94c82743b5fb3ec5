"""wavephase.validation.check_finite: refuses exactly the tensors that hold a NaN or an inf."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from wavephase.validation import check_finite

VALUES = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=32),
                   st.sampled_from([3.0e38, -3.0e38, 1e-45, 0.0]))  # large finite values whose sum overflows


@settings(max_examples=200, deadline=None)
@given(values=st.lists(VALUES, min_size=0, max_size=40), dtype=st.sampled_from([torch.float32, torch.float64,
                                                                                torch.complex64]))
def test_refuses_exactly_the_tensors_with_a_non_finite_value(values, dtype):
    x = torch.tensor(values, dtype=torch.float32).to(dtype)
    n_bad = sum(not math.isfinite(v) for v in values)
    if n_bad:
        with pytest.raises(ValueError, match=f"x contains {n_bad} non-finite value"):
            check_finite(x, "x")
    else:
        assert check_finite(x, "x") is x


def test_a_finite_tensor_whose_sum_overflows_is_accepted_and_no_graph_is_built():
    x = torch.full((4, 8), 3.0e38, requires_grad=True)
    assert not torch.isfinite(x.detach().sum())
    assert check_finite(x, "x") is x
    y = torch.ones(3, requires_grad=True) * 2
    check_finite(y, "y")
    assert y.grad_fn is not None and y.grad_fn.name() == "MulBackward0"
