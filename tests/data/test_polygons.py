import numpy as np
import pytest

from wavephase.data import make_polygons
from wavephase.data.polygons import polygon_vertices, rasterize_polygons


def test_polygons_are_seeded_sized_and_in_range():
    a, ca = make_polygons(40, random_state=3)
    b, cb = make_polygons(40, random_state=3)
    c, _ = make_polygons(40, random_state=4)
    assert a.shape == (40, 64, 64) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ca, cb)
    assert not np.array_equal(a, c)
    assert a.min() >= 0 and a.max() <= 1
    assert set(np.unique(ca)) <= {3, 4, 5, 6}
    # Anti-aliased: edge pixels take intermediate values.
    assert np.mean((a > 0) & (a < 1)) > 0.005


def test_polygon_area_matches_shoelace_formula():
    verts, counts = polygon_vertices(20, size=64, random_state=1)
    img = rasterize_polygons(verts, size=64, supersample=8)
    for v, k, im in zip(verts, counts, img):
        y, x = v[:k, 0], v[:k, 1]
        area = 0.5 * abs(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))
        assert im.sum() == pytest.approx(area, rel=0.03, abs=2.0)


def test_polygons_are_convex_and_inside_the_image():
    verts, counts = polygon_vertices(50, size=64, min_vertices=5, max_vertices=5, random_state=2)
    assert (counts == 5).all()
    assert verts.min() >= 0 and verts.max() <= 64
    for v in verts:
        e = np.roll(v, -1, axis=0) - v
        cross = e[:, 1] * np.roll(e, -1, axis=0)[:, 0] - e[:, 0] * np.roll(e, -1, axis=0)[:, 1]
        # counter-clockwise in (x=col, y=row): every turn has the same sign
        assert (cross > 0).all() or (cross < 0).all()


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="max_vertices"):
        make_polygons(3, min_vertices=5, max_vertices=4)
    with pytest.raises(ValueError, match="min_vertices"):
        make_polygons(3, min_vertices=2)
    with pytest.raises(TypeError, match="n must be an int"):
        make_polygons(2.5)
    with pytest.raises(ValueError, match="vertices must have shape"):
        rasterize_polygons(np.zeros((3, 4)))
    with pytest.raises(TypeError, match="random_state"):
        make_polygons(3, random_state=0.5)


def test_zero_polygons_give_empty_arrays():
    images, counts = make_polygons(0, size=16)
    assert images.shape == (0, 16, 16) and images.dtype == np.float32 and counts.shape == (0,)
