"""The data-set registry: names, and loading by name from IDX files."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from wavephase.data.datasets import DATASETS, load_dataset
from wavephase.data.idx import to_idx_bytes


def test_registry_names_the_classification_data_sets():
    assert sorted(DATASETS) == ["fashion-mnist", "mnist"]
    with pytest.raises(TypeError):
        DATASETS["cifar"] = None  # read-only: a name is added in the module, with its loader


def test_load_dataset_by_name_from_idx_files(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (12, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 12, dtype=np.uint8)
    for name, arr in {"train-images-idx3-ubyte": images[:8], "train-labels-idx1-ubyte": labels[:8],
                      "t10k-images-idx3-ubyte": images[8:], "t10k-labels-idx1-ubyte": labels[8:]}.items():
        (tmp_path / f"{name}.gz").write_bytes(gzip.compress(to_idx_bytes(arr)))
    X, y, Xt, yt = load_dataset("mnist", tmp_path)
    assert X.shape == (8, 28, 28) and X.dtype == np.float32 and Xt.shape == (4, 28, 28)
    np.testing.assert_allclose(X * 255, images[:8], atol=1e-4)
    np.testing.assert_array_equal(yt, labels[8:])


@pytest.mark.parametrize("name", ["cifar", "MNIST", 3])
def test_unknown_names_are_refused(name):
    with pytest.raises(ValueError, match="dataset must be one of"):
        load_dataset(name)
