"""Building blocks of the matrix-product DFT path (wavephase.scattering.dense)."""

import pytest
import torch

from wavephase.scattering.dense import dft_matrix, padding_matrix
from wavephase.scattering.fourier import reflect_indices


@pytest.mark.parametrize("n", [1, 6, 9, 36])
def test_dft_matrix_is_the_fft(n):
    x = torch.randn(n, 5, dtype=torch.complex128, generator=torch.Generator().manual_seed(n))
    assert torch.allclose(dft_matrix(n) @ x, torch.fft.fft(x, dim=0), atol=1e-12)
    assert torch.allclose(dft_matrix(n, inverse=True) @ x, torch.fft.ifft(x, dim=0), atol=1e-12)


@pytest.mark.parametrize("size,before,after", [(5, 2, 3), (7, 7, 6), (1, 2, 2)])
def test_padding_matrix_matches_index_padding(size, before, after):
    x = torch.randn(size, 3, dtype=torch.float64)
    reflect = padding_matrix(size, before, after, "reflect") @ x
    assert torch.equal(reflect, x[reflect_indices(size, before, after)])
    zeros = padding_matrix(size, before, after, "zeros") @ x
    assert torch.equal(zeros, torch.nn.functional.pad(x.T, (before, after)).T)


def test_fused_wavelet_modulus_gradient_is_zero_at_zero_and_exact_elsewhere():
    from wavephase import Scattering2D

    S = Scattering2D(2, (8, 8), L=2, dtype=torch.float64, backend="matmul")
    zero = torch.zeros(2, 8, 8, dtype=torch.float64, requires_grad=True)
    S(zero)[:, 1:].sum().backward()  # orders 1 and 2: through the modulus
    assert torch.equal(zero.grad, torch.zeros_like(zero))
    x = torch.randn(2, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(4), requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: S(t)[:, 1:], (x,))


@pytest.mark.parametrize("out_ri_first", [True, False])
@pytest.mark.parametrize("in_ri_first", [True, False])
def test_planar_matrix_acts_as_the_complex_matrix(out_ri_first, in_ri_first):
    from wavephase.scattering.dense import _planar

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
    from wavephase import Scattering2D

    S = Scattering2D(2, (12, 12), L=3, dtype=torch.float64, backend="matmul", chunk_bytes=1)
    x = torch.randn(3, 12, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(5), requires_grad=True)
    (plain,) = torch.autograd.grad(S(x).square().sum(), x)
    (recorded,) = torch.autograd.grad(S(x).square().sum(), x, create_graph=True)
    assert recorded.requires_grad
    torch.testing.assert_close(recorded.detach(), plain, rtol=1e-12, atol=1e-14)
