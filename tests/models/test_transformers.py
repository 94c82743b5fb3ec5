"""Scattering2DTransformer: the module's coefficients, in a pipeline, and the estimator contract on images."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from wavephase import Scattering2D
from wavephase.models import Scattering2DTransformer


def oriented_textures(n, seed):
    """Two classes of images: stripes at 0 or 90 degrees with random phase and noise."""
    rng = np.random.default_rng(seed)
    u = np.arange(16)
    y = rng.integers(0, 2, n)
    phase = rng.uniform(0, 2 * np.pi, n)
    stripes = np.cos(1.5 * u[None, :, None] + phase[:, None, None]) * np.ones((1, 1, 16))
    X = np.where(y[:, None, None] == 0, stripes, stripes.transpose(0, 2, 1))
    return (X + 0.5 * rng.standard_normal(X.shape)).astype(np.float32), y


def test_transform_matches_module_and_works_in_a_pipeline():
    X, y = oriented_textures(80, 0)
    tr = Scattering2DTransformer(J=2, L=4).fit(X)
    feats = tr.transform(X)
    expected = Scattering2D(2, (16, 16), L=4)(torch.from_numpy(X)).reshape(80, -1).numpy()
    assert feats.shape == (80, tr.n_features_out_) and np.allclose(feats, expected, atol=1e-6)
    pipe = make_pipeline(Scattering2DTransformer(J=2, L=4, log=True), StandardScaler(), LogisticRegression())
    pipe.fit(X, y)
    X_test, y_test = oriented_textures(60, 1)
    assert pipe.score(X_test, y_test) > 0.95


def test_image_contract_of_the_sklearn_checks():
    # The image analogues of scikit-learn's data checks, which feed 2D tables only.
    X, _ = oriented_textures(30, 2)
    tr = Scattering2DTransformer(J=2, L=4, log=True)
    assert tr.fit(X) is tr
    feats = tr.transform(X)
    np.testing.assert_array_equal(clone(tr).fit(X).transform(X), feats)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(tr)).transform(X), feats)
    np.testing.assert_allclose(tr.transform(X[::-1].copy()), feats[::-1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(tr.transform(X[:4]), feats[:4], rtol=1e-5, atol=1e-6)
    assert tr.transform(X[:0]).shape == (0, tr.n_features_out_)
    as_uint8 = np.clip(X * 50 + 128, 0, 255).astype(np.uint8)  # integers are taken as they are, as float32
    out = tr.transform(as_uint8)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, tr.transform(as_uint8.astype(np.float32)))
    f64 = Scattering2DTransformer(J=2, L=4).fit(X.astype(np.float64)).transform(X.astype(np.float64))
    assert f64.dtype == np.float64
    np.testing.assert_allclose(f64, Scattering2DTransformer(J=2, L=4).fit_transform(X), rtol=1e-4, atol=1e-6)


def test_errors():
    tr = Scattering2DTransformer(J=2)
    with pytest.raises(NotFittedError):
        tr.transform(np.zeros((1, 8, 8)))
    with pytest.raises(ValueError, match=r"\(n, M, N\)"):
        tr.fit(np.zeros((8, 8)))
    with pytest.raises(ValueError, match="too small"):
        Scattering2DTransformer(J=4).fit(np.zeros((2, 8, 8)))
    with pytest.raises(ValueError, match="non-finite"):
        tr.fit(np.full((2, 8, 8), np.nan))
    with pytest.raises(ValueError, match="eps"):
        Scattering2DTransformer(J=2, log=True, eps=0.0).fit(np.zeros((2, 8, 8)))
    with pytest.raises(ValueError, match="device"):
        Scattering2DTransformer(J=2, device="tpu").fit(np.zeros((2, 8, 8)))
    tr.fit(np.zeros((2, 8, 8)))
    with pytest.raises(ValueError, match="fitted on"):
        tr.transform(np.zeros((2, 8, 9)))
