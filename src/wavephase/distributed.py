"""Fault-tolerant feature extraction over a data set with dask.distributed.

:func:`extract_features` maps a transform over a set of molecules in chunks of
rows. Each chunk is one dask task that computes its block, writes it into a
zarr array whose chunks coincide with the task's rows (so no two tasks ever
write the same file), and only *then* writes an atomic completion marker
``<out>/_done/<chunk>.json``. Hence:

* a worker killed mid-task loses nothing: the scheduler re-runs the task on
  another worker, and the unmarked, possibly torn block is simply rewritten;
* a whole run killed and restarted skips every marked chunk and computes the rest;
* a store built from other data or another transform (the fingerprint stored in
  the zarr attributes differs) is refused instead of being silently mixed.

The default scheduler is a :class:`distributed.LocalCluster` of worker processes
on this machine; ``scheduler="tcp://HOST:PORT"`` uses an existing cluster whose
workers see the same file system, and ``scheduler="serial"`` runs in-process.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from wavephase.io import atomic_write_bytes
from wavephase.validation import check_positive_int

__all__ = ["extract_features", "read_features", "chunk_status", "transform_fingerprint"]

_DONE = "_done"
# mallopt parameter numbers of glibc's malloc.h.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def transform_fingerprint(transform: Any) -> str:
    """A stable identifier of a transform, for cache keys.

    Parameters
    ----------
    transform : nn.Module or callable
        For a module: its class, ``repr`` and the SHA-256 of its parameters and
        buffers; for a function: its module and qualified name. The source files
        defining it (and, for a module, its submodules) are hashed too, so editing
        the code changes the fingerprint.

    Returns
    -------
    str
        Hex digest.
    """
    import inspect

    h = hashlib.sha256()
    # The sources of the transform's class (and of every submodule's class) or function: a
    # code change invalidates cached features.
    if isinstance(transform, torch.nn.Module):
        defining = [type(m) for m in transform.modules()]
    else:
        defining = [transform if inspect.isfunction(transform) else type(transform)]
    sources = set()
    for obj in defining:
        try:
            source = inspect.getsourcefile(obj)
        except TypeError:  # built-ins have no source file
            continue
        if source is not None and os.path.isfile(source):
            sources.add(source)
    for source in sorted(sources):
        h.update(Path(source).read_bytes())
    if isinstance(transform, torch.nn.Module):
        h.update(f"{type(transform).__module__}.{type(transform).__qualname__}\n{transform!r}".encode())
        for name, t in sorted(transform.state_dict().items()):
            h.update(name.encode())
            h.update(t.detach().to("cpu").contiguous().numpy().tobytes())
    else:
        h.update(f"{getattr(transform, '__module__', '')}.{getattr(transform, '__qualname__', repr(transform))}".encode())
    return h.hexdigest()


def _apply(transform: Any, positions: np.ndarray, charges: np.ndarray, device: str = "cpu") -> np.ndarray:
    """Run the transform on one block; modules get tensors on ``device``, functions get arrays."""
    if isinstance(transform, torch.nn.Module):
        pos = torch.from_numpy(np.ascontiguousarray(positions)).to(device)
        ch = torch.from_numpy(np.ascontiguousarray(charges)).to(device=device, dtype=pos.dtype)
        transform.to(device)
        with torch.no_grad():
            return transform(pos, ch).detach().to("cpu").numpy()
    return np.asarray(transform(positions, charges))


def _relax_malloc() -> None:
    """Undo, in this process, the allocator settings that dask's nanny imposes on its workers.

    The nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``; glibc then also stops
    adapting its mmap threshold, so every tensor above 128 kB is a fresh ``mmap`` whose pages
    fault in again: measured on the QM9 ``cpu`` preset, 44 ms instead of 20 ms of CPU per
    molecule, most of it system time. Thresholds of 32 MB (glibc's largest mmap threshold)
    and 1 GB keep freed memory for reuse. No-op where glibc is absent.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 32 * 2**20)
        libc.mallopt(_M_TRIM_THRESHOLD, 2**30)
    except (OSError, AttributeError):  # not glibc
        pass


def _in_dask_worker() -> bool:
    try:
        from distributed import get_worker

        get_worker()
    except (ImportError, ValueError):
        return False
    return True


def _compute_chunk(transform: Any, positions: np.ndarray, charges: np.ndarray, out: str, chunk: int,
                   start: int, stop: int, threads: int, trim_padding: bool = False,
                   device: str = "cpu") -> tuple[int, float]:
    """Worker task: compute rows ``start:stop``, write them, then mark the chunk done."""
    import zarr

    torch.set_num_threads(threads)
    if _in_dask_worker():
        _relax_malloc()
    t0 = time.perf_counter()
    if trim_padding:
        # Atom slots that are padding (charge 0) in every molecule of the block are dropped:
        # QM9 pads to 29 atoms while most blocks need fewer, and per-atom work is wasted on them.
        used = np.flatnonzero((charges != 0).any(axis=0))
        keep = int(used[-1]) + 1 if used.size else 1
        positions, charges = positions[:, :keep], charges[:, :keep]
    block = _apply(transform, positions, charges, device)
    seconds = time.perf_counter() - t0
    arr = zarr.open_array(out, mode="r+")
    if block.shape != (stop - start, arr.shape[1]):
        raise ValueError(f"transform returned shape {block.shape} for rows {start}:{stop}; expected "
                         f"({stop - start}, {arr.shape[1]}) like the first molecule's output.")
    if not np.all(np.isfinite(block)):
        raise ValueError(f"transform returned NaN or inf for rows {start}:{stop}; check those molecules.")
    arr[start:stop] = block.astype(arr.dtype, copy=False)
    # The marker is written after the data: a chunk is never marked done with torn data.
    marker = {"chunk": chunk, "start": start, "stop": stop, "seconds": seconds, "pid": os.getpid()}
    atomic_write_bytes(Path(out) / _DONE / f"{chunk}.json", json.dumps(marker).encode())
    return chunk, seconds


def chunk_status(out: str | os.PathLike[str]) -> dict[int, dict[str, Any]]:
    """Completion markers of a feature store.

    Parameters
    ----------
    out : path-like
        The zarr store written by :func:`extract_features`.

    Returns
    -------
    dict
        Chunk number -> marker (``start``, ``stop``, ``seconds`` of compute, ``pid``).
    """
    done: dict[int, dict[str, Any]] = {}
    folder = Path(out) / _DONE
    if folder.is_dir():
        for f in folder.glob("*.json"):
            try:
                m = json.loads(f.read_text())
                done[int(m["chunk"])] = m
            except (ValueError, KeyError, OSError):
                f.unlink(missing_ok=True)  # an unreadable marker means "not done"
    return done


def _chunks_for_rows(rows: Sequence[tuple[int, int]] | None, n: int, chunk_size: int) -> list[int]:
    n_chunks = math.ceil(n / chunk_size)
    if rows is None:
        return list(range(n_chunks))
    wanted: set[int] = set()
    for start, stop in rows:
        if not 0 <= start <= stop <= n:
            raise ValueError(f"rows must be (start, stop) ranges inside [0, {n}], got ({start}, {stop}).")
        if stop > start:
            wanted.update(range(start // chunk_size, (stop - 1) // chunk_size + 1))
    return sorted(wanted)


def _open_store(out: Path, fingerprint: str, n: int, n_features: Callable[[], int], chunk_size: int,
                dtype: str, overwrite: bool) -> Any:
    import zarr

    if out.exists():
        try:
            arr = zarr.open_array(str(out), mode="r+")
            same = (arr.attrs.get("fingerprint") == fingerprint and arr.shape[0] == n
                    and arr.chunks[0] == chunk_size and str(arr.dtype) == dtype)
        except Exception:  # noqa: BLE001 - any unreadable store is treated as foreign
            arr, same = None, False
        if same:
            return arr
        if not overwrite:
            raise ValueError(
                f"out={out} holds features of other data, another transform or another chunk_size/dtype; "
                f"pass overwrite=True to replace it, or choose another out path."
            )
        shutil.rmtree(out)
    k = n_features()
    arr = zarr.open_array(str(out), mode="w", shape=(n, k), chunks=(chunk_size, k), dtype=dtype,
                          fill_value=float("nan"))
    arr.attrs["fingerprint"] = fingerprint
    (out / _DONE).mkdir(parents=True, exist_ok=True)
    return arr


def extract_features(
    transform: Any,
    positions: np.ndarray,
    charges: np.ndarray,
    out: str | os.PathLike[str] = "features.zarr",
    *,
    chunk_size: int = 250,
    scheduler: str | None = None,
    n_workers: int = 2,
    threads_per_worker: int = 1,
    rows: Sequence[tuple[int, int]] | None = None,
    dtype: str = "float32",
    overwrite: bool = False,
    trim_padding: bool = False,
    progress: bool = True,
    device: str = "cpu",
) -> Path:
    """Compute ``transform(positions, charges)`` chunk by chunk into a zarr array.

    Parameters
    ----------
    transform : nn.Module or callable
        Maps positions (m, A, 3) and charges (m, A) to features (m, K). A module
        gets float tensors (charges cast to the positions' dtype) and runs without
        gradients; a plain function gets the NumPy arrays. It must be picklable
        (dask ships it to worker processes).
    positions : numpy.ndarray
        Shape (n, A, 3) float32/float64.
    charges : numpy.ndarray
        Shape (n, A) atomic numbers, 0 = padding.
    out : path-like
        Zarr store to create or resume; shape (n, K), chunks (chunk_size, K).
    chunk_size : int
        Molecules per task (and per zarr chunk).
    scheduler : str, optional
        ``None``: start a LocalCluster of ``n_workers`` processes on this machine;
        ``"tcp://HOST:PORT"``: connect to an existing scheduler (its workers must
        see ``out``); ``"serial"``: compute in this process.
    n_workers : int
        Worker processes of the LocalCluster.
    threads_per_worker : int
        Torch threads per worker process.
    rows : sequence of (int, int), optional
        Only compute the chunks that intersect these row ranges (default: all).
    dtype : str
        Storage dtype.
    overwrite : bool
        Replace a store built from other data or another transform.
    trim_padding : bool
        Drop atom columns that are padding (charge 0) in every molecule of a chunk
        before calling the transform; only valid for transforms that ignore
        padding atoms, and it saves their per-atom work.
    progress : bool
        Show a progress bar over chunks.
    device : str
        Torch device a module transform runs on (``"cuda"`` for a GPU; with a
        cluster, every worker uses that device). Plain functions ignore it.

    Returns
    -------
    pathlib.Path
        ``out``; read it with :func:`read_features`.

    Raises
    ------
    ValueError
        On malformed inputs, a foreign store at ``out``, or a transform output of
        the wrong shape or with NaN.
    """
    positions = np.asarray(positions)
    charges = np.asarray(charges)
    if positions.ndim != 3 or positions.shape[-1] != 3 or positions.dtype not in (np.float32, np.float64):
        raise ValueError(f"positions must be a float32/float64 array of shape (n, A, 3), got "
                         f"{positions.shape} {positions.dtype}.")
    if charges.shape != positions.shape[:2]:
        raise ValueError(f"charges must have shape {positions.shape[:2]} (n, A), got {charges.shape}.")
    if not np.all(np.isfinite(positions)):
        raise ValueError("positions contains NaN or inf; clean those molecules first.")
    chunk_size = check_positive_int(chunk_size, "chunk_size")
    n_workers = check_positive_int(n_workers, "n_workers")
    threads = check_positive_int(threads_per_worker, "threads_per_worker")
    try:
        device = str(torch.device(device))
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device must be a torch device such as 'cpu' or 'cuda', got {device!r}.") from err
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but torch sees no CUDA GPU here; use device='cpu'.")
    n = positions.shape[0]
    if n == 0:
        raise ValueError("positions holds no molecule.")
    out = Path(out)
    h = hashlib.sha256()
    for part in (positions, charges):
        h.update(str((part.shape, part.dtype)).encode())
        h.update(np.ascontiguousarray(part).tobytes())
    h.update(transform_fingerprint(transform).encode())
    fingerprint = h.hexdigest()
    _open_store(out, fingerprint, n, lambda: int(_apply(transform, positions[:1], charges[:1], device).shape[-1]),
                chunk_size, dtype, overwrite)
    done = chunk_status(out)
    todo = [c for c in _chunks_for_rows(rows, n, chunk_size) if c not in done]
    if not todo:
        return out

    def bounds(c: int) -> tuple[int, int]:
        return c * chunk_size, min(n, (c + 1) * chunk_size)

    bar = tqdm(total=len(todo), disable=not progress, desc="features", unit="chunk")
    try:
        if scheduler == "serial":
            for c in todo:
                s, e = bounds(c)
                _compute_chunk(transform, positions[s:e], charges[s:e], str(out), c, s, e, threads, trim_padding,
                               device)
                bar.update()
            return out
        from distributed import Client, LocalCluster, as_completed

        cluster = None
        if scheduler is None:
            cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None, host="127.0.0.1")
            client = Client(cluster)
        else:
            client = Client(scheduler)
        try:
            # The transform travels inside every task rather than as scattered data: scattered
            # data dies with the workers that hold it, and then every pending task fails.
            futures = []
            for c in todo:
                s, e = bounds(c)
                futures.append(client.submit(_compute_chunk, transform, positions[s:e], charges[s:e], str(out), c,
                                             s, e, threads, trim_padding, device,
                                             key=f"wavephase-chunk-{fingerprint[:12]}-{c}",
                                             pure=False))
            for fut in as_completed(futures):
                fut.result()
                bar.update()
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    finally:
        bar.close()
    return out


def read_features(out: str | os.PathLike[str], rows: np.ndarray | None = None) -> np.ndarray:
    """Read features written by :func:`extract_features`, refusing unfinished chunks.

    Parameters
    ----------
    out : path-like
        The zarr store.
    rows : numpy.ndarray, optional
        Row indices to read (default: all rows).

    Returns
    -------
    numpy.ndarray
        Shape (len(rows), K).

    Raises
    ------
    ValueError
        If a requested row belongs to a chunk not marked done (run
        :func:`extract_features` again to complete it).
    """
    import zarr

    arr = zarr.open_array(str(out), mode="r")
    n, cs = arr.shape[0], arr.chunks[0]
    idx = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise ValueError(f"rows must lie in [0, {n}).")
    missing = sorted(set(np.unique(idx // cs).tolist()) - set(chunk_status(out)))
    if missing:
        raise ValueError(f"{len(missing)} chunk(s) of {out} are not computed (e.g. chunk {missing[0]}); "
                         f"run extract_features again with the same arguments to finish them.")
    if not idx.size:
        return np.asarray(arr[:0])
    # Only the span of the requested rows is read: a split of the data set is one
    # contiguous range, and reading the whole store for each split would hold it twice.
    lo, hi = int(idx.min()), int(idx.max()) + 1
    return np.asarray(arr[lo:hi])[idx - lo]
