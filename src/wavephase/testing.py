"""Reusable property checks for wavephase operators (used by the test-suite).

``assert_invariant`` / ``assert_covariant`` check a symmetry of an operator;
``check_operator`` runs the common checks every ``nn.Module`` operator of the
library must pass: batch shapes, float32/float64 agreement, gradients, finite
gradients at zero, and clear errors on bad input.
"""

from __future__ import annotations

from typing import Callable

import torch

from wavephase.validation import check_random_state

__all__ = ["relative_error", "assert_invariant", "assert_covariant", "check_operator", "random_molecule",
           "random_rotation"]


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """``||a - b|| / ||b||`` (``||a - b||`` when ``b`` is zero).

    Parameters
    ----------
    a, b : torch.Tensor
        Tensors of the same shape.

    Returns
    -------
    float
        Relative L2 error.
    """
    denom = b.norm()
    diff = (a - b).norm()
    return float(diff / denom) if denom > 0 else float(diff)


def assert_invariant(op: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                     transform: Callable[[torch.Tensor], torch.Tensor], rtol: float) -> float:
    """Check ``op(transform(x)) ~= op(x)``.

    Parameters
    ----------
    op : callable
        Operator.
    x : torch.Tensor
        Input.
    transform : callable
        Symmetry acting on inputs.
    rtol : float
        Largest relative L2 error accepted.

    Returns
    -------
    float
        The relative error measured.
    """
    err = relative_error(op(transform(x)), op(x))
    assert err <= rtol, f"not invariant: relative error {err:.3e} > {rtol:.1e}"
    return err


def assert_covariant(op: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                     transform_in: Callable[[torch.Tensor], torch.Tensor],
                     transform_out: Callable[[torch.Tensor], torch.Tensor], rtol: float) -> float:
    """Check ``op(transform_in(x)) ~= transform_out(op(x))``.

    Parameters
    ----------
    op : callable
        Operator.
    x : torch.Tensor
        Input.
    transform_in, transform_out : callable
        The symmetry on inputs and its representation on outputs.
    rtol : float
        Largest relative L2 error accepted.

    Returns
    -------
    float
        The relative error measured.
    """
    err = relative_error(op(transform_in(x)), transform_out(op(x)))
    assert err <= rtol, f"not covariant: relative error {err:.3e} > {rtol:.1e}"
    return err


def check_operator(make_op: Callable[[torch.dtype], torch.nn.Module], input_shape: tuple[int, ...],
                   *, seed: int = 0, gradcheck: bool = True) -> None:
    """Common checks every image operator must pass.

    Parameters
    ----------
    make_op : callable
        ``make_op(dtype)`` returns a fresh operator whose buffers use ``dtype``.
    input_shape : tuple of int
        Shape of one input (without batch dimensions), e.g. ``(M, N)``.
    seed : int
        Random seed.
    gradcheck : bool
        Run ``torch.autograd.gradcheck`` in float64 (keep ``input_shape`` small).
    """
    gen = torch.Generator().manual_seed(seed)
    x64 = torch.randn(2, 3, *input_shape, generator=gen, dtype=torch.float64)
    op64, op32 = make_op(torch.float64), make_op(torch.float32)
    out64 = op64(x64)
    # Any batch shape: (2, 3, ...) == stacked single inputs and == no batch dims.
    assert out64.shape[:2] == (2, 3), f"batch dims not kept: {tuple(out64.shape)}"
    single = op64(x64[1, 2])
    assert relative_error(single, out64[1, 2]) < 1e-10, "batched and unbatched outputs differ"
    # float32 agrees with float64.
    out32 = op32(x64.float())
    assert out32.dtype == torch.float32, f"float32 input gave {out32.dtype}"
    assert relative_error(out32.double(), out64) < 1e-4, "float32 and float64 outputs disagree"
    # Gradients: finite at zero, and correct by finite differences.
    zero = torch.zeros(*input_shape, dtype=torch.float64, requires_grad=True)
    op64(zero).sum().backward()
    assert zero.grad is not None and torch.isfinite(zero.grad).all(), "non-finite gradient at x = 0"
    if gradcheck:
        xg = torch.randn(*input_shape, generator=gen, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(op64, (xg,), eps=1e-6, atol=1e-5, rtol=1e-3)
    # Bad input: integer, complex, NaN, wrong rank.
    bad_inputs = [
        (TypeError, torch.zeros(*input_shape, dtype=torch.int64)),
        (TypeError, torch.zeros(*input_shape, dtype=torch.complex64)),
        (ValueError, torch.full(input_shape, float("nan"))),
        (ValueError, torch.zeros(input_shape[-1])),
    ]
    for error, bad in bad_inputs:
        try:
            op32(bad)
        except error as err:
            assert str(err), "error without a message"
        else:
            raise AssertionError(f"{error.__name__} not raised for input {bad.dtype} {tuple(bad.shape)}")


def random_molecule(n_atoms: int, random_state: int, dtype: torch.dtype = torch.float64
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """QM9-like random molecule: a random tree of bonds 1.0-1.5 angstrom, H/C/N/O.

    Parameters
    ----------
    n_atoms : int
        Number of atoms (the first half heavy atoms, the rest hydrogens).
    random_state : int
        Seed of the generator.
    dtype : torch.dtype
        Output dtype.

    Returns
    -------
    positions : torch.Tensor
        ``(n_atoms, 3)`` angstrom.
    charges : torch.Tensor
        ``(n_atoms,)`` atomic numbers.
    """
    gen = torch.Generator().manual_seed(check_random_state(random_state))
    pos = [torch.zeros(3, dtype=torch.float64)]
    while len(pos) < n_atoms:
        base = pos[int(torch.randint(len(pos), (1,), generator=gen))]
        step = torch.randn(3, generator=gen, dtype=torch.float64)
        cand = base + step / step.norm() * (1.0 + 0.5 * torch.rand(1, generator=gen, dtype=torch.float64))
        if min(float((cand - p).norm()) for p in pos) > 0.95:
            pos.append(cand)
    heavy = torch.tensor([6, 7, 8], dtype=torch.float64)[torch.randint(3, (n_atoms,), generator=gen)]
    z = torch.where(torch.arange(n_atoms) < max(1, n_atoms // 2), heavy, torch.ones(n_atoms, dtype=torch.float64))
    return torch.stack(pos).to(dtype), z


def random_rotation(random_state: int) -> torch.Tensor:
    """Uniformly random proper rotation.

    Parameters
    ----------
    random_state : int
        Seed of the generator.

    Returns
    -------
    torch.Tensor
        ``(3, 3)`` float64 orthogonal matrix with determinant 1.
    """
    gen = torch.Generator().manual_seed(check_random_state(random_state))
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=gen, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))
    if torch.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q
