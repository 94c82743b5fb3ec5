"""ScatteringClassifier on oriented bars: accuracy, defaults, precomputed features, contract on images."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from wavephase.models import ScatteringClassifier
from wavephase.models.features import scattering_features


@pytest.mark.parametrize("kind", ["linear", "svm"])
def test_scattering_classifier_learns_orientations(bars, kind):
    X, y, Xt, yt = bars
    model = ScatteringClassifier(J=2, L=4, classifier=kind).fit(X, y)
    assert model.score(Xt, yt) > 0.9
    p = model.predict_proba(Xt)
    np.testing.assert_allclose(p.sum(1), 1, rtol=1e-6)
    np.testing.assert_array_equal(model.classes_[p.argmax(1)], model.predict(Xt))
    assert model.decision_function(Xt).shape == (len(Xt), 3)


def test_two_class_svm_gives_probabilities_that_follow_its_scores(bars):
    X, y, Xt, _ = bars
    F, Ft = (scattering_features(a, J=2, L=4) for a in (X, Xt))
    two = y < 2
    model = ScatteringClassifier(classifier="svm", precomputed=True).fit(F[two], y[two])
    scores, p = model.decision_function(Ft), model.predict_proba(Ft)
    assert scores.shape == (len(Ft),) and p.shape == (len(Ft), 2)
    np.testing.assert_allclose(p[:, 1], 1 / (1 + np.exp(-scores)), rtol=1e-6)
    np.testing.assert_array_equal(model.classes_[p.argmax(1)], model.predict(Ft))


def test_default_regularisation_depends_on_the_classifier(bars):
    X, y, _, _ = bars
    F = scattering_features(X, J=2, L=4)
    assert ScatteringClassifier(precomputed=True).fit(F, y).pipeline_[-1].C == 0.03
    assert ScatteringClassifier(precomputed=True, classifier="svm").fit(F, y).pipeline_[-1].C == 1.0
    assert ScatteringClassifier(precomputed=True, C=0.5).fit(F, y).pipeline_[-1].C == 0.5
    with pytest.raises(ValueError, match="C must be positive"):
        ScatteringClassifier(precomputed=True, C=0.0).fit(F, y)


def test_precomputed_features_give_the_same_predictions(bars):
    X, y, Xt, _ = bars
    F, Ft = (scattering_features(a, J=2, L=4) for a in (X, Xt))
    a = ScatteringClassifier(J=2, L=4).fit(X, y).predict(Xt)
    b = ScatteringClassifier(J=2, L=4, precomputed=True).fit(F, y).predict(Ft)
    c = ScatteringClassifier(J=2, L=4, precomputed=True).fit(F.reshape(len(F), -1), y).predict(Ft.reshape(len(Ft), -1))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)


def test_image_contract_of_the_sklearn_checks(bars):
    # The image analogues of scikit-learn's data checks, which feed 2D tables only.
    X, y, Xt, _ = bars
    model = ScatteringClassifier(J=2, L=4)
    assert model.fit(X, y) is model
    proba = model.predict_proba(Xt)
    np.testing.assert_allclose(clone(model).fit(X, y).predict_proba(Xt), proba)  # refit: the same model
    np.testing.assert_allclose(pickle.loads(pickle.dumps(model)).predict_proba(Xt), proba)
    order = np.random.default_rng(1).permutation(len(Xt))
    np.testing.assert_allclose(model.predict_proba(Xt[order]), proba[order], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(model.predict_proba(Xt[:7]), proba[:7], rtol=1e-5, atol=1e-7)
    as_uint8 = np.clip((X + 1) * 100, 0, 255).astype(np.uint8)  # integers are taken as they are
    np.testing.assert_array_equal(ScatteringClassifier(J=2, L=4).fit(as_uint8, y).predict(as_uint8[:5]),
                                  ScatteringClassifier(J=2, L=4).fit(as_uint8.astype(np.float32), y).predict(
                                      as_uint8[:5].astype(np.float32)))


def test_empty_batches_give_empty_results(bars):
    X, y, _, _ = bars
    for model in (ScatteringClassifier(J=2, L=4).fit(X, y), ScatteringClassifier(J=2, L=4, classifier="svm").fit(X, y)):
        assert model.predict(X[:0]).shape == (0,) and model.predict(X[:0]).dtype == model.classes_.dtype
        assert model.predict_proba(X[:0]).shape == (0, 3)
        assert model.decision_function(X[:0]).shape == (0, 3)


def test_bad_input_and_unfitted_model_are_refused(bars):
    X, y, _, _ = bars
    with pytest.raises(NotFittedError):
        ScatteringClassifier().predict(X)
    with pytest.raises(ValueError, match="labels"):
        ScatteringClassifier(J=1, L=4).fit(X, y[:-1])
    with pytest.raises(ValueError, match="target y is None"):
        ScatteringClassifier(J=1, L=4).fit(X, None)
    with pytest.raises(ValueError, match=r"\(n, M, N\)"):
        ScatteringClassifier(J=1, L=4).fit(X[0], y)
    with pytest.raises(TypeError, match="complex"):
        ScatteringClassifier(J=1, L=4).fit(X.astype(np.complex64), y)
    bad = X.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        ScatteringClassifier(J=1, L=4).fit(bad, y)
    with pytest.raises(ValueError, match="classifier"):
        ScatteringClassifier(J=1, L=4, classifier="tree").fit(X, y)
    with pytest.raises(ValueError, match="log_eps"):
        ScatteringClassifier(J=1, L=4, log_eps=-1.0).fit(X, y)
    with pytest.raises(ValueError, match="device"):
        ScatteringClassifier(J=1, L=4, device="tpu").fit(X, y)
    model = ScatteringClassifier(J=1, L=4).fit(X, y)
    with pytest.raises(ValueError, match="fitted on samples of shape"):
        model.predict(X[:, :12, :12])
    with pytest.raises(ValueError, match="expecting 25 features"):
        ScatteringClassifier(precomputed=True).fit(X[:, :5, :5].reshape(200, -1), y).predict(X[:, 0, :3])
    with pytest.raises(TypeError, match="sparse"):
        from scipy import sparse

        ScatteringClassifier(precomputed=True).fit(sparse.csr_array(X[:, 0]), y)
