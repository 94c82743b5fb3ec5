"""The complex modulus with a finite gradient (wavephase.scattering.modulus)."""

import torch

from wavephase.scattering.modulus import grad_over_modulus, modulus, modulus_of_parts


def test_modulus_is_exact_for_huge_and_tiny_values():
    z = torch.tensor([3e20 + 4e20j, 3e-20 + 4e-20j, 0j, 3 + 4j], dtype=torch.complex64)
    out = modulus(z)
    expected = torch.tensor([5e20, 5e-20, 0.0, 5.0])
    torch.testing.assert_close(out, expected, rtol=1e-6, atol=1e-25)


def test_modulus_gradient_is_z_over_modulus_and_zero_at_zero():
    z = torch.tensor([3 + 4j, 0j, 1e-30 + 0j], dtype=torch.complex128, requires_grad=True)
    modulus(z).sum().backward()
    torch.testing.assert_close(z.grad, torch.tensor([0.6 + 0.8j, 0j, 1 + 0j], dtype=torch.complex128))
    w = torch.randn(5, dtype=torch.complex128, generator=torch.Generator().manual_seed(0), requires_grad=True)
    assert torch.autograd.gradcheck(modulus, (w,))


def test_modulus_writes_into_out():
    z = torch.randn(4, 3, dtype=torch.complex64, generator=torch.Generator().manual_seed(1))
    buffer = torch.empty(4, 3)
    assert modulus(z, out=buffer).data_ptr() == buffer.data_ptr()
    torch.testing.assert_close(buffer, z.abs())
    assert modulus_of_parts(z.real, z.imag).is_contiguous()


def test_grad_over_modulus_is_bounded_where_the_modulus_underflows():
    out = torch.tensor([0.0, 1e-40, 2.0])
    grad = torch.ones(3)
    scale = grad_over_modulus(grad, out)
    assert torch.isfinite(scale).all() and scale[2] == 0.5
    buffer = torch.empty(3)
    assert grad_over_modulus(grad, out, buffer) is buffer
    torch.testing.assert_close(buffer, scale)
