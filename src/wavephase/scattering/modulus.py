"""The complex modulus with a finite gradient everywhere, and its two halves.

``|z|`` has no derivative at ``z = 0``; the scattering cascade uses the
subgradient 0 there, so every finite input has a finite gradient. The forward
and backward halves are separate functions because the matrix-product backend
fuses them into its own autograd nodes.
"""

from __future__ import annotations

import math

import torch

__all__ = ["grad_over_modulus", "modulus", "modulus_of_parts"]


def grad_over_modulus(grad: torch.Tensor, out: torch.Tensor, buffer: torch.Tensor | None = None) -> torch.Tensor:
    """``grad / max(|z|, sqrt(tiny))``: the factor of ``z`` in the modulus' gradient.

    The floor keeps the gradient finite and of norm at most 1 where ``|z|``
    underflows (it is exact above ``1e-19`` in float32), is 0 at ``z = 0``, and
    unlike a ``where(|z| > 0, ...)`` mask it runs as two vectorised passes.

    Parameters
    ----------
    grad : torch.Tensor
        Gradient with respect to ``|z|``.
    out : torch.Tensor
        ``|z|``, same shape.
    buffer : torch.Tensor, optional
        Contiguous tensor of the same shape to write the result to.

    Returns
    -------
    torch.Tensor
        ``grad / max(out, sqrt(tiny))`` (``buffer`` when given).

    Shapes
    ------
    grad, out: (...) -> (...)
    """
    floor = torch.finfo(out.dtype).tiny ** 0.5
    if buffer is None:
        return grad / out.clamp_min(floor)
    return torch.div(grad, torch.clamp_min(out, floor, out=buffer), out=buffer)


def modulus_of_parts(re: torch.Tensor, im: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """``sqrt(re^2 + im^2)``, the forward pass of the modulus.

    On CPU, three vectorised passes, about 2.5x faster than ``torch.hypot``. Where
    a square overflows (``|z|`` above ~1e19 in float32) the result is recomputed
    with ``hypot``, which does not; squares that underflow only lose accuracy
    below ~1e-19, far under any coefficient's rounding error.

    Parameters
    ----------
    re, im : torch.Tensor
        Real and imaginary parts, same shape and real dtype (any strides).
    out : torch.Tensor, optional
        Contiguous tensor of the same shape to write the result to.

    Returns
    -------
    torch.Tensor
        The modulus, contiguous (``out`` when given).

    Shapes
    ------
    re, im: (...) -> (...)
    """
    if re.device.type != "cpu":
        # Off the CPU (GPUs) both cost one memory pass, and the overflow check would synchronise.
        return torch.hypot(re, im, out=out)
    out = torch.mul(re, re, out=out).addcmul_(im, im).sqrt_()
    if out.numel() and not math.isfinite(out.amax().item()):
        torch.hypot(re, im, out=out)
    return out


class _Modulus(torch.autograd.Function):
    """|z| with gradient z/|z| (0 at z = 0, a valid subgradient); see :func:`grad_over_modulus`."""

    @staticmethod
    def forward(ctx, z: torch.Tensor, out: torch.Tensor | None) -> torch.Tensor:  # type: ignore[override]
        out = modulus_of_parts(z.real, z.imag, out)
        ctx.save_for_backward(z, out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        z, out = ctx.saved_tensors
        return z * grad_over_modulus(grad, out), None


def modulus(z: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """Complex modulus with a finite, well-defined gradient everywhere.

    Parameters
    ----------
    z : torch.Tensor
        Complex tensor.
    out : torch.Tensor, optional
        Contiguous real tensor of ``z``'s shape to write the result to; it is
        saved for the backward pass, so it must not be overwritten before.

    Returns
    -------
    torch.Tensor
        ``|z|``, real. Its gradient is ``z / |z|`` and 0 at ``z = 0``.

    Shapes
    ------
    z: (...) complex -> (...) real
    """
    return _Modulus.apply(z, out)
