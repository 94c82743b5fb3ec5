"""Scattering features: dtype policy, empty stacks, a verified cache whose warm bits equal the cold ones."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from wavephase import Scattering2D
from wavephase.models.features import flat_features, scatter_in_batches, scattering_features


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A temporary wavephase cache; returns its feature folder."""
    monkeypatch.setenv("WAVEPHASE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "features"


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).random((45, 16, 16)).astype(np.float32)


def test_features_are_the_scattering_of_the_images(images):
    feats = scattering_features(images, J=2, L=4, batch_size=7)
    assert feats.shape == (45, 25, 4, 4) and feats.dtype == np.float32
    expected = Scattering2D(2, (16, 16), L=4)(torch.from_numpy(images)).numpy()
    np.testing.assert_allclose(feats, expected, rtol=1e-5, atol=1e-6)


def test_dtype_policy_and_empty_stacks(images):
    as_uint8 = (images * 255).astype(np.uint8)
    np.testing.assert_array_equal(scattering_features(as_uint8, J=2, L=4),
                                  scattering_features(as_uint8.astype(np.float32), J=2, L=4))
    f64 = scattering_features(images[:5].astype(np.float64), J=2, L=4)
    assert f64.dtype == np.float64
    np.testing.assert_allclose(f64, scattering_features(images[:5], J=2, L=4), rtol=1e-4, atol=1e-6)
    assert scattering_features(images[:0], J=2, L=4, cache_name="empty").shape == (0, 25, 4, 4)
    assert scatter_in_batches(Scattering2D(2, (16, 16), L=4), images[:0]).shape == (0, 25, 4, 4)


def test_bad_input_is_refused(images):
    bad = images.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        scattering_features(bad, J=2, L=4)
    with pytest.raises(ValueError, match=r"\(n, M, N\)"):
        scattering_features(images[0], J=2, L=4)
    with pytest.raises(ValueError, match="too small for J=5"):
        scattering_features(images, J=5, L=4)
    with pytest.raises(TypeError, match="cache_name"):
        scattering_features(images, J=2, L=4, cache_name=3)
    with pytest.raises(ValueError, match="batch_size"):
        scattering_features(images, J=2, L=4, batch_size=0)
    with pytest.raises(ValueError, match="device"):
        scattering_features(images, J=2, L=4, device="tpu")


def test_warm_cache_gives_the_bits_of_a_cold_one(images, cache):
    cold = scattering_features(images, J=2, L=4, batch_size=20, cache_name="bars")
    (path,) = cache.iterdir()
    assert path.name.startswith("bars-J2-L4-")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warm = scattering_features(images, J=2, L=4, batch_size=20, cache_name="bars")
    np.testing.assert_array_equal(warm, cold)
    np.testing.assert_array_equal(scattering_features(images, J=2, L=4, batch_size=20), cold)
    # Other images of the same size (a subset, then other content) get their own file and features.
    subset = scattering_features(images[3:40], J=2, L=4, batch_size=20, cache_name="bars")
    np.testing.assert_array_equal(subset, scattering_features(images[3:40], J=2, L=4, batch_size=20))
    other = scattering_features(images[::-1].copy(), J=2, L=4, batch_size=20, cache_name="bars")
    np.testing.assert_allclose(other, cold[::-1], rtol=1e-5, atol=1e-7)
    assert len(list(cache.iterdir())) == 3
    # Other settings, same images: another file.
    scattering_features(images, J=2, L=4, batch_size=9, cache_name="bars")
    assert len(list(cache.iterdir())) == 4


@pytest.mark.parametrize("damage", ["truncate", "zero", "garble"])
def test_damaged_cache_is_recomputed_never_read(images, cache, damage):
    cold = scattering_features(images, J=2, L=4, cache_name="bars")
    (path,) = cache.iterdir()
    raw = bytearray(path.read_bytes())
    if damage == "truncate":
        raw = raw[: len(raw) // 2]
    elif damage == "zero":
        raw = bytearray(len(raw))
    else:
        raw[-len(raw) // 3 :: 97] = bytes(b ^ 0x5A for b in raw[-len(raw) // 3 :: 97])
    path.write_bytes(bytes(raw))
    with pytest.warns(UserWarning, match=f"feature cache {path} is corrupt; recomputing"):
        again = scattering_features(images, J=2, L=4, cache_name="bars")
    np.testing.assert_array_equal(again, cold)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the recomputed file is sound
        np.testing.assert_array_equal(scattering_features(images, J=2, L=4, cache_name="bars"), cold)


def test_flat_features_are_finite_at_zero_and_keep_empty_batches():
    feats = np.zeros((3, 2, 2, 2), np.float32)
    feats[0, 0, 0, 0] = -1e-9  # rounding below 0 counts as 0
    out = flat_features(feats, 1e-4)
    assert out.shape == (3, 8) and out.dtype == np.float32
    np.testing.assert_allclose(out, np.log(np.float32(1e-4)))
    np.testing.assert_array_equal(flat_features(feats), feats.reshape(3, 8))
    assert flat_features(feats[:0], 1e-4).shape == (0, 8)
