"""Seeded image augmentation: exact shifts and flips, determinism, mass preservation, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from wavephase.data.augment import augment_images, augmented_copies, place_on_canvas


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    # Random content on a zero border wider than the largest shift, so shifted
    # images lose nothing and can be compared with np.roll.
    X = np.zeros((12, 20, 24), dtype=np.float32)
    X[:, 4:-4, 4:-4] = np.random.default_rng(0).random((12, 12, 16))
    return X


def test_no_transform_is_identity(images):
    np.testing.assert_array_equal(augment_images(images, random_state=0), images)


def test_integer_images_are_taken_as_they_are_and_empty_stacks_stay_empty(images):
    as_uint8 = (images * 255).astype(np.uint8)
    shifted = augment_images(as_uint8, random_state=3, max_shift=2)
    assert shifted.dtype == np.float32 and shifted.max() > 1
    np.testing.assert_array_equal(shifted, augment_images(as_uint8.astype(np.float32), random_state=3, max_shift=2))
    params = {"max_shift": 2, "flip": True, "max_rotation": 10.0, "elastic": 1.0, "max_scale": 0.1}
    assert augment_images(images[:0], random_state=0, **params).shape == (0, 20, 24)
    assert place_on_canvas(as_uint8, 28, 3).dtype == np.float32
    assert place_on_canvas(images[:0], 28, 3).shape == (0, 28, 28)


def test_integer_shifts_are_exact_pixel_shifts(images):
    Y = augment_images(images, random_state=3, max_shift=3)
    shifts = set()
    for x, y in zip(images, Y):
        match = [(a, b) for a in range(-3, 4) for b in range(-3, 4)
                 if np.allclose(y, np.roll(x, (a, b), (0, 1)), atol=1e-6)]
        assert len(match) == 1
        shifts.add(match[0])
    assert len(shifts) > 3  # shifts are drawn per image


def test_flips_mirror_about_half_of_the_images(images):
    Y = augment_images(np.concatenate([images] * 5), random_state=1, flip=True)
    mirrored = [np.array_equal(y, x[:, ::-1]) for x, y in zip(np.concatenate([images] * 5), Y)]
    kept = [np.array_equal(y, x) for x, y in zip(np.concatenate([images] * 5), Y)]
    assert all(m or k for m, k in zip(mirrored, kept))
    assert 10 < sum(mirrored) < 50


def test_seeded_and_independent_of_batch_size(images):
    params = {"max_shift": 2, "flip": True, "max_rotation": 10.0, "elastic": 1.0}
    a = augment_images(images, random_state=4, copy=1, **params)
    np.testing.assert_array_equal(a, augment_images(images, random_state=4, copy=1, batch_size=5, **params))
    assert not np.allclose(a, augment_images(images, random_state=4, copy=2, **params))


@pytest.mark.parametrize("params", [{"max_rotation": 10.0}, {"elastic": 0.5, "elastic_sigma": 5.0}])
def test_rotations_and_deformations_are_small_and_keep_the_mass(images, params):
    # Smooth images (bilinear resampling of white noise would blur it): blobs.
    u = np.arange(20)[:, None] - 9.5
    v = np.arange(24)[None, :] - 11.5
    X = np.stack([np.exp(-((u - a) ** 2 + (v - b) ** 2) / 8) for a, b in [(2, -3), (-1, 4), (0, 0)]]).astype(np.float32)
    Y = augment_images(X, random_state=0, **params)
    assert Y.dtype == np.float32 and Y.shape == X.shape
    np.testing.assert_allclose(Y.sum((1, 2)), X.sum((1, 2)), rtol=0.15)
    assert 0 < np.abs(Y - X).max() < 0.8


def test_scalings_zoom_about_the_centre_within_the_range():
    # A centred Gaussian blob of variance v becomes one of variance zoom² v: the
    # measured zooms must lie in [1/1.2, 1.2] and spread over that range.
    u = np.arange(32)[:, None] - 15.5
    v = np.arange(32)[None, :] - 15.5
    X = np.repeat(np.exp(-(u**2 + v**2) / (2 * 9.0))[None].astype(np.float32), 40, axis=0)
    Y = augment_images(X, random_state=2, max_scale=0.2)
    var = (Y * (u**2 + v**2) / 2).sum((1, 2)) / Y.sum((1, 2))
    zoom = np.sqrt(var / 9.0)
    assert zoom.min() > 1 / 1.2 - 0.02 and zoom.max() < 1.2 + 0.02
    assert zoom.min() < 0.9 and zoom.max() > 1.1


def test_bad_input_is_refused(images):
    with pytest.raises(ValueError, match=r"\(n, M, N\)"):
        augment_images(images[0], random_state=0)
    with pytest.raises(ValueError, match="non-finite"):
        augment_images(np.full_like(images, np.nan), random_state=0)
    with pytest.raises(TypeError, match="random_state"):
        augment_images(images, random_state=(4, 1))
    with pytest.raises(TypeError, match="max_rotation must be a number"):
        augment_images(images, random_state=0, max_rotation="8")
    with pytest.raises(ValueError, match="elastic"):
        augment_images(images, random_state=0, elastic=float("nan"))
    with pytest.raises(ValueError, match="batch_size"):
        augment_images(images, random_state=0, max_shift=1, batch_size=0)
    with pytest.raises(ValueError, match="n_copies"):
        list(augmented_copies(images, -1, 0))
    with pytest.raises(ValueError, match="max_shift"):
        augment_images(images, random_state=0, max_shift=1.5)
    with pytest.raises(ValueError, match="elastic"):
        augment_images(images, random_state=0, elastic=-1.0)
    with pytest.raises(ValueError, match="max_scale"):
        augment_images(images, random_state=0, max_scale=-0.1)


def test_augmented_copies_are_seeded_by_copy_index(images):
    params = {"max_shift": 2, "max_rotation": 5.0, "elastic": 0.5}
    copies = list(augmented_copies(images, 3, 7, **params))
    assert len(copies) == 3 and list(augmented_copies(images, 0, 7, **params)) == []
    for k, copy in enumerate(copies):
        np.testing.assert_array_equal(copy, augment_images(images, random_state=7, copy=k, **params))
    assert not np.allclose(copies[0], copies[1])


def test_place_on_canvas_translates_pads_and_crops(images):
    assert place_on_canvas(images, 20, 0).shape == (12, 20, 20)  # 20x24 images: cropped on the right
    np.testing.assert_array_equal(place_on_canvas(images, 28, 3)[:, 3:23, 3:27], images)
    assert place_on_canvas(images, 28, 3).sum() == pytest.approx(images.sum(), rel=1e-6)
    moved = place_on_canvas(images, 32, -2)
    np.testing.assert_array_equal(moved[:, :18, :22], images[:, 2:, 2:])
    assert not moved[:, 18:].any() and not moved[:, :, 22:].any()
    square = images[:, :, :20]
    np.testing.assert_array_equal(place_on_canvas(square, 20, 0), square)
    with pytest.raises(ValueError, match="size"):
        place_on_canvas(images, 0, 0)
    with pytest.raises(ValueError, match="offset"):
        place_on_canvas(images, 32, 32)
    with pytest.raises(ValueError, match="offset"):
        place_on_canvas(images, 32, -20)
    with pytest.raises(ValueError, match=r"\(n, M, N\)"):
        place_on_canvas(images[0], 32, 0)
