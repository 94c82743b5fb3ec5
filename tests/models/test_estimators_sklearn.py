"""scikit-learn's estimator checks on the classification estimators, with the reason for each exception.

``ScatteringClassifier(precomputed=True)`` takes 2D tabular features, so the
whole ``check_estimator`` suite runs on it. The estimators that take images
``(n, M, N)`` (``ScatteringClassifier`` on images, ``Scattering2DTransformer``)
declare it in their tags (``three_d_array``), and scikit-learn's data checks,
which all feed 2D tables, cannot apply: the checks that need no data run on them
here, and the image analogues of the others (fit returns self, not fitted,
pickling, sample-order and subset invariance, refit, empty and bad input) are in
``test_scattering_classifier.py`` and ``test_transformers.py``.
"""

from __future__ import annotations

import pytest
import sklearn
from sklearn.utils import estimator_checks as checks

from wavephase.models import ScatteringClassifier, Scattering2DTransformer

if tuple(int(p) for p in sklearn.__version__.split(".")[:2]) < (1, 6):
    pytest.skip("expected_failed_checks needs scikit-learn >= 1.6", allow_module_level=True)

#: Checks that fail by design, with the wavephase convention that makes them fail.
EXPECTED_FAILED_CHECKS = {
    "check_complex_data": "complex input is a TypeError (wrong dtype), not the ValueError scikit-learn expects "
                          "(wavephase.validation's dtype policy)",
    "check_dtype_object": "object arrays are refused, even of numbers (wavephase.validation's dtype policy)",
}

#: scikit-learn's checks that need no data, run on the estimators that take images.
DATA_FREE_CHECKS = [
    checks.check_estimator_cloneable,
    checks.check_estimator_repr,
    checks.check_no_attributes_set_in_init,
    checks.check_estimator_tags_renamed,
    checks.check_valid_tag_types,
    checks.check_mixin_order,
    checks.check_do_not_raise_errors_in_init_or_set_params,
    checks.check_parameters_default_constructible,
    checks.check_get_params_invariance,
    checks.check_set_params,
]


@checks.parametrize_with_checks(
    [ScatteringClassifier(precomputed=True), ScatteringClassifier(precomputed=True, classifier="svm")],
    expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS,
)
def test_precomputed_classifier_passes_sklearn_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("estimator", [ScatteringClassifier(), Scattering2DTransformer()], ids=type)
@pytest.mark.parametrize("check", DATA_FREE_CHECKS, ids=lambda c: c.__name__)
def test_image_estimators_pass_the_checks_without_data(estimator, check):
    check(type(estimator).__name__, estimator)


@pytest.mark.parametrize("estimator", [ScatteringClassifier(), Scattering2DTransformer()], ids=type)
def test_image_estimators_declare_image_input(estimator):
    tags = estimator.__sklearn_tags__()
    assert tags.input_tags.three_d_array and not tags.input_tags.two_d_array
    check = checks.check_transformers_unfitted if hasattr(estimator, "transform") else checks.check_estimators_unfitted
    check(type(estimator).__name__, estimator)  # NotFittedError comes before any look at X
