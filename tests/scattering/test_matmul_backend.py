"""The matrix-product backend: planar maps, fused autograd nodes (wavephase.scattering.matmul_backend)."""

import pytest
import torch

from wavephase import Scattering2D


def test_fused_wavelet_modulus_gradient_is_zero_at_zero_and_exact_elsewhere():
    S = Scattering2D(2, (8, 8), L=2, dtype=torch.float64, backend="matmul")
    zero = torch.zeros(2, 8, 8, dtype=torch.float64, requires_grad=True)
    S(zero)[:, 1:].sum().backward()  # orders 1 and 2: through the modulus
    assert torch.equal(zero.grad, torch.zeros_like(zero))
    x = torch.randn(2, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(4), requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: S(t)[:, 1:], (x,))


@pytest.mark.parametrize("out_ri_first", [True, False])
@pytest.mark.parametrize("in_ri_first", [True, False])
def test_planar_matrix_acts_as_the_complex_matrix(out_ri_first, in_ri_first):
    from wavephase.scattering.matmul_backend import _planar

    gen = torch.Generator().manual_seed(3)
    a = torch.randn(4, 6, dtype=torch.complex128, generator=gen)
    z = torch.randn(6, 5, dtype=torch.complex128, generator=gen)

    def stack(w, ri_first):  # (n, 5) complex -> (2 n, 5) real in the planar layout
        parts = torch.stack((w.real, w.imag), dim=0 if ri_first else 1)
        return parts.reshape(-1, w.shape[-1])

    expected = stack(a @ z, out_ri_first)
    assert torch.allclose(_planar(a, out_ri_first, in_ri_first) @ stack(z, in_ri_first), expected, atol=1e-12)


def test_recorded_backward_gives_the_same_gradient():
    # The backward pass writes into reused buffers unless it is itself recorded (create_graph).
    S = Scattering2D(2, (12, 12), L=3, dtype=torch.float64, backend="matmul", chunk_bytes=1)
    x = torch.randn(3, 12, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(5), requires_grad=True)
    (plain,) = torch.autograd.grad(S(x).square().sum(), x)
    (recorded,) = torch.autograd.grad(S(x).square().sum(), x, create_graph=True)
    assert recorded.requires_grad
    torch.testing.assert_close(recorded.detach(), plain, rtol=1e-12, atol=1e-14)


def test_planar_spectra_are_the_ffts_of_the_padded_images():
    from wavephase.scattering._workspace import Workspace

    x = torch.randn(3, 12, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    fft, matmul = (Scattering2D(2, (12, 10), L=2, dtype=torch.float64, backend=b).cascade for b in ("fft", "matmul"))
    _, expected = fft.prepare(x, Workspace(False), Workspace(True))  # (B, 1, Mp, Np)
    images, planar = matmul.prepare(x, Workspace(False), Workspace(True))  # (M, N, B), (Mp, 2, Np, 1, B)
    assert torch.equal(images, x.permute(1, 2, 0))
    spectrum = torch.complex(planar[:, 0, :, 0], planar[:, 1, :, 0]).permute(2, 0, 1)
    torch.testing.assert_close(spectrum, expected[:, 0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("batch", [3, 24])  # order-2 products over 12 and 96 maps: both adjoints
def test_gradients_match_the_fft_backend(batch):
    x = torch.randn(batch, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(8))
    grads = []
    for backend in ("fft", "matmul"):
        xg = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(Scattering2D(2, (16, 16), L=4, dtype=torch.float64, backend=backend)(xg)
                                   .square().sum(), xg, create_graph=True)
        (gg,) = torch.autograd.grad(g.square().sum(), xg)
        grads.append((g.detach(), gg))
    torch.testing.assert_close(grads[1][0], grads[0][0], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(grads[1][1], grads[0][1], rtol=1e-8, atol=1e-10)
