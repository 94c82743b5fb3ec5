"""Data parallelism over CPU threads: parts of a batch scattered side by side, one thread each (private).

On small images most operations of the matrix-product backend are too short
for torch's intra-op threads to share well (bench_scattering2d.py case (a), 256
images of 28 x 28 at two threads: 1.44x the one-thread throughput). Independent
images need no sharing: a pool of worker threads, each running torch with one
thread, scatters one part of the batch each. A worker's
``torch.set_num_threads(1)`` is local to that thread under torch's OpenMP back
end, so the caller's own setting is untouched.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import torch

from wavephase.scattering._workspace import Workspace

__all__ = ["in_worker", "parallel_map", "worker_pool", "worker_workspaces"]

_local = threading.local()
_pools: dict[tuple[int, int], ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def _init_worker() -> None:
    torch.set_num_threads(1)
    _local.in_worker = True
    # One pair per inference mode: tensors made in inference mode cannot be written outside it.
    _local.workspaces = {mode: (Workspace(True), Workspace(True)) for mode in (False, True)}


def in_worker() -> bool:
    """Whether the calling thread is one of the pool's workers (which must not fan out again)."""
    return getattr(_local, "in_worker", False)


def worker_workspaces() -> tuple[Workspace, Workspace]:
    """The calling worker's own buffers ``(work, scratch)``, kept from task to task.

    A worker runs one task at a time, so its buffers are never in use twice; the
    backward passes of the parts use the scratch of the worker that runs them
    (no buffer outlives the forward pass that wrote it).

    Returns
    -------
    (Workspace, Workspace)
        Enabled workspaces for results and for transient intermediates.
    """
    if not in_worker():
        raise RuntimeError("worker_workspaces() is only available in the scattering worker threads.")
    return _local.workspaces[torch.is_inference_mode_enabled()]


def worker_pool(n_threads: int) -> ThreadPoolExecutor:
    """The process's pool of ``n_threads`` one-thread torch workers (created on first use).

    Parameters
    ----------
    n_threads : int
        Number of workers.

    Returns
    -------
    concurrent.futures.ThreadPoolExecutor
        Kept per process, so a forked child builds its own instead of
        inheriting threads that do not exist there.
    """
    key = (os.getpid(), n_threads)
    with _pools_lock:
        if key not in _pools:
            _pools[key] = ThreadPoolExecutor(n_threads, thread_name_prefix="wavephase", initializer=_init_worker)
        return _pools[key]


class _ParallelMap(torch.autograd.Function):
    """``cat([fn(part) for part in x.tensor_split(n)])``, parts computed and differentiated in the workers.

    Each worker records its part's graph from a detached copy of the part, so
    the backward pass also runs the parts side by side. A backward pass that is
    itself recorded (``create_graph``), or a second one through a retained
    graph, recomputes ``fn`` in the calling thread from the saved input instead,
    as gradient checkpointing does.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor],  # type: ignore[override]
                n_parts: int, pool: ThreadPoolExecutor) -> torch.Tensor:
        def record(part: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            leaf = part.detach().requires_grad_()
            with torch.enable_grad():
                return leaf, fn(leaf)

        ctx.graphs = list(pool.map(record, x.tensor_split(n_parts)))
        ctx.fn, ctx.pool = fn, pool
        ctx.save_for_backward(x)
        return torch.cat([y.detach() for _, y in ctx.graphs])

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        if torch.is_grad_enabled() or ctx.graphs is None:
            (x,) = ctx.saved_tensors
            with torch.enable_grad():
                y = ctx.fn(x)
            (grad_x,) = torch.autograd.grad(y, x, grad, create_graph=torch.is_grad_enabled())
            return grad_x, None, None, None

        def differentiate(item: tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
            (leaf, y), g = item
            return torch.autograd.grad(y, leaf, g)[0]

        graphs, ctx.graphs = ctx.graphs, None  # freed by the workers' backward passes
        sizes = [len(y) for _, y in graphs]
        return torch.cat(list(ctx.pool.map(differentiate, zip(graphs, grad.split(sizes))))), None, None, None


def parallel_map(fn: Callable[..., torch.Tensor], x: torch.Tensor, n_parts: int,
                 out: torch.Tensor | None = None) -> torch.Tensor:
    """Apply a per-sample ``fn`` to ``n_parts`` parts of ``x`` in the worker pool, differentiably.

    Parameters
    ----------
    fn : callable
        Maps a batch ``(b, ...)`` to ``(b, ...)``, each output row depending on
        its input row only; called as ``fn(part, out=rows)`` when ``out`` is given.
    x : torch.Tensor
        CPU batch, split along its first axis.
    n_parts : int
        Parts (at least 2); the pool has ``torch.get_num_threads()`` workers,
        which take the parts in turn.
    out : torch.Tensor, optional
        Result to write into (only when no graph is recorded).

    Returns
    -------
    torch.Tensor
        The concatenated results (``out`` when given).

    Shapes
    ------
    x: (B, ...) -> (B, ...)
    """
    # One pool per thread count, not per number of parts: batches of any size share it.
    pool = worker_pool(torch.get_num_threads())
    if out is None:
        return _ParallelMap.apply(x, fn, n_parts, pool)
    inference = torch.is_inference_mode_enabled()

    def fill(pair: tuple[torch.Tensor, torch.Tensor]) -> None:
        # Grad and inference modes are per thread: take the caller's (an inference
        # tensor can only be written in inference mode).
        with torch.inference_mode(inference), torch.no_grad():
            fn(pair[0], out=pair[1])

    list(pool.map(fill, zip(x.tensor_split(n_parts), out.tensor_split(n_parts))))
    return out
