"""Parts of a batch scattered side by side by one-thread workers (wavephase.scattering._threads, ._batching)."""

import threading

import pytest
import torch

from wavephase import Scattering2D
from wavephase.scattering import _threads
from wavephase.scattering._batching import thread_parts


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def _serial_and_parallel(S, fn):
    """``fn()`` with torch at one thread (no workers), then at two (workers)."""
    torch.set_num_threads(1)
    serial = fn()
    torch.set_num_threads(2)
    return serial, fn()


def test_workers_give_the_serial_coefficients_and_gradients(two_threads):
    # chunk_bytes=1: one image per chunk, so six images make six parts for the two workers.
    S = Scattering2D(2, (12, 12), L=3, dtype=torch.float64, backend="matmul", chunk_bytes=1)
    x = torch.randn(6, 12, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert thread_parts(S.cascade, x, S.chunk_bytes) == 6
    serial, parallel = _serial_and_parallel(S, lambda: S(x))
    torch.testing.assert_close(parallel, serial, rtol=1e-13, atol=1e-15)

    def grad():
        xg = x.clone().requires_grad_()
        return torch.autograd.grad(S(xg).square().sum(), xg)[0]

    serial, parallel = _serial_and_parallel(S, grad)
    torch.testing.assert_close(parallel, serial, rtol=1e-12, atol=1e-14)


def test_workers_follow_the_callers_grad_and_inference_modes(two_threads):
    S = Scattering2D(2, (12, 12), L=2, backend="matmul", chunk_bytes=1)
    x = torch.rand(4, 12, 12, requires_grad=True)
    expected = S(x).detach()
    with torch.inference_mode():
        inferred = S(x)
    with torch.no_grad():
        plain = S(x)
    assert inferred.is_inference() and not plain.requires_grad
    torch.testing.assert_close(inferred, expected, rtol=0, atol=0)
    torch.testing.assert_close(plain, expected, rtol=0, atol=0)


def test_workers_support_create_graph_and_retained_graphs(two_threads):
    S = Scattering2D(2, (12, 12), L=3, dtype=torch.float64, backend="matmul", chunk_bytes=1)
    x = torch.randn(4, 12, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(1))

    def second_order():
        xg = x.clone().requires_grad_()
        (g,) = torch.autograd.grad(S(xg).square().sum(), xg, create_graph=True)
        return torch.autograd.grad(g.square().sum(), xg)[0]

    serial, parallel = _serial_and_parallel(S, second_order)
    torch.testing.assert_close(parallel, serial, rtol=1e-10, atol=1e-12)
    xg = x.clone().requires_grad_()
    loss = S(xg).sum()
    (first,) = torch.autograd.grad(loss, xg, retain_graph=True)
    (again,) = torch.autograd.grad(loss, xg)  # the workers' graphs are gone: recomputed
    torch.testing.assert_close(again, first, rtol=1e-12, atol=1e-14)


def test_workers_leave_the_callers_thread_settings_alone(two_threads):
    S = Scattering2D(2, (12, 12), L=2, backend="matmul", chunk_bytes=1)
    S(torch.rand(4, 12, 12))
    assert torch.get_num_threads() == 2
    assert "mkl_get_max_threads() : 2" in torch.__config__.parallel_info() or "MKL" not in torch.__config__.show()
    # No workers for the FFT path, for one image, or for a single torch thread.
    fft = Scattering2D(2, (12, 12), L=2, backend="fft", chunk_bytes=1)
    assert thread_parts(fft.cascade, torch.rand(4, 12, 12), 1) == 1
    assert thread_parts(S.cascade, torch.rand(1, 12, 12), 1) == 1
    torch.set_num_threads(1)
    assert thread_parts(S.cascade, torch.rand(4, 12, 12), 1) == 1


def test_parts_are_worker_sized_chunks_and_at_least_one_per_worker(two_threads):
    S = Scattering2D(2, (28, 28), L=8, backend="matmul")
    per_image = S.cascade.bytes_per_image(torch.float32)
    x = torch.rand(256, 28, 28)
    parts = thread_parts(S.cascade, x, S.chunk_bytes)
    assert parts >= 4 and 256 / parts <= S.cascade.chunk_limit(True, False) / per_image
    assert thread_parts(S.cascade, x.requires_grad_(), S.chunk_bytes) >= 2
    # a batch too small for two parts of WORKER_MIN_PART_BYTES stays in the caller's thread
    assert thread_parts(S.cascade, torch.rand(16, 28, 28), S.chunk_bytes) == 1


def test_concurrent_callers_share_the_workers(two_threads):
    S = Scattering2D(2, (12, 12), L=2, backend="matmul", chunk_bytes=1)
    xs = [torch.rand(6, 12, 12, generator=torch.Generator().manual_seed(k)) for k in range(4)]
    expected = [S(x) for x in xs]
    results: dict[int, torch.Tensor] = {}
    callers = [threading.Thread(target=lambda k=k: results.__setitem__(k, S(xs[k]))) for k in range(4)]
    for t in callers:
        t.start()
    for t in callers:
        t.join()
    for k in range(4):
        torch.testing.assert_close(results[k], expected[k], rtol=0, atol=0)


def test_the_pool_is_per_process(monkeypatch):
    # A forked child inherits the parent's pool object but not its threads, so it
    # must build its own (the pool is keyed by the process id).
    parent = _threads.worker_pool(2)
    assert _threads.worker_pool(2) is parent
    monkeypatch.setattr(_threads.os, "getpid", lambda: -1)
    child = _threads.worker_pool(2)
    assert child is not parent
    assert child.submit(torch.get_num_threads).result() == 1
    assert child.submit(_threads.in_worker).result() and not _threads.in_worker()
    _threads._pools.pop((-1, 2)).shutdown()
