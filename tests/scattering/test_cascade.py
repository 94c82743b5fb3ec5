"""The cascade written once, on both backends (wavephase.scattering.cascade)."""

import pytest
import torch

from wavephase import Scattering2D
from wavephase.scattering._workspace import Workspace
from wavephase.scattering.cascade import CascadeBackend, channel_count, scatter

BACKENDS = ["fft", "matmul"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_scatter_on_a_backend_is_the_front_end_without_pooling(backend):
    S = Scattering2D(3, (20, 24), L=3, dtype=torch.float64, backend=backend)
    x = torch.randn(4, 20, 24, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert isinstance(S.cascade, CascadeBackend) and S.cascade.channels == channel_count(3, 3, 2) == 1 + 9 + 27
    out = torch.empty(4, S.cascade.channels, 2, 3, dtype=torch.float64)
    with torch.no_grad():
        written = scatter(S.cascade, x, Workspace(True), Workspace(True), out=out)
    assert written is out
    torch.testing.assert_close(out, S(x), rtol=1e-13, atol=1e-15)
    torch.testing.assert_close(scatter(S.cascade, x), out, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("max_order,levels", [(1, [(0, 0), (1, 0), (2, 0)]),
                                              (2, [(0, 0), (1, 0), (2, 0), (2, 1)])])
def test_each_wavelet_is_split_into_blocks_at_the_levels_the_cascade_uses(max_order, levels):
    S = Scattering2D(3, (16, 16), L=2, max_order=max_order, backend="fft")
    assert S.cascade.block_levels() == levels
    assert {name for name, _ in S.cascade.named_buffers() if name.startswith("_psi")} == {
        f"_psi{j}_at{r}" for j, r in levels}


@pytest.mark.parametrize("backend", BACKENDS)
def test_reused_buffers_across_chunks_give_the_same_coefficients(backend):
    # Without autograd both backends reuse their buffers from chunk to chunk.
    x = torch.randn(5, 40, 40, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    one_chunk = Scattering2D(2, (40, 40), L=4, dtype=torch.float64, backend=backend)
    chunked = Scattering2D(2, (40, 40), L=4, dtype=torch.float64, backend=backend, chunk_bytes=1)
    with torch.no_grad():
        expected = one_chunk(x)
        got = chunked(x)
    # Chunks change GEMM sizes, hence the summation order: equal to rounding.
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-14)
    xg = x.clone().requires_grad_(True)
    with_graph = chunked(xg)
    torch.testing.assert_close(with_graph.detach(), got, rtol=1e-12, atol=1e-14)
    (grad,) = torch.autograd.grad(with_graph.sum(), xg)
    (grad_one,) = torch.autograd.grad(one_chunk(xg).sum(), xg)
    torch.testing.assert_close(grad, grad_one, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("backend", BACKENDS)
def test_default_lowpass_is_applied_as_one_separable_term(dtype, backend):
    # The Gaussian low-pass is separable; built from float32-rounded values it would
    # not be, and every low-pass would cost 6-10 matrix-product pairs instead of one.
    S = Scattering2D(2, (28, 28), L=4, dtype=dtype, backend=backend)
    ranks = {name: buf.shape[0] for name, buf in S.cascade.named_buffers() if "_phi_rows" in name}
    assert ranks and set(ranks.values()) == {1}, ranks


def test_largest_intermediate_sets_the_chunk_size():
    S = Scattering2D(2, (28, 28), L=8, backend="matmul")
    # order 1 at 36 x 36 (8 maps) against order 2 at 18 x 18 (64 maps), complex64
    assert S.cascade.bytes_per_image(torch.float32) == 8 * max(8 * 36 * 36, 64 * 18 * 18)
    assert S.cascade.bytes_per_image(torch.float64) == 2 * S.cascade.bytes_per_image(torch.float32)
