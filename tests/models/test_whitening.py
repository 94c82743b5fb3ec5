import pytest
import torch
from sklearn.exceptions import NotFittedError

from wavephase.data import make_polygons
from wavephase.models.whitening import WhitenedScattering


@pytest.fixture(scope="module")
def fitted():
    x = torch.from_numpy(make_polygons(80, size=16, random_state=1)[0])
    embedding = WhitenedScattering(2, (16, 16), L=4, n_components=10)
    embedding.fit_features(embedding.features(x, batch_size=7), random_state=0)
    return embedding, x


def test_whitened_features_have_zero_mean_and_unit_covariance(fitted):
    embedding, x = fitted
    z = embedding(x)
    assert z.shape == (80, 10) and z.dtype == torch.float32
    torch.testing.assert_close(z.mean(0), torch.zeros(10), atol=1e-4, rtol=0)
    torch.testing.assert_close(torch.cov(z.T.double()), torch.eye(10, dtype=torch.float64), atol=1e-3, rtol=0)
    # variances are those of the leading principal components, in decreasing order
    assert (embedding.explained_variance_[:-1] >= embedding.explained_variance_[1:]).all()


def test_batch_shapes_dtypes_and_the_empty_batch(fitted):
    embedding, x = fitted
    z = embedding(x[:6])
    torch.testing.assert_close(embedding(x[:6].view(2, 3, 16, 16)), z.view(2, 3, 10))
    torch.testing.assert_close(embedding(x[0]), z[0])
    z64 = embedding(x[:6].double())
    assert z64.dtype == torch.float64
    torch.testing.assert_close(z64.float(), z, atol=1e-4, rtol=1e-4)
    assert embedding(torch.zeros(0, 16, 16)).shape == (0, 10)
    assert embedding.features(torch.zeros(0, 16, 16)).shape == (0, embedding.n_features)


def test_randomised_svd_is_seeded(fitted):
    embedding, x = fitted
    feats = embedding.features(x, batch_size=7)
    again = WhitenedScattering(2, (16, 16), L=4, n_components=10).fit_features(feats, random_state=0)
    assert torch.equal(again.projection_, embedding.projection_)


def test_principal_axes_have_a_fixed_sign(fitted):
    # A singular vector is defined up to sign and round-off can flip it (it did
    # between two batch sizes); the largest entry of each axis is made positive.
    embedding, _ = fitted
    axes = embedding.projection_
    largest = axes.gather(0, axes.abs().argmax(0, keepdim=True))
    assert (largest > 0).all()


def test_bad_input_and_unfitted_use():
    embedding = WhitenedScattering(2, (16, 16), L=4, n_components=10)
    with pytest.raises(NotFittedError, match="fit_features"):
        embedding(torch.zeros(2, 16, 16))
    with pytest.raises(ValueError, match="n_components=10 must be smaller"):
        embedding.fit_features(torch.zeros(8, embedding.n_features))
    with pytest.raises(TypeError, match="random_state"):
        embedding.fit_features(torch.zeros(40, embedding.n_features), random_state="zero")
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., 16, 16\)"):
        embedding.features(torch.zeros(2, 8, 8))
    with pytest.raises(TypeError, match="float32 or float64"):
        embedding.features(torch.zeros(2, 16, 16, dtype=torch.int64))

