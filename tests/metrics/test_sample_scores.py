import math

import numpy as np
import pytest

from wavephase.data import make_polygons
from wavephase.metrics import confident_class_score, convex_shape_fraction, shape_solidity


def _canvas() -> np.ndarray:
    return np.zeros((16, 16), dtype=np.float32)


def test_a_square_is_one_convex_shape():
    img = _canvas()
    img[3:9, 4:12] = 1.0
    n, solidity = shape_solidity(img[None])
    assert n.tolist() == [1]
    assert solidity[0] == pytest.approx(1.0)
    assert convex_shape_fraction(img[None]) == 1.0


def test_two_squares_are_two_components():
    img = _canvas()
    img[1:5, 1:5] = 1.0
    img[9:14, 9:14] = 1.0
    n, _ = shape_solidity(img[None])
    assert n.tolist() == [2]
    assert convex_shape_fraction(img[None]) == 0.0


def test_an_l_shape_is_not_convex():
    img = _canvas()
    img[2:12, 2:12] = 1.0
    img[2:7, 7:12] = 0.0  # 75 pixels; its hull also holds the 10 grid points of the cut corner's triangle
    n, solidity = shape_solidity(img[None])
    assert n.tolist() == [1]
    assert solidity[0] == pytest.approx(75 / 85)
    assert convex_shape_fraction(img[None]) == 0.0


def test_threshold_is_one_half_and_empty_or_faint_images_fail():
    img = _canvas()
    img[3:9, 3:9] = 0.4  # faint: nothing above 1/2
    n, solidity = shape_solidity(np.stack([img, _canvas()]))
    assert n.tolist() == [0, 0] and solidity.tolist() == [0.0, 0.0]
    assert convex_shape_fraction(img[None] + 0.2) == 1.0


def test_lines_and_single_pixels_and_gaps():
    img = _canvas()
    img[5, 2:10] = 1.0  # a straight run: its hull is a segment
    dot = _canvas()
    dot[4, 4] = 1.0
    gap = _canvas()
    gap[2:10, 2:4] = 1.0
    gap[5, 2:4] = 0.0  # two bars one above the other
    n, solidity = shape_solidity(np.stack([img, dot, gap]))
    assert n.tolist() == [1, 1, 2]
    assert solidity[:2].tolist() == [1.0, 1.0]


def test_real_polygons_score_almost_one():
    x, _ = make_polygons(200, size=32, random_state=3)
    assert convex_shape_fraction(x) >= 0.99


def test_shape_scores_reject_bad_input():
    with pytest.raises(ValueError, match="images must have shape"):
        shape_solidity(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="min_solidity"):
        convex_shape_fraction(np.zeros((1, 4, 4)), min_solidity=1.5)
    assert math.isnan(convex_shape_fraction(np.zeros((0, 4, 4))))


def test_confident_class_score():
    proba = np.array([[0.95, 0.05, 0.0], [0.1, 0.85, 0.05], [0.0, 0.02, 0.98], [0.92, 0.08, 0.0]])
    out = confident_class_score(proba)
    assert out["fraction"] == pytest.approx(0.75)
    assert out["class_histogram"] == pytest.approx([0.5, 0.25, 0.25])
    assert out["class_entropy_bits"] == pytest.approx(1.5)
    assert out["max_entropy_bits"] == pytest.approx(math.log2(3))
    # One class only: no entropy.
    assert confident_class_score(proba[[0, 3]])["class_entropy_bits"] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="probabilities"):
        confident_class_score(proba * 2)
    with pytest.raises(ValueError, match="n_classes"):
        confident_class_score(proba[:, :1])
