"""Shape and digit scores of generated images, for :func:`~wavephase.experiments.generation.run_generation`.

Polygons: the fraction of images that are one connected convex shape
(:func:`~wavephase.metrics.sample_scores.convex_shape_fraction`). MNIST and
Fashion-MNIST: a scattering + logistic-regression classifier
(:class:`~wavephase.models.scattering_classifier.ScatteringClassifier`, J=2)
trained on the run's real training images and labels; the score is the fraction
of images it assigns to one class with probability at least 0.9, with the
entropy of the histogram of predicted classes
(:func:`~wavephase.metrics.sample_scores.confident_class_score`).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from wavephase.data import load_fashion_mnist, load_mnist
from wavephase.metrics.sample_scores import confident_class_score, convex_shape_fraction
from wavephase.models.scattering_classifier import ScatteringClassifier

__all__ = ["SCORE_NAMES", "fit_sample_scorer"]

#: What ``sample_score`` measures, per data set.
SCORE_NAMES = {"polygons": "fraction of single connected convex shapes",
               "mnist": "fraction of samples classified with probability >= 0.9",
               "fashion-mnist": "fraction of samples classified with probability >= 0.9"}


def fit_sample_scorer(dataset: str, train: torch.Tensor, test: torch.Tensor, pad: int, *, random_state: int = 0
                      ) -> tuple[Callable[[torch.Tensor], dict[str, Any]], dict[str, Any]]:
    """A scorer of image sets for ``dataset``, and what was measured to fit it.

    Parameters
    ----------
    dataset : {"mnist", "fashion-mnist", "polygons"}
    train, test : torch.Tensor
        The run's training and test images (the first ones of their splits for
        MNIST-like data, whose labels are read again here), padded by ``pad``.
    pad : int
        Rows and columns of zeros around each image, cropped off before classifying.
    random_state : int
        Seed of the classifier (unused by the logistic regression, kept for the contract).

    Returns
    -------
    score : callable
        ``score(images)`` -> ``{"score": fraction}``, plus ``"class_entropy_bits"``
        and ``"class_histogram"`` for MNIST-like data.
    info : dict
        ``{"classifier_test_accuracy": ...}`` for MNIST-like data (on the run's
        test images), else empty.

    Shapes
    ------
    train: (n, S, S), test: (m, S, S); score: (k, S, S) -> dict
    """
    if dataset == "polygons":
        return (lambda images: {"score": convex_shape_fraction(images.detach().cpu().numpy())}), {}
    if dataset not in SCORE_NAMES:
        raise ValueError(f"dataset must be one of {', '.join(map(repr, SCORE_NAMES))}, got {dataset!r}.")
    _, y_train, _, y_test = load_mnist() if dataset == "mnist" else load_fashion_mnist()
    crop = (slice(None), slice(pad, train.shape[-2] - pad), slice(pad, train.shape[-1] - pad))
    clf = ScatteringClassifier(J=2, random_state=random_state).fit(train[crop].numpy(), y_train[: len(train)])
    accuracy = float(np.mean(clf.predict(test[crop].numpy()) == y_test[: len(test)]))

    def score(images: torch.Tensor) -> dict[str, Any]:
        out = confident_class_score(clf.predict_proba(images[crop].detach().cpu().numpy()))
        return {"score": out["fraction"], "class_entropy_bits": out["class_entropy_bits"],
                "class_histogram": out["class_histogram"]}

    return score, {"classifier_test_accuracy": accuracy}
