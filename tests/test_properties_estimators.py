"""Property-based tests of the estimators' fit and predict: random shapes, dtypes, values and labels.

Tiny estimators (one scale, two angles, one epoch) are fitted to image stacks of random shape, dtype
and values, with labels of random kind, then asked to predict: the only exceptions allowed are the
library's documented errors (see tests/test_properties.py), a fitted model predicts finite values of
the right shape, and NaN, infinity, booleans and complex numbers are refused.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from wavephase.data import Molecules
from wavephase.models import (
    GenerativeScattering,
    MoleculeEnergyRegressor,
    Scattering2DTransformer,
    ScatteringClassifier,
    SparseScatteringClassifier,
)
from wavephase.testing import VALUE_KINDS, adversarial_array, check_call, refused

pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.slow]

ALL_DTYPES = ("float32", "float64", "float16", "int64", "uint8", "bool", "complex64")
FEW = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
IMAGES = st.sampled_from([(12, 8, 8), (12, 8, 8), (6, 8, 8), (0, 8, 8), (12, 8), (12, 6, 8), (1, 8, 8)])


@st.composite
def arrays(draw, shape, dtypes=ALL_DTYPES, kinds=VALUE_KINDS):
    shape = draw(shape) if isinstance(shape, st.SearchStrategy) else shape
    return adversarial_array(shape, draw(st.sampled_from(dtypes)), draw(st.sampled_from(kinds)),
                             draw(st.integers(0, 2**16)))


@st.composite
def labels(draw, n: int):
    """Labels of ``n`` samples: ints, strings, floats, one class only, NaN, or the wrong number."""
    kind = draw(st.sampled_from(["int", "int", "str", "float", "one class", "nan", "short", "2d"]))
    base = np.arange(max(n, 0)) % 3
    return {"int": base, "str": np.array(["a", "b", "c"])[base], "float": base + 0.5,
            "one class": np.zeros(n, int), "nan": np.where(base == 0, np.nan, base),
            "short": base[:-1], "2d": base[:, None]}[kind]


CLASSIFIERS = {
    "ScatteringClassifier": lambda: ScatteringClassifier(J=1, L=2),
    "SparseScatteringClassifier": lambda: SparseScatteringClassifier(J=1, L=2, n_proj=2, n_atoms=4, n_steps=1,
                                                                     epochs=1, batch_size=8),
}


@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
@FEW
@given(X=arrays(IMAGES), data=st.data())
def test_classifiers_fit_and_predict(name, X, data):
    y = data.draw(labels(len(X)))
    model = check_call(CLASSIFIERS[name]().fit, X, y, names=["X", "y"])
    if refused(model):
        return
    proba = check_call(model.predict_proba, X, names=["X"])
    assert proba.shape == (len(X), len(model.classes_)) and np.allclose(proba.sum(1), 1, atol=1e-4)
    assert set(model.predict(X[:3]).tolist()) <= set(model.classes_.tolist())
    assert model.predict_proba(X[:0]).shape == (0, len(model.classes_))  # the empty batch


@FEW
@given(X=arrays(IMAGES))
def test_scattering_transformer(X):
    model = check_call(Scattering2DTransformer(J=1, L=2).fit, X, names=["X"])
    if not refused(model):
        out = check_call(model.transform, X, names=["X"])
        assert refused(out) or out.shape[0] == len(X)


@FEW
@given(X=arrays(st.sampled_from([(12, 8, 8), (12, 8, 8), (3, 8, 8), (0, 8, 8), (12, 6, 6), (12, 8)])),
       n_components=st.sampled_from([4, 4, 0, 50]))
def test_generative_scattering(X, n_components):
    model = GenerativeScattering(J=1, L=2, n_components=n_components, channels=(4,), epochs=1, batch_size=8,
                                 progress=False)
    model = check_call(model.fit, X, names=["X", "n_components", "loss"])
    if refused(model):
        return
    codes = check_call(model.encode, X, names=["images"])
    assert codes.shape == (len(X), model.n_components)
    assert check_call(model.decode, codes, names=["codes"]).shape == X.shape
    assert check_call(model.sample, 2, names=["n"]).shape == (2, *X.shape[1:])


class PairSums(nn.Module):
    """A cheap invariant map of molecules: charge sums and smooth pair sums."""

    def forward(self, positions: torch.Tensor, charges: torch.Tensor) -> torch.Tensor:
        z = charges.to(positions.dtype)
        r2 = (positions[..., :, None, :] - positions[..., None, :, :]).pow(2).sum(-1)
        zz = z[..., :, None] * z[..., None, :]
        return torch.stack([z.sum(-1), z.pow(2).sum(-1), (zz * torch.exp(-r2)).sum((-1, -2))], dim=-1)


@FEW
@given(positions=arrays(st.sampled_from([(10, 3, 3), (10, 3, 3), (0, 3, 3), (10, 3), (2, 3, 3)]),
                        kinds=("normal", "zero", "huge", "tiny", "nan")),
       energies=st.sampled_from(["normal", "constant", "nan", "short"]))
def test_molecule_energy_regressor(positions, energies):
    n = len(positions)
    charges = np.tile(np.array([6, 1, 0]), (n, 1))[:, : positions.shape[1]] if positions.ndim == 3 else np.ones(n)
    y = {"normal": np.arange(n, dtype=float), "constant": np.ones(n), "nan": np.full(n, np.nan),
         "short": np.arange(max(n - 1, 0), dtype=float)}[energies]
    X = check_call(Molecules, positions, charges, names=["positions", "charges"])
    if refused(X):
        return
    model = check_call(MoleculeEnergyRegressor(PairSums(), alphas=(1e-3, 1.0), cv=2).fit, X, y, names=["X", "y"])
    if not refused(model):
        assert check_call(model.predict, X, names=["X"]).shape == (n,)
