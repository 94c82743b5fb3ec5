"""Molecule features: the QM9 invariant presets and the fixed expansions of the energy model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wavephase.models.molecule_features import (
    QM9_PRESETS,
    QuadraticTerms,
    expand_features,
    expand_invariants,
    qm9_invariants,
)
from wavephase.scattering.concat import ConcatInvariants
from wavephase.testing import random_molecule

# Small tensors gain nothing from threads, and on a shared machine threads thrash.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_expand_features_sqrt_is_smooth_at_zero():
    x = torch.tensor([[0.0, 4.0, -9.0]], dtype=torch.float64, requires_grad=True)
    z = expand_features(x, "linear+sqrt")
    assert z.shape == (1, 6)
    torch.testing.assert_close(z[0, 4:], torch.tensor([2.0, -3.0], dtype=torch.float64), atol=2e-3, rtol=0)
    (g,) = torch.autograd.grad(z.sum(), x)
    assert torch.isfinite(g).all()
    assert torch.autograd.gradcheck(lambda t: expand_features(t, "linear+sqrt"), (x.detach() + 0.5).requires_grad_())
    with pytest.raises(ValueError, match="feature_map"):
        expand_features(x, "cubic")


def test_quadratic_terms_append_products_of_whitened_components():
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(200, 5)) @ rng.normal(size=(5, 5))
    quad = QuadraticTerms.fit(Z, 3)
    out = quad(torch.from_numpy(Z))
    assert out.shape == (200, 5 + 6)
    torch.testing.assert_close(out[:, :5], torch.from_numpy(Z))
    u = ((torch.from_numpy(Z) - quad.center) / quad.spread) @ quad.projection
    torch.testing.assert_close((u.T @ u / 200), torch.eye(3, dtype=torch.float64), atol=1e-8, rtol=0)  # whitened
    assert quad(torch.from_numpy(Z).float()).dtype == torch.float32
    assert expand_invariants(torch.from_numpy(Z[:, :2].copy()), "quadratic", QuadraticTerms.fit(
        expand_features(torch.from_numpy(Z[:, :2].copy()), "linear+sqrt").numpy(), 2)).shape == (200, 4 + 3)
    with pytest.raises(ValueError, match="columns"):
        expand_invariants(torch.from_numpy(Z), "quadratic", quad)


@pytest.mark.parametrize("preset", sorted(QM9_PRESETS))
def test_presets_build_their_parts(preset):
    T = qm9_invariants(preset, chunk_size=7)
    assert isinstance(T, ConcatInvariants)
    assert set(T.parts) == {k for k, v in QM9_PRESETS[preset].items() if v is not None}
    assert all(part.chunk_size == 7 for part in T.parts.values())


def test_fast_preset_on_a_molecule():
    T = qm9_invariants("fast")
    pos, z = random_molecule(6, random_state=0)
    out = T(pos[None], z[None])
    assert out.shape == (1, T.output_size) and torch.isfinite(out).all() and out.dtype == torch.float64


def test_bad_presets():
    with pytest.raises(ValueError, match="preset must be one of"):
        qm9_invariants("huge")
    with pytest.raises(ValueError, match="at least one part"):
        qm9_invariants({"scattering": None, "spectrum": None})
    with pytest.raises(ValueError, match="preset settings"):
        qm9_invariants({"fourier": {}})


def test_cli_presets_are_the_model_presets():
    from wavephase.cli.qm9 import PRESETS

    assert set(PRESETS) == set(QM9_PRESETS)
