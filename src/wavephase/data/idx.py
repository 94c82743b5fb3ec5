"""Reader (and writer) for the IDX format of MNIST and Fashion-MNIST (optionally gzipped).

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number
of dimensions), one big-endian uint32 per dimension, then the raw array.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

__all__ = ["parse_idx", "read_idx", "to_idx_bytes", "check_images_labels"]

_IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def to_idx_bytes(arr: np.ndarray) -> bytes:
    """Encode an array as (uncompressed) IDX bytes, the inverse of :func:`parse_idx`.

    Parameters
    ----------
    arr : numpy.ndarray
        Array of one of the IDX types (uint8, int8, int16, int32, float32, float64);
        multi-byte types are written big-endian.

    Returns
    -------
    bytes
        Magic number, dimensions, data. Shapes: any (d_1, ..., d_k) with k < 256.
    """
    arr = np.asarray(arr)
    codes = {dt.newbyteorder("="): code for code, dt in _IDX_TYPES.items()}
    native = arr.dtype.newbyteorder("=")
    if native not in codes:
        raise TypeError(f"arr has dtype {arr.dtype}, which IDX cannot hold; use one of {sorted(map(str, codes))}.")
    code = codes[native]
    head = bytes([0, 0, code, arr.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in arr.shape)
    return head + np.ascontiguousarray(arr, dtype=_IDX_TYPES[code]).tobytes()


def parse_idx(data: bytes, what: str = "IDX data") -> np.ndarray:
    """Parse IDX bytes (gzip-compressed or not) into an array.

    Parameters
    ----------
    data : bytes
        File content.
    what : str
        Name for error messages.

    Returns
    -------
    numpy.ndarray
        Array of the declared shape and native-endian dtype.

    Raises
    ------
    ValueError
        If the header is malformed or the payload is truncated.
    """
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as err:
            raise ValueError(f"{what}: corrupt or truncated gzip stream ({err}).") from err
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{what}: not an IDX file (bad magic number {data[:4]!r}).")
    code, ndim = data[2], data[3]
    if code not in _IDX_TYPES:
        raise ValueError(f"{what}: unknown IDX type code 0x{code:02x}.")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{what}: truncated IDX header.")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = _IDX_TYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(
            f"{what}: payload has {len(data) - header} bytes but shape {shape} of {dtype} needs {expected} "
            f"(truncated or corrupt file)."
        )
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (``.gz`` or raw) into an array.

    Parameters
    ----------
    path : path-like
        File to read.

    Returns
    -------
    numpy.ndarray
        The array.
    """
    path = Path(path)
    return parse_idx(path.read_bytes(), what=str(path))


def check_images_labels(
    images: np.ndarray, labels: np.ndarray, name: str, *, n_classes: int = 10, shape: tuple[int, int] = (28, 28)
) -> tuple[np.ndarray, np.ndarray]:
    """Validate an image/label pair and return float32 images in [0, 1] and int64 labels.

    Parameters
    ----------
    images : numpy.ndarray
        (n, 28, 28) uint8 in [0, 255] or floating in [0, 1].
    labels : numpy.ndarray
        (n,) integers in ``[0, n_classes)``.
    name : str
        Which split, for error messages.
    n_classes : int
        Number of classes.
    shape : tuple of int
        Expected image size.

    Returns
    -------
    images, labels : numpy.ndarray
        Shapes: images (n, 28, 28) float32, labels (n,) int64.

    Raises
    ------
    ValueError
        Wrong size, dtype, value range, count mismatch or labels out of range.
    """
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim == 2 and images.shape[1] == shape[0] * shape[1]:
        images = images.reshape(-1, *shape)
    if images.ndim != 3 or images.shape[1:] != tuple(shape):
        raise ValueError(f"{name} images must have shape (n, {shape[0]}, {shape[1]}), got {images.shape}.")
    if images.dtype == np.uint8:
        images = images.astype(np.float32) / 255.0
    elif np.issubdtype(images.dtype, np.floating):
        images = images.astype(np.float32)
        if images.size and (not np.isfinite(images).all() or images.min() < 0 or images.max() > 1):
            raise ValueError(f"{name} float images must be finite and in [0, 1].")
    else:
        raise ValueError(f"{name} images must be uint8 or floating, got dtype {images.dtype}.")
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{name} labels must be a 1-D integer array, got shape {labels.shape} dtype {labels.dtype}.")
    if len(labels) != len(images):
        raise ValueError(f"{name}: {len(images)} images but {len(labels)} labels.")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(
            f"{name} labels must lie in [0, {n_classes}), got range [{labels.min()}, {labels.max()}]."
        )
    return images, labels.astype(np.int64)
