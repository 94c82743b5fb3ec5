"""How a batch goes through the cascade: chunks, and parts side by side in worker threads (private).

Chunks bound the peak memory and keep intermediates in cache; without autograd
they also reuse one set of buffers and write straight into the result. On
backends whose steps are too short for torch's intra-op threads, parts of the
batch run side by side in one-thread workers (:mod:`._threads`). The sizes come
from :mod:`._tuning`; the cascade itself holds none.
"""

from __future__ import annotations

import functools

import torch

from wavephase.scattering._threads import in_worker, parallel_map, worker_workspaces
from wavephase.scattering._tuning import WORKER_MIN_PART_BYTES
from wavephase.scattering._workspace import Workspace
from wavephase.scattering.cascade import CascadeBackend, scatter

__all__ = ["scatter_batch", "thread_parts"]


def _recording(x: torch.Tensor) -> bool:
    return torch.is_grad_enabled() and x.requires_grad


def thread_parts(backend: CascadeBackend, x: torch.Tensor, chunk_bytes: int) -> int:
    """Parts of the batch that one-thread workers take in turn (1: no workers, torch's own threads).

    Only backends that declare :attr:`~CascadeBackend.uses_workers` gain, on the
    CPU, and only with at least two parts of ``WORKER_MIN_PART_BYTES``. Each part
    is one chunk of the workers' size, and there are at least as many parts as
    workers: a worker that the machine slows down takes fewer parts instead of
    holding the others up at the end.

    Parameters
    ----------
    backend : CascadeBackend
        The cascade's backend.
    x : torch.Tensor
        The flat batch ``(B, M, N)``.
    chunk_bytes : int
        The caller's bound on a chunk's largest intermediate.

    Returns
    -------
    int
        Number of parts.
    """
    if not backend.uses_workers or x.device.type != "cpu" or in_worker():
        return 1
    per_image = backend.bytes_per_image(x.dtype)
    workers = min(torch.get_num_threads(), len(x) // max(1, min(chunk_bytes, WORKER_MIN_PART_BYTES) // per_image))
    if workers < 2:
        return 1
    limit = backend.chunk_limit(True, _recording(x))
    part = max(1, (chunk_bytes if limit is None else min(chunk_bytes, limit)) // per_image)
    return max(workers, -(-len(x) // part))


def _scatter_chunks(backend: CascadeBackend, x: torch.Tensor, chunk_bytes: int,
                    out: torch.Tensor | None = None) -> torch.Tensor:
    """Coefficients of a flat batch, chunk by chunk (into ``out`` when given, without autograd)."""
    record, worker = _recording(x), in_worker()
    work, scratch = Workspace(not record), Workspace(True)
    if worker:
        # A worker scatters one chunk per part: it keeps its own buffers from part to
        # part and call to call instead of faulting fresh ones in (~10 % of its time on case (a)).
        own_work, scratch = worker_workspaces()
        work = work if record else own_work
    limit = backend.chunk_limit(worker, record)
    limit = chunk_bytes if limit is None else min(chunk_bytes, limit)
    # Chunks of equal size: a short last chunk runs at a lower rate.
    n_chunks = -(-len(x) // max(1, limit // backend.bytes_per_image(x.dtype)))
    if not record:
        # Without autograd the chunks write straight into the result: one copy less.
        out = x.new_empty(len(x), backend.channels, *backend.output_shape) if out is None else out
        for part, rows in zip(x.tensor_split(n_chunks), out.tensor_split(n_chunks)):
            scatter(backend, part, work, scratch, out=rows)
        return out
    if n_chunks == 1:
        return scatter(backend, x, work, scratch)
    return torch.cat([scatter(backend, part, work, scratch) for part in x.tensor_split(n_chunks)])


def scatter_batch(backend: CascadeBackend, x: torch.Tensor, chunk_bytes: int) -> torch.Tensor:
    """Scattering coefficients of a flat batch, in chunks and, where it pays, in worker threads.

    Parameters
    ----------
    backend : CascadeBackend
        The cascade's backend.
    x : torch.Tensor
        Real images, checked by the caller.
    chunk_bytes : int
        Bound on a chunk's largest intermediate (see
        :meth:`CascadeBackend.bytes_per_image`).

    Returns
    -------
    torch.Tensor
        Coefficients in Kymatio's channel order.

    Shapes
    ------
    x: (B, M, N) -> (B, C, M // 2**J, N // 2**J)
    """
    n_parts = thread_parts(backend, x, chunk_bytes)
    fn = functools.partial(_scatter_chunks, backend, chunk_bytes=chunk_bytes)
    if n_parts == 1:
        return fn(x)
    if _recording(x):
        return parallel_map(fn, x, n_parts)
    return parallel_map(fn, x, n_parts, out=x.new_empty(len(x), backend.channels, *backend.output_shape))
