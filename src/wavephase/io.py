"""Writing files safely: the one atomic write, the one JSON encoder, SHA-256 digests.

Every file the library writes (checkpoints, caches, feature stores, metrics)
goes through :func:`atomic_write_bytes`: a temporary file in the destination's
directory, flushed to disk, then moved into place with ``os.replace``. A job
killed at any instant leaves either the previous file or the new one, never a
torn one.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

__all__ = ["atomic_write_bytes", "write_json", "to_jsonable", "sha256_bytes", "sha256_file"]


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes | memoryview | Sequence[bytes | memoryview]) -> Path:
    """Write ``data`` to ``path`` atomically.

    Parameters
    ----------
    path : path-like
        Destination; its directory is created if needed.
    data : bytes or sequence of bytes
        Content, or its parts in order (written one after the other, so a large
        array need not be copied into one buffer first).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            for part in [data] if isinstance(data, (bytes, bytearray, memoryview)) else data:
                fh.write(part)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def to_jsonable(obj: Any) -> Any:
    """``obj`` with tensors, arrays, NumPy scalars, paths and tuples turned into JSON types.

    Non-finite floats become ``None`` (JSON has no NaN), so every file written
    by :func:`write_json` is standard JSON.

    Parameters
    ----------
    obj : object
        Nested dicts, lists and tuples of numbers, strings, tensors and arrays.

    Returns
    -------
    object
        The same structure made of dict, list, str, int, float, bool and None.
    """
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return to_jsonable(obj.detach().cpu().tolist())
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer, int)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, (os.PathLike, torch.dtype, torch.device)):
        return str(obj)
    if obj is None or isinstance(obj, str):
        return obj
    raise TypeError(f"cannot write a {type(obj).__name__} to JSON: {obj!r}")


def write_json(path: str | os.PathLike[str], obj: Any, *, indent: int = 2) -> Path:
    """Write ``obj`` as JSON, atomically, with :func:`to_jsonable`'s conversions.

    Parameters
    ----------
    path : path-like
        Destination file.
    obj : object
        What to write.
    indent : int
        Indentation of the JSON text.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    text = json.dumps(to_jsonable(obj), indent=indent, allow_nan=False)
    return atomic_write_bytes(path, (text + "\n").encode())


def sha256_bytes(data: bytes | memoryview) -> str:
    """SHA-256 hex digest of ``data``.

    Parameters
    ----------
    data : bytes
        Content.

    Returns
    -------
    str
        64-character lowercase hex digest.
    """
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB blocks.

    Parameters
    ----------
    path : path-like
        File to hash.

    Returns
    -------
    str
        64-character lowercase hex digest.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
