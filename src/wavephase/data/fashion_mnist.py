"""Fashion-MNIST (Xiao et al. 2017) from IDX files, verified by SHA-256.

The files come from a directory given by the caller or from Debian's
``dataset-fashion-mnist`` package (``/usr/share/datasets/fashion-mnist``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from wavephase.data.cache import verify_sha256
from wavephase.data.mnist import load_idx_split

__all__ = ["load_fashion_mnist", "FASHION_MNIST_DEBIAN_DIR", "FASHION_MNIST_SHA256", "FASHION_MNIST_CLASSES"]

FASHION_MNIST_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")

# Digests of the official files, both gzipped (as Debian ships them) and raw.
FASHION_MNIST_SHA256: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
    "train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
    "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

_INSTALL_HINT = (
    "Install Debian's package (as root: `apt-get update && apt-get install -y dataset-fashion-mnist`, "
    "files in /usr/share/datasets/fashion-mnist) or pass path= a directory holding the four official "
    "IDX files (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz], "
    "t10k-labels-idx1-ubyte[.gz])."
)


def load_fashion_mnist(
    path: str | os.PathLike[str] | None = None, *, verify: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Load Fashion-MNIST with its official 60k/10k train/test split.

    Parameters
    ----------
    path : path-like, optional
        Directory of the four IDX files (gzipped or raw). Defaults to Debian's
        ``/usr/share/datasets/fashion-mnist``.
    verify : bool
        Check each file's SHA-256 against the official digest.

    Returns
    -------
    X_train, y_train, X_test, y_test : numpy.ndarray
        As :func:`wavephase.data.load_mnist`: 60,000 and 10,000 images of 28 x 28.

    Raises
    ------
    FileNotFoundError
        If the files are missing (the message says how to install them).
    wavephase.exceptions.ChecksumError
        If a file is corrupt or truncated.
    """
    root = Path(path) if path is not None else FASHION_MNIST_DEBIAN_DIR
    if not root.is_dir():
        raise FileNotFoundError(f"Fashion-MNIST directory {root} does not exist. {_INSTALL_HINT}")

    def checker(file: Path) -> None:
        if verify:
            verify_sha256(file, FASHION_MNIST_SHA256[file.name], f"Fashion-MNIST file {file.name}")

    return load_idx_split(root, "Fashion-MNIST", _INSTALL_HINT, checker)
