"""What every molecule operator guarantees, checked on random input: a result or a documented error."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from wavephase import SolidHarmonicScattering3D
from wavephase.exceptions import WavephaseError
from wavephase.scattering.atom_spectrum import SolidHarmonicAtomSpectrum
from wavephase.testing import random_molecule

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Small settings and a small memory guard keep every example fast: large molecules are refused.
OPERATORS = {
    "scattering": lambda: SolidHarmonicScattering3D(J=1, L=1, qs=(0.5, 2.0), grid_step=1.0, margin=3.0,
                                                    memory_limit="20MB"),
    "spectrum": lambda: SolidHarmonicAtomSpectrum(scales=(0.5, 1.0), L=1, memory_limit="20MB"),
}
SPECIAL_VALUES = [0.0, 1e-300, -1e-30, 1e4, 1e30, -3e38, math.nan, math.inf, -math.inf]
ODD_CHARGES = [0.0, 2.0, -1.0, 6.5, 1e9]


@st.composite
def molecules(draw):
    """Batches of molecules, mostly valid, some with one odd coordinate or charge."""
    batch = draw(st.sampled_from([(), (0,), (1,), (2,), (2, 1)]))
    n_atoms = draw(st.integers(0, 4))
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    count = math.prod(batch) * n_atoms
    pos = draw(st.lists(st.floats(-3.0, 3.0), min_size=3 * count, max_size=3 * count))
    z = draw(st.lists(st.sampled_from([0.0, 1.0, 6.0, 7.0, 8.0, 9.0]), min_size=count, max_size=count))
    if count and draw(st.booleans()):
        pos[draw(st.integers(0, 3 * count - 1))] = draw(st.sampled_from(SPECIAL_VALUES))
    if count and draw(st.booleans()):
        z[draw(st.integers(0, count - 1))] = draw(st.sampled_from(ODD_CHARGES))
    return (torch.tensor(pos, dtype=torch.float64).to(dtype).reshape(*batch, n_atoms, 3),
            torch.tensor(z, dtype=torch.float64).reshape(*batch, n_atoms))


@pytest.mark.parametrize("name", sorted(OPERATORS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=molecules())
# Far atoms in float32: moments and polynomials overflow where the Gaussians vanish.
@example(data=(torch.tensor([[0.0, 0.0, 0.0], [1e20, 0.0, 0.0], [1.0, 0.0, 0.0]]), torch.tensor([6.0, 1.0, 1.0])))
@example(data=(torch.tensor([[[0.0, 0.0, 0.0], [-3e38, 3e38, 1.0]]]), torch.tensor([[6.0, 8.0]])))
def test_random_input_gives_finite_output_or_a_documented_error(name, data):
    op = OPERATORS[name]()
    positions, charges = data
    try:
        out = op(positions, charges)
    except (TypeError, ValueError, WavephaseError):
        return
    assert out.shape == (*positions.shape[:-2], op.output_size) and out.dtype == positions.dtype
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_finite_gradients_for_a_molecule_and_at_coincident_padding(name):
    op = OPERATORS[name]()
    pos, z = random_molecule(4, random_state=7)
    pos = torch.cat([pos, torch.zeros(2, 3, dtype=torch.float64)]).requires_grad_(True)  # padding at the origin
    z = torch.cat([z, torch.zeros(2, dtype=torch.float64)])
    (grad,) = torch.autograd.grad(op(pos, z).sum(), pos)
    assert torch.isfinite(grad).all() and float(grad[4:].abs().max()) == 0.0


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_integer_and_complex_positions_are_type_errors(name):
    op = OPERATORS[name]()
    with pytest.raises(TypeError, match="float32 or float64"):
        op(torch.zeros(1, 3, dtype=torch.int64), torch.tensor([6.0]))
    with pytest.raises(TypeError, match="real"):
        op(torch.zeros(1, 3, dtype=torch.complex64), torch.tensor([6.0]))
    with pytest.raises(TypeError, match="charges must be a torch.Tensor"):
        op(torch.zeros(1, 3), np.array([6.0]))
