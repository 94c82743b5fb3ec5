"""The linear steps as matrices (wavephase.scattering.matrices)."""

import pytest
import torch

from wavephase.scattering.matrices import dft_matrix, lowpass_matrices, padding_matrix, reflect_indices


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



def test_reflect_indices_do_not_repeat_the_edge():
    assert reflect_indices(4, 3, 2).tolist() == [3, 2, 1, 0, 1, 2, 3, 2, 1]
    assert reflect_indices(1, 2, 1).tolist() == [0, 0, 0, 0]


def test_lowpass_matrices_convolve_subsample_and_crop():
    g = torch.Generator().manual_seed(7)
    u = torch.randn(24, 16, dtype=torch.float64, generator=g)
    # an even, non-separable low-pass: two SVD terms
    w1, w2 = torch.fft.fftfreq(24, dtype=torch.float64), torch.fft.fftfreq(16, dtype=torch.float64)
    phi = torch.exp(-30 * (w1[:, None] ** 2 + w2[None, :] ** 2)) + 0.5 * torch.exp(-80 * w1[:, None] ** 2
                                                                                    - 10 * w2[None, :] ** 2)
    a, b = lowpass_matrices(phi, 4)
    assert a.shape == (2, 24, 4) and b.shape == (2, 16, 2)
    expected = torch.fft.ifft2(torch.fft.fft2(u) * phi).real[::4, ::4][1:-1, 1:-1]
    torch.testing.assert_close(sum(a[r].T @ u @ b[r] for r in range(2)), expected, rtol=1e-10, atol=1e-12)
