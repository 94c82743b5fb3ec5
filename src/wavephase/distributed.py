"""Fault-tolerant feature extraction over a set of molecules: in this process, or over Dask workers.

:func:`extract_features` maps a transform over molecules in chunks of rows and
keeps the results in a *feature store*, a folder of

* ``manifest.ckpt``: what the store was made from (a fingerprint of the transform
  and of the molecules), its size and its chunking;
* ``chunk-000012.ckpt``: the features of one chunk of rows, each a verified file
  of :mod:`wavephase.runs` (fingerprint of the store and the rows, SHA-256 of the
  content, atomic write);
* ``_done/12.json``: the chunk's completion marker (compute time, process),
  written after the chunk.

Hence:

* a worker killed mid-task loses nothing: the scheduler re-runs the task on
  another worker, and a chunk file is either absent or whole;
* a whole run killed and restarted skips every finished chunk and computes the rest;
* a garbled, truncated or foreign chunk is detected by its checksum or fingerprint
  and computed again (:func:`read_features` refuses it in one line);
* a store built from other molecules or another transform is refused instead of
  being silently mixed.

Chunks are computed in this process (``scheduler="serial"``, no extra
dependency) or, with Dask installed (``pip install 'wavephase[distributed]'``),
by a local cluster of worker processes or an existing scheduler whose workers
see the same file system.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import inspect
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from wavephase.data.molecules import Molecules
from wavephase.exceptions import ChecksumError, MissingDependencyError, StaleFileError
from wavephase.io import write_json
from wavephase.resources import check_memory, parse_memory_limit
from wavephase.runs import Checkpoint, fingerprint
from wavephase.validation import check_device, check_positive_int

__all__ = ["chunk_status", "extract_features", "read_features", "resolve_scheduler", "transform_fingerprint"]

_DONE = "_done"
_MANIFEST = "manifest.ckpt"
_MANIFEST_CONFIG = {"wavephase": "feature store", "version": 2}
# mallopt parameter numbers of glibc's malloc.h.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_DASK_FIX = "install it with pip install 'wavephase[distributed]', or compute in this process with scheduler='serial'"


def _source_files(objects: list[Any]) -> list[str]:
    """Files defining ``objects``, with, for code of wavephase, every wavephase module it draws on.

    A transform's numerics live in helper modules as much as in its class; following
    the names each module holds (functions, classes, modules) finds them.
    """
    files, seen = set(), set()
    todo = [inspect.getmodule(obj) for obj in objects]
    while todo:
        module = todo.pop()
        if module is None or module.__name__ in seen:
            continue
        seen.add(module.__name__)
        source = getattr(module, "__file__", None)
        if source is None or not os.path.isfile(source):
            continue
        files.add(source)
        if module.__name__.split(".")[0] != "wavephase":
            continue
        for value in vars(module).values():
            used = value if inspect.ismodule(value) else sys.modules.get(getattr(value, "__module__", None) or "")
            # Package __init__ files only re-export; following them would pull in whole folders.
            if used is not None and used.__name__.startswith("wavephase.") and not str(
                    getattr(used, "__file__", "")).endswith("__init__.py"):
                todo.append(used)
    return sorted(files)


def transform_fingerprint(transform: Any) -> str:
    """A stable identifier of a transform, for cache keys.

    Parameters
    ----------
    transform : nn.Module or callable
        For a module: its class, ``repr`` and the SHA-256 of its parameters and
        buffers; for a function: its module and qualified name. The source files
        defining it (for a module, its submodules too), and every wavephase module
        they use, are hashed as well, so editing the code changes the fingerprint.

    Returns
    -------
    str
        Hex digest.
    """
    h = hashlib.sha256()
    if isinstance(transform, torch.nn.Module):
        defining = [type(m) for m in transform.modules()]
    else:
        defining = [transform if inspect.isfunction(transform) else type(transform)]
    for source in _source_files(defining):
        h.update(Path(source).read_bytes())
    if isinstance(transform, torch.nn.Module):
        h.update(f"{type(transform).__module__}.{type(transform).__qualname__}\n{transform!r}".encode())
        for name, t in sorted([*transform.named_parameters(), *transform.named_buffers()], key=lambda item: item[0]):
            h.update(name.encode())
            h.update(t.detach().to("cpu").contiguous().numpy().tobytes())
    else:
        h.update(f"{getattr(transform, '__module__', '')}.{getattr(transform, '__qualname__', repr(transform))}".encode())
    return h.hexdigest()


def resolve_scheduler(scheduler: str | None, n_workers: int | None) -> tuple[str, int]:
    """Where the chunks are computed, checked before any work.

    Parameters
    ----------
    scheduler : str or None
        ``"serial"``: in this process; ``"tcp://HOST:PORT"`` (any address): an existing
        Dask scheduler; None: a local Dask cluster of ``n_workers`` processes, or
        this process when ``n_workers`` is 1.
    n_workers : int or None
        Worker processes of a local cluster; None means 2 when Dask is installed,
        else 1 (this process).

    Returns
    -------
    tuple of (str, int)
        ``("serial", 1)``, ``("local", n_workers)`` or ``(address, n_workers)``.

    Raises
    ------
    MissingDependencyError
        When Dask is needed (an address, or more than one worker) and not installed.
    """
    if n_workers is None:
        n_workers = 2 if scheduler != "serial" and importlib.util.find_spec("distributed") is not None else 1
    n_workers = check_positive_int(n_workers, "n_workers")
    if scheduler is not None and not isinstance(scheduler, str):
        raise TypeError(f"scheduler must be None, 'serial' or a Dask scheduler address, got {scheduler!r}.")
    if scheduler == "serial" or (scheduler is None and n_workers == 1):
        return "serial", 1
    if scheduler is not None and "://" not in scheduler:
        raise ValueError(f"scheduler must be 'serial' or a Dask scheduler address such as 'tcp://HOST:PORT', got "
                         f"{scheduler!r}.")
    try:
        import distributed  # noqa: F401
    except ImportError:
        what = f"scheduler={scheduler!r}" if scheduler else f"n_workers={n_workers} (a local cluster)"
        raise MissingDependencyError(f"{what} needs Dask, which is not installed; {_DASK_FIX}.") from None
    return scheduler or "local", n_workers


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


def _chunk(out: str | os.PathLike[str], store: dict[str, Any], c: int, on_mismatch: str = "raise") -> Checkpoint:
    """The verified file of chunk ``c`` of a store described by its manifest ``store``."""
    start, stop = c * store["chunk_size"], min(store["n"], (c + 1) * store["chunk_size"])
    return Checkpoint(Path(out) / f"chunk-{c:06d}.ckpt", {"store": store["fingerprint"], "rows": [start, stop]},
                      what=f"feature chunk {c} of {out}", on_mismatch=on_mismatch)  # type: ignore[arg-type]


def _compute_chunk(transform: Any, positions: np.ndarray, charges: np.ndarray, out: str, store: dict[str, Any],
                   chunk: int, threads: int, trim_padding: bool = False, device: str = "cpu") -> tuple[int, float]:
    """Task: compute one chunk's rows, write them verified, then mark the chunk done."""
    start, stop = chunk * store["chunk_size"], chunk * store["chunk_size"] + len(positions)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        if _in_dask_worker():
            _relax_malloc()
        t0 = time.perf_counter()
        if trim_padding:
            # Atom slots that are padding in every molecule of the block cost per-atom work for nothing.
            trimmed = Molecules._checked(positions, charges).trim()
            positions, charges = trimmed.positions, trimmed.charges
        block = _apply(transform, positions, charges, device)
        seconds = time.perf_counter() - t0
    finally:
        torch.set_num_threads(previous)
    if block.shape != (stop - start, store["n_features"]):
        raise ValueError(f"transform returned shape {block.shape} for rows {start}:{stop}; expected "
                         f"({stop - start}, {store['n_features']}) like the first molecule's output.")
    if not np.all(np.isfinite(block)):
        raise ValueError(f"transform returned NaN or inf for rows {start}:{stop}; check those molecules.")
    _chunk(out, store, chunk).save_array(block.astype(store["dtype"], copy=False))
    # The marker is written after the data: a chunk is never marked done without its file.
    write_json(Path(out) / _DONE / f"{chunk}.json",
               {"chunk": chunk, "start": start, "stop": stop, "seconds": seconds, "pid": os.getpid()})
    return chunk, seconds


def chunk_status(out: str | os.PathLike[str]) -> dict[int, dict[str, Any]]:
    """Completion markers of a feature store (the chunk files themselves are verified when read).

    Parameters
    ----------
    out : path-like
        The store written by :func:`extract_features`.

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
            except (ValueError, KeyError, TypeError, OSError):
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


def _manifest(out: Path) -> Checkpoint:
    return Checkpoint(out / _MANIFEST, _MANIFEST_CONFIG, what=f"feature store manifest of {out}")


def _open_store(out: Path, expected: dict[str, Any], probe: Any, overwrite: bool) -> dict[str, Any]:
    """The manifest of the store at ``out``: existing and matching, or new (replacing a foreign one)."""
    if out.exists():
        if not out.is_dir() or not ((out / _MANIFEST).exists() or (out / _DONE).exists() or not any(out.iterdir())):
            raise ValueError(f"out={out} exists and is not a feature store; choose another path (nothing there is "
                             f"replaced).")
        try:
            store = _manifest(out).load()
        except (ChecksumError, StaleFileError):
            store = None
        if store is not None and all(store.get(k) == v for k, v in expected.items()):
            return store
        if not overwrite:
            raise StaleFileError(f"out={out} holds features of other molecules, another transform or another "
                                 f"chunk_size/dtype, or its manifest {out / _MANIFEST} is damaged; pass overwrite=True "
                                 f"to replace it, or choose another out path.")
        shutil.rmtree(out)
    store = {**expected, "n_features": int(probe())}
    (out / _DONE).mkdir(parents=True, exist_ok=True)
    _manifest(out).save(store)
    return store


def extract_features(
    transform: Any,
    X: Molecules,
    out: str | os.PathLike[str] = "features",
    *,
    chunk_size: int = 250,
    scheduler: str | None = None,
    n_workers: int | None = None,
    threads_per_worker: int = 1,
    rows: Sequence[tuple[int, int]] | None = None,
    dtype: str = "float32",
    overwrite: bool = False,
    trim_padding: bool = False,
    progress: bool = True,
    device: str = "cpu",
) -> Path:
    """Compute ``transform(positions, charges)`` chunk by chunk into a verified feature store.

    Parameters
    ----------
    transform : nn.Module or callable
        Maps positions (m, A, 3) and charges (m, A) to features (m, K). A module
        gets float tensors (charges cast to the positions' dtype) and runs without
        gradients; a plain function gets the NumPy arrays. With Dask it must be
        picklable (it travels to the worker processes).
    X : Molecules
        The molecules, ``n`` of them.
    out : path-like
        Folder of the store to create or resume.
    chunk_size : int
        Molecules per task (and per stored chunk).
    scheduler : str, optional
        ``"serial"``: compute in this process; ``"tcp://HOST:PORT"``: an existing Dask
        scheduler (its workers must see ``out``); None: a local Dask cluster of
        ``n_workers`` processes, or this process when ``n_workers`` is 1 (see
        :func:`resolve_scheduler`).
    n_workers : int, optional
        Worker processes of the local cluster; default 2 with Dask installed, else 1.
    threads_per_worker : int
        Torch threads per task.
    rows : sequence of (int, int), optional
        Only compute the chunks that intersect these row ranges (default: all).
    dtype : str
        Storage dtype.
    overwrite : bool
        Replace a store built from other molecules or another transform.
    trim_padding : bool
        Drop atom slots that are padding in every molecule of a chunk before calling
        the transform; only valid for transforms that ignore padding atoms, and it
        saves their per-atom work.
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
    MissingDependencyError
        When the scheduler needs Dask and it is not installed.
    StaleFileError
        For a store at ``out`` built from other molecules or another transform
        (unless ``overwrite``).
    ValueError
        On malformed arguments, or a transform output of the wrong shape or with NaN.
    """
    if not isinstance(X, Molecules):
        raise TypeError(f"X must be a Molecules container, got {type(X).__name__}; wrap positions and charges "
                        f"with wavephase.data.Molecules(positions, charges).")
    chunk_size = check_positive_int(chunk_size, "chunk_size")
    threads = check_positive_int(threads_per_worker, "threads_per_worker")
    device = str(check_device(device))
    scheduler, n_workers = resolve_scheduler(scheduler, n_workers)
    n = len(X)
    if n == 0:
        raise ValueError("X holds no molecule.")
    out = Path(out)
    expected = {"fingerprint": fingerprint({"transform": transform_fingerprint(transform), "chunk_size": chunk_size,
                                            "dtype": dtype}, X.positions, X.charges),
                "n": n, "chunk_size": chunk_size, "dtype": str(np.dtype(dtype))}
    store = _open_store(out, expected, lambda: _apply(transform, X.positions[:1], X.charges[:1], device).shape[-1],
                        overwrite)
    done = chunk_status(out)
    # A marked chunk counts only if its file is whole and made for this store: a garbled one is computed again.
    todo = [c for c in _chunks_for_rows(rows, n, chunk_size)
            if c not in done or _chunk(out, store, c, "recompute").load_array() is None]
    if not todo:
        return out
    bounds = {c: (c * chunk_size, min(n, (c + 1) * chunk_size)) for c in todo}
    bar = tqdm(total=len(todo), disable=not progress, desc="features", unit="chunk")
    try:
        if scheduler == "serial":
            for c, (s, e) in bounds.items():
                _compute_chunk(transform, X.positions[s:e], X.charges[s:e], str(out), store, c, threads,
                               trim_padding, device)
                bar.update()
        else:
            _run_on_dask(scheduler, n_workers, bar, [
                (transform, X.positions[s:e], X.charges[s:e], str(out), store, c, threads, trim_padding, device)
                for c, (s, e) in bounds.items()], key=store["fingerprint"][:12])
    finally:
        bar.close()
    return out


def _run_on_dask(scheduler: str, n_workers: int, bar: Any, tasks: list[tuple[Any, ...]], key: str) -> None:
    """Run :func:`_compute_chunk` on every task over a local cluster or an existing scheduler."""
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler == "local":
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None,
                               host="127.0.0.1")
        client = Client(cluster)
    else:
        client = Client(scheduler)
    try:
        # The transform travels inside every task rather than as scattered data: scattered
        # data dies with the workers that hold it, and then every pending task fails.
        futures = [client.submit(_compute_chunk, *task, key=f"wavephase-chunk-{key}-{task[5]}", pure=False)
                   for task in tasks]
        for fut in as_completed(futures):
            fut.result()
            bar.update()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def read_features(out: str | os.PathLike[str], rows: np.ndarray | None = None, *,
                  memory_limit: int | float | str | None = None) -> np.ndarray:
    """Read features written by :func:`extract_features`, verifying every chunk read.

    Parameters
    ----------
    out : path-like
        The store.
    rows : numpy.ndarray, optional
        Row indices to read (default: all rows).
    memory_limit : int, float or str, optional
        Memory the rows read may take (e.g. ``"8GB"``; see :mod:`wavephase.resources`).

    Returns
    -------
    numpy.ndarray
        Features in the store's dtype.

    Raises
    ------
    ValueError
        If ``out`` is not a feature store, or a requested row belongs to a chunk not
        computed yet (run :func:`extract_features` again to complete it).
    ChecksumError, StaleFileError
        If a chunk file is corrupt or was not made for this store.
    ResourceLimitError
        If the rows would not fit in ``memory_limit`` (nothing is read then).

    Shapes
    ------
    rows: (m,) -> (m, K)
    """
    out = Path(out)
    store = _manifest(out).load() if out.is_dir() else None
    if store is None:
        raise ValueError(f"{out} is not a feature store written by extract_features.")
    n, cs = store["n"], store["chunk_size"]
    idx = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64).ravel()
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise ValueError(f"rows must lie in [0, {n}).")
    chunks = idx // cs
    missing = sorted(set(np.unique(chunks).tolist()) - set(chunk_status(out)))
    if missing:
        raise ValueError(f"{len(missing)} chunk(s) of {out} are not computed (e.g. chunk {missing[0]}); "
                         f"run extract_features again with the same arguments to finish them.")
    # the result, and one chunk's payload and array while it is copied in
    check_memory(float(idx.size + 2 * min(cs, n)) * store["n_features"] * np.dtype(store["dtype"]).itemsize,
                 f"{idx.size} row(s) of {store['n_features']} features of the feature store {out}", "cpu",
                 parse_memory_limit(memory_limit), "read fewer rows at once (rows=)")
    result = np.empty((idx.size, store["n_features"]), dtype=store["dtype"])
    for c in np.unique(chunks).tolist():
        block = _chunk(out, store, c).load_array()
        if block is None:
            raise ValueError(f"chunk {c} of {out} is marked done but its file is missing; run extract_features "
                             f"again to recompute it.")
        at = np.flatnonzero(chunks == c)
        result[at] = block[idx[at] - c * cs]
    return result
