import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from wavephase import Scattering2D
from wavephase.sklearn import Scattering2DTransformer


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


def test_errors():
    tr = Scattering2DTransformer(J=2)
    with pytest.raises(RuntimeError, match="not fitted"):
        tr.transform(np.zeros((1, 8, 8)))
    with pytest.raises(ValueError, match=r"\(n, M, N\)"):
        tr.fit(np.zeros((8, 8)))
    with pytest.raises(ValueError, match="too small"):
        Scattering2DTransformer(J=4).fit(np.zeros((2, 8, 8)))
    with pytest.raises(ValueError, match="NaN"):
        tr.fit(np.full((2, 8, 8), np.nan))
    tr.fit(np.zeros((2, 8, 8)))
    with pytest.raises(ValueError, match="fitted on"):
        tr.transform(np.zeros((2, 8, 9)))
