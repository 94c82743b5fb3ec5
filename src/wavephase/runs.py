"""The resumable-run helper: every checkpoint and cache of the library goes through it.

A long job (training, synthesis, simulation, feature extraction) saves its
state to a :class:`Checkpoint`. The file records

* a **fingerprint** of what the state was made from: the configuration *and*
  the content of the data (:func:`fingerprint`), so a file made for other data
  of the same size is never taken for this run's;
* the **SHA-256 of its own content**, so a truncated, zeroed or garbled file is
  never read as a state;

and it is written atomically (:func:`wavephase.io.atomic_write_bytes`). On a
mismatch a checkpoint either refuses in one line that names the file
(``on_mismatch="raise"``, for training state one would not want to lose) or is
recomputed (``on_mismatch="recompute"``, for caches): it is never reused.

File layout: the line ``WAVEPHASE-VERIFIED 1``, one line of JSON (``kind``,
``fingerprint``, ``sha256``, ``size``), then ``size`` bytes of payload: a
``torch.save`` of plain data (read back with ``weights_only=True``, which
refuses arbitrary pickled objects) or a NumPy ``.npy`` array.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from wavephase.exceptions import ChecksumError, StaleFileError
from wavephase.io import atomic_write_bytes, to_jsonable

__all__ = ["Checkpoint", "fingerprint", "read_verified", "write_verified"]

_MAGIC = b"WAVEPHASE-VERIFIED 1\n"
_MAX_HEADER = 4096
OnMismatch = Literal["raise", "recompute"]


def _data_bytes(item: Any) -> tuple[str, memoryview]:
    """A description (dtype and shape) and the raw bytes of one piece of data."""
    if isinstance(item, (bytes, bytearray)):
        return "bytes", memoryview(item)
    if isinstance(item, str):
        return "str", memoryview(item.encode())
    if isinstance(item, torch.Tensor):
        item = item.detach().cpu()
        if item.dtype == torch.bfloat16:
            item = item.float()
        item = item.resolve_conj().resolve_neg().contiguous().numpy()
    array = np.ascontiguousarray(item)
    if array.dtype == object:
        raise TypeError("fingerprint data must be arrays, tensors, bytes or str, not objects.")
    return f"{array.dtype.str}{array.shape}", memoryview(array.reshape(-1).view(np.uint8))


def fingerprint(config: Mapping[str, Any], *data: Any) -> str:
    """SHA-256 of a configuration and of the content of data arrays.

    Parameters
    ----------
    config : mapping
        Settings that determine the result, made of JSON-able values (tensors,
        arrays, dtypes and paths are converted); key order does not matter.
    *data : array-like, tensor, bytes, str or None
        The data the result was made from; their dtype, shape and every byte count.

    Returns
    -------
    str
        64-character hex digest.
    """
    digest = hashlib.sha256(json.dumps(to_jsonable(dict(config)), sort_keys=True).encode())
    for item in data:
        if item is None:
            digest.update(b"\x00none")
            continue
        kind, raw = _data_bytes(item)
        digest.update(f"\x00{kind}\x00{raw.nbytes}\x00".encode())
        digest.update(raw)
    return digest.hexdigest()


def write_verified(path: str | os.PathLike[str], parts: list[bytes | memoryview], fingerprint: str,
                   kind: str) -> Path:
    """Write a payload with its fingerprint and checksum, atomically.

    Parameters
    ----------
    path : path-like
        Destination file.
    parts : list of bytes-like
        The payload, in parts that are written one after the other.
    fingerprint : str
        What the payload was made from (:func:`fingerprint`).
    kind : str
        What the payload is (``"torch"``, ``"npy"``), checked when read back.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    digest, size = hashlib.sha256(), 0
    for part in parts:
        digest.update(part)
        size += memoryview(part).nbytes
    header = json.dumps({"kind": kind, "fingerprint": fingerprint, "sha256": digest.hexdigest(), "size": size})
    return atomic_write_bytes(path, [_MAGIC, header.encode() + b"\n", *parts])


def read_verified(path: str | os.PathLike[str], fingerprint: str, kind: str, what: str) -> bytearray | None:
    """The payload of a file written by :func:`write_verified`, after every check.

    Parameters
    ----------
    path : path-like
        File to read.
    fingerprint : str
        The fingerprint the payload must have been made from.
    kind : str
        The kind of payload expected.
    what : str
        Name of the file in error messages, e.g. ``"checkpoint"``.

    Returns
    -------
    bytearray or None
        The payload (writable), or None when the file does not exist.

    Raises
    ------
    ChecksumError
        The file is truncated, garbled or not a file of this format.
    StaleFileError
        The file was made from another configuration or other data.
    """
    path = Path(path)
    if not path.exists():
        return None
    if not path.is_file():
        raise ChecksumError(f"{what} {path} is not a file; remove it or choose another path.")
    fix = f"delete it (rm {path}) to start again"
    with open(path, "rb") as fh:
        magic = fh.read(len(_MAGIC))
        line = fh.readline(_MAX_HEADER)
        try:
            if magic != _MAGIC:
                raise ValueError("no wavephase header")
            header = json.loads(line)
            size, expected = int(header["size"]), str(header["sha256"])
            if header["kind"] != kind:
                raise ValueError(f"holds {header['kind']!r} data, not {kind!r}")
        except (ValueError, KeyError, TypeError) as err:
            raise ChecksumError(f"{what} {path} is corrupt or not written by this version of wavephase ({err}); "
                                f"{fix}.") from None
        payload = bytearray(size)
        n_read = fh.readinto(payload)
        extra = fh.read(1)
    if n_read != size or extra:
        raise ChecksumError(f"{what} {path} is truncated or has trailing data ({n_read} of {size} bytes); {fix}.")
    if hashlib.sha256(payload).hexdigest() != expected:
        raise ChecksumError(f"{what} {path} is corrupt: its content does not match its SHA-256; {fix}.")
    if header["fingerprint"] != fingerprint:
        raise StaleFileError(f"{what} {path} was made from another configuration or other data; {fix} or choose "
                             f"another path.")
    return payload


class Checkpoint:
    """A file bound to what it was made from: the state of a resumable run, or a cached result.

    Parameters
    ----------
    path : path-like or None
        The file; None disables it (``load`` returns None, ``save`` does nothing).
    config : mapping
        Settings that determine the result (see :func:`fingerprint`).
    *data : array-like, tensor, bytes, str or None
        The data the result is made from.
    what : str
        Name of the file in messages, e.g. ``"sparse-cascade checkpoint"``.
    on_mismatch : {"raise", "recompute"}
        What a stale, corrupt or truncated file does: raise a one-line error
        naming the file (training state), or count as absent and be replaced on
        the next save (caches, with a warning).

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> path = tempfile.mkdtemp() + "/run.ckpt"
    >>> ckpt = Checkpoint(path, {"lr": 0.1}, np.arange(4))
    >>> ckpt.load() is None
    True
    >>> ckpt.save({"epoch": 3})
    >>> ckpt.load()["epoch"]
    3
    >>> Checkpoint(path, {"lr": 0.1}, np.arange(5), on_mismatch="recompute").load() is None
    True
    """

    def __init__(self, path: str | os.PathLike[str] | None, config: Mapping[str, Any], *data: Any,
                 what: str = "checkpoint", on_mismatch: OnMismatch = "raise") -> None:
        if on_mismatch not in ("raise", "recompute"):
            raise ValueError(f"on_mismatch must be 'raise' or 'recompute', got {on_mismatch!r}.")
        self.path = None if path is None else Path(path)
        self.what = what
        self.on_mismatch = on_mismatch
        self.fingerprint = fingerprint(config, *data) if self.path is not None else ""

    def _payload(self, kind: str) -> bytearray | None:
        if self.path is None:
            return None
        try:
            return read_verified(self.path, self.fingerprint, kind, self.what)
        except (ChecksumError, StaleFileError) as err:
            if self.on_mismatch == "raise":
                raise
            problem = "is stale" if isinstance(err, StaleFileError) else "is corrupt"
            warnings.warn(f"{self.what} {self.path} {problem}; recomputing it.", stacklevel=3)
            return None

    def load(self) -> dict[str, Any] | None:
        """The saved state, or None when there is none yet.

        Returns
        -------
        dict or None
            Tensors, numbers, strings and containers of them.
        """
        payload = self._payload("torch")
        if payload is None:
            return None
        try:
            return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
        except Exception as err:  # a verified payload that torch refuses holds unsafe objects
            raise ChecksumError(f"{self.what} {self.path} holds objects other than tensors and plain data ({err}); "
                                f"delete it to start again.") from None

    def save(self, state: Mapping[str, Any]) -> None:
        """Save ``state`` atomically with the fingerprint and checksum.

        Parameters
        ----------
        state : mapping
            Tensors, numbers, strings, and lists/dicts of them (state dicts, RNG
            states, counters).
        """
        if self.path is None:
            return
        buffer = io.BytesIO()
        torch.save(dict(state), buffer)
        write_verified(self.path, [buffer.getbuffer()], self.fingerprint, "torch")

    def load_array(self) -> np.ndarray | None:
        """The saved array (writable), or None when there is none yet.

        Returns
        -------
        numpy.ndarray or None
            The array as saved, without a copy of the file's bytes.
        """
        payload = self._payload("npy")
        if payload is None:
            return None
        stream = io.BytesIO(payload)
        try:
            version = np.lib.format.read_magic(stream)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                           (2, 0): np.lib.format.read_array_header_2_0}[version]
            shape, fortran, dtype = read_header(stream)
        except (ValueError, KeyError) as err:
            raise ChecksumError(f"{self.what} {self.path} does not hold an array ({err}); delete it.") from None
        if dtype.hasobject or fortran:
            raise ChecksumError(f"{self.what} {self.path} holds an object or Fortran-ordered array; delete it.")
        return np.frombuffer(payload, dtype=dtype, count=int(np.prod(shape)), offset=stream.tell()).reshape(shape)

    def save_array(self, array: np.ndarray) -> None:
        """Save one array atomically with the fingerprint and checksum.

        Parameters
        ----------
        array : numpy.ndarray
            Any shape, numeric dtype.
        """
        if self.path is None:
            return
        array = np.ascontiguousarray(array)
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, np.lib.format.header_data_from_array_1_0(array))
        write_verified(self.path, [header.getvalue(), memoryview(array.reshape(-1).view(np.uint8))], self.fingerprint,
                       "npy")

    def remove(self) -> None:
        """Delete the file if it exists."""
        if self.path is not None and self.path.exists():
            self.path.unlink()
