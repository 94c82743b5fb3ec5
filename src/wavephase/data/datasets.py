"""Image classification data sets by name, with their official train/test split."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from types import MappingProxyType

import numpy as np

from wavephase.data.fashion_mnist import load_fashion_mnist
from wavephase.data.mnist import load_mnist

__all__ = ["DATASETS", "load_dataset"]

Split = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

#: The data sets :func:`load_dataset` knows, by name: each loader takes the
#: directory of the IDX files (None: its default source) and returns the split.
DATASETS: Mapping[str, Callable[[str | os.PathLike[str] | None], Split]] = MappingProxyType({
    "mnist": load_mnist,
    "fashion-mnist": load_fashion_mnist,
})


def load_dataset(name: str, path: str | os.PathLike[str] | None = None) -> Split:
    """Load an image classification data set with its official train/test split.

    Parameters
    ----------
    name : str
        One of :data:`DATASETS`: ``"mnist"`` or ``"fashion-mnist"``.
    path : path-like, optional
        Directory of the IDX files; the data set's default source otherwise.

    Returns
    -------
    X_train, y_train, X_test, y_test : numpy.ndarray
        Images as float32 in [0, 1] and int64 labels.

    Shapes
    ------
    X_train: (n_train, 28, 28), y_train: (n_train,), X_test: (n_test, 28, 28), y_test: (n_test,)

    Examples
    --------
    >>> sorted(DATASETS)
    ['fashion-mnist', 'mnist']
    """
    if not isinstance(name, str) or name not in DATASETS:
        raise ValueError(f"dataset must be one of {sorted(DATASETS)}, got {name!r}.")
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be the folder of the IDX files (a str or path), got {type(path).__name__}.")
    return DATASETS[name](path)
