"""Building blocks of the matrix-product DFT path (wavephase.scattering.dense)."""

import pytest
import torch

from wavephase.scattering.dense import dft_matrix, padding_matrix, split_modulus
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


def test_split_modulus_value_and_gradients():
    z = torch.randn(4, 3, 6, dtype=torch.complex128, generator=torch.Generator().manual_seed(0))
    parts = torch.cat((z.real, z.imag), dim=-1).requires_grad_(True)
    assert torch.allclose(split_modulus(parts), z.abs())
    assert torch.autograd.gradcheck(split_modulus, (parts,))
    zero = torch.zeros(2, 4, dtype=torch.float64, requires_grad=True)
    split_modulus(zero).sum().backward()
    assert torch.equal(zero.grad, torch.zeros_like(zero))
