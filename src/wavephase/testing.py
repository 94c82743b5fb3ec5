"""Reusable property checks for wavephase operators and entry points (used by the test-suite).

``assert_invariant`` / ``assert_covariant`` check a symmetry of an operator;
``check_operator`` runs the common checks every ``nn.Module`` operator of the
library passes (``tests/test_operators.py`` runs it over all of them): batch
shapes and the empty batch, dtypes and buffers, devices, gradients (finite at
zero, correct by finite differences), and clear errors on bad input.
``adversarial_array``, ``documented_call``, ``assert_finite`` and ``check_call``
(the last two after the first) are the pieces of the property-based tests
(``tests/test_properties*.py``): arrays of any dtype with awkward values, a call
whose only allowed exceptions are the library's documented errors, and a check
that a result holds no NaN or infinity.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from typing import Any, Callable, Sequence

import numpy as np
import torch

from wavephase.exceptions import WavephaseError
from wavephase.validation import check_random_state

__all__ = ["relative_error", "assert_invariant", "assert_covariant", "check_operator", "image_inputs",
           "random_molecule", "random_rotation", "VALUE_KINDS", "adversarial_array", "is_finite_real",
           "documented_call", "check_call", "refused", "assert_finite"]

#: the kinds of values :func:`adversarial_array` makes
VALUE_KINDS = ("normal", "zero", "constant", "huge", "tiny", "nan", "inf")


Inputs = Callable[[tuple[int, ...], torch.dtype, torch.Generator], tuple[torch.Tensor, ...]]


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
    a, b = a.detach(), b.detach()
    denom = b.norm()
    diff = (a - b).norm()
    return float(diff / denom) if denom > 0 else float(diff)


def assert_covariant(op: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                     transform_in: Callable[[torch.Tensor], torch.Tensor],
                     transform_out: Callable[[torch.Tensor], torch.Tensor] | None, rtol: float) -> float:
    """Check ``op(transform_in(x)) ~= transform_out(op(x))`` (invariance when ``transform_out`` is None).

    Parameters
    ----------
    op : callable
        Operator.
    x : torch.Tensor
        Input.
    transform_in : callable
        The symmetry acting on inputs.
    transform_out : callable or None
        Its representation on outputs; None for the identity.
    rtol : float
        Largest relative L2 error accepted.

    Returns
    -------
    float
        The relative error measured.
    """
    expected = op(x) if transform_out is None else transform_out(op(x))
    err = relative_error(op(transform_in(x)), expected)
    what = "invariant" if transform_out is None else "covariant"
    assert err <= rtol, f"not {what}: relative error {err:.3e} > {rtol:.1e}"
    return err


def assert_invariant(op: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                     transform: Callable[[torch.Tensor], torch.Tensor], rtol: float) -> float:
    """Check ``op(transform(x)) ~= op(x)``: :func:`assert_covariant` with the identity on outputs."""
    return assert_covariant(op, x, transform, None, rtol)


def image_inputs(shape: tuple[int, ...]) -> Inputs:
    """Inputs of an operator of one tensor: standard normal values of ``(*batch, *shape)``.

    Parameters
    ----------
    shape : tuple of int
        Shape of one input without batch dimensions, e.g. ``(M, N)``.

    Returns
    -------
    callable
        ``make_inputs(batch, dtype, generator) -> (x,)`` for :func:`check_operator`.
    """
    def make(batch: tuple[int, ...], dtype: torch.dtype, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
        return (torch.randn(*batch, *shape, generator=gen, dtype=dtype),)

    return make


def _flat(out: object) -> list[torch.Tensor]:
    """The tensors of an operator's output (a tensor or a dict of tensors), complex ones as real pairs."""
    values = list(out.values()) if isinstance(out, dict) else [out]
    assert all(isinstance(v, torch.Tensor) for v in values), f"output is not made of tensors: {type(out)}"
    return [torch.view_as_real(v) if v.is_complex() else v for v in values]


def _plain_tensor_attributes(op: torch.nn.Module) -> list[str]:
    """Tensors kept as plain attributes, which ``.to()`` and ``.double()`` would leave behind."""
    return [f"{name}.{key}" if name else key for name, module in op.named_modules()
            for key, value in vars(module).items() if isinstance(value, torch.Tensor)]


def _expect_error(op: torch.nn.Module, inputs: tuple[torch.Tensor, ...], error: type[Exception], what: str) -> None:
    try:
        op(*inputs)
    except error as err:
        assert str(err), f"{error.__name__} without a message for {what}"
    else:
        raise AssertionError(f"{error.__name__} not raised for {what}")


def check_operator(make_op: Callable[[], torch.nn.Module], make_inputs: Inputs, *, random_state: int = 0,
                   gradcheck: bool = True, float32_rtol: float = 1e-4, zero_input: bool = True,
                   bad_input: bool = True) -> None:
    """The common checks every operator of the library passes (see the conventions page).

    1. Batch shapes: inputs with batch ``(2, 3)`` give outputs with leading ``(2, 3)``, equal to
       the outputs of each input alone (batch invariance), and an empty batch ``(0,)`` gives an
       empty output.
    2. Dtypes: float32 in, float32 out; float64 in, float64 out; the two agree to ``float32_rtol``.
       Constants are buffers (no tensor kept as a plain attribute), so ``.double()`` converts them.
    3. Devices: on every available device (the CPU, and CUDA when present) the output lives on
       the input's device.
    4. Gradients: finite at a zero first input; correct by finite differences in float64.
    5. Bad input: an integer or complex first input is a ``TypeError``; NaN, or a first input one
       short in its last dimension, a ``ValueError``; each with a message.

    Parameters
    ----------
    make_op : callable
        ``make_op()`` returns an operator as built by default (float32 parameters and
        buffers); its float64 and device copies are deep copies, with the same parameters.
    make_inputs : callable
        ``make_inputs(batch, dtype, generator)`` returns the operator's arguments with leading
        dimensions ``batch``; the first is the one differentiated (see :func:`image_inputs`).
    random_state : int
        Seed of the inputs.
    gradcheck : bool
        Run ``torch.autograd.gradcheck`` on one input in float64 (keep inputs small).
    float32_rtol : float
        Largest relative difference between float32 and float64 outputs.
    zero_input : bool
        Check the gradient at a zero first input (False where zero is outside the domain).
    bad_input : bool
        Check the refusal of bad first inputs.
    """
    gen = torch.Generator().manual_seed(check_random_state(random_state))
    op = make_op()
    plain = _plain_tensor_attributes(op)
    assert not plain, f"tensors kept as plain attributes (use register_buffer): {plain}"
    op64 = copy.deepcopy(op).double()  # the same parameters, in float64
    x64 = make_inputs((2, 3), torch.float64, gen)
    out64 = _flat(op64(*x64))
    assert all(o.shape[:2] == (2, 3) for o in out64), f"batch dims not kept: {[tuple(o.shape) for o in out64]}"
    assert all(o.dtype == torch.float64 for o in out64), "float64 input did not give float64 output"
    single = _flat(op64(*(x[1, 2] for x in x64)))
    for a, b in zip(single, out64):
        assert relative_error(a, b[1, 2]) < 1e-10, "batched and unbatched outputs differ"
    empty = _flat(op64(*make_inputs((0,), torch.float64, gen)))
    assert all(o.shape[0] == 0 for o in empty), f"an empty batch gave {[tuple(o.shape) for o in empty]}"
    out32 = _flat(op(*(x.float() for x in x64)))
    assert all(o.dtype == torch.float32 for o in out32), "float32 input did not give float32 output"
    for a, b in zip(out32, out64):
        err = relative_error(a.double(), b)
        assert err < float32_rtol, f"float32 and float64 outputs differ by {err:.2e}"
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        outs = _flat(copy.deepcopy(op).to(device)(*(x.float().to(device) for x in x64)))
        assert all(o.device.type == device for o in outs), f"output not on {device}"
    one = [x[0, 0].clone() for x in x64]
    if zero_input:
        zero = torch.zeros_like(one[0], requires_grad=True)
        sum(o.sum() for o in _flat(op64(zero, *one[1:]))).backward()
        assert zero.grad is not None and torch.isfinite(zero.grad).all(), "non-finite gradient at a zero input"
    if gradcheck:
        xg = one[0].requires_grad_(True)

        def fn(x: torch.Tensor) -> torch.Tensor:
            return torch.cat([o.flatten() for o in _flat(op64(x, *one[1:]))])

        assert torch.autograd.gradcheck(fn, (xg,), eps=1e-6, atol=1e-5, rtol=1e-3)
    if bad_input:
        x = one[0].detach().float()
        rest = [r.detach().float() for r in one[1:]]
        _expect_error(op, (x.to(torch.int64), *rest), TypeError, "an integer input")
        _expect_error(op, (x.to(torch.complex64), *rest), TypeError, "a complex input")
        _expect_error(op, (torch.full_like(x, float("nan")), *rest), ValueError, "a NaN input")
        _expect_error(op, (x[..., :-1], *rest), ValueError, "an input one short in its last dimension")


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


def adversarial_array(shape: Sequence[int], dtype: str = "float32", kind: str = "normal",
                      random_state: int = 0) -> np.ndarray:
    """An array of awkward values for property tests.

    Parameters
    ----------
    shape : sequence of int
        Shape (any dimension may be 0).
    dtype : str
        NumPy dtype: floating, integer, ``"bool"`` or complex.
    kind : str
        One of :data:`VALUE_KINDS`: standard normal values, zeros, one constant,
        values near the dtype's largest (``max ** 0.8``) or smallest normal
        (``tiny ** 0.8``) magnitudes, or normal values with one NaN or one
        infinity. Integer and boolean arrays take random values in range for
        every kind but ``"zero"`` and ``"constant"``.
    random_state : int
        Seed.

    Returns
    -------
    numpy.ndarray
        Array of ``shape`` and ``dtype``.
    """
    if kind not in VALUE_KINDS:
        raise ValueError(f"kind must be one of {VALUE_KINDS}, got {kind!r}.")
    rng = np.random.default_rng(check_random_state(random_state))
    shape = tuple(shape)
    dt = np.dtype(dtype)
    if dt.kind == "b":
        return np.zeros(shape, bool) if kind == "zero" else rng.random(shape) < 0.5
    if dt.kind in "iu":
        info = np.iinfo(dt)
        lo, hi = max(int(info.min), -1000), min(int(info.max), 1000)
        if kind in ("zero", "constant"):
            return np.full(shape, 0 if kind == "zero" else int(rng.integers(lo, hi + 1)), dt)
        return rng.integers(lo, hi + 1, shape).astype(dt)
    real = np.finfo(dt)
    values = rng.standard_normal(shape)
    if dt.kind == "c":
        values = values + 1j * rng.standard_normal(shape)
    if kind == "zero":
        values = np.zeros_like(values)
    elif kind == "constant":
        values = np.full_like(values, rng.standard_normal())
    elif kind == "huge":
        values = values * 10.0 ** (0.8 * np.log10(float(real.max)))
    elif kind == "tiny":
        values = values * 10.0 ** (0.8 * np.log10(float(real.tiny)))
    elif values.size:
        values.flat[int(rng.integers(values.size))] = np.nan if kind == "nan" else np.inf * rng.choice([-1, 1])
    return values.astype(dt)


def is_finite_real(*values: Any) -> bool:
    """Whether no array among ``values`` is boolean, complex or holds NaN or infinity (strings count as clean).

    Parameters
    ----------
    *values : array-like or object
        Arrays and tensors are checked; anything else is ignored.

    Returns
    -------
    bool
        True when the dtype policy accepts the arrays' dtypes and none holds NaN or infinity.
    """
    for v in values:
        if isinstance(v, torch.Tensor):
            v = v.detach().cpu().resolve_conj().numpy() if v.dtype != torch.bfloat16 else v.float().numpy()
        if isinstance(v, np.ndarray):
            if v.dtype.kind in "bc" or (v.dtype.kind == "f" and not np.isfinite(v).all()):
                return False
    return True


@dataclasses.dataclass
class _Refused:
    """What :func:`documented_call` returns for a call refused with a documented error."""

    error: Exception


def documented_call(fn: Callable[..., Any], *args: Any, names: Sequence[str], **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, whose only allowed exceptions are the library's documented errors.

    Allowed: the errors of :mod:`wavephase.exceptions`, and ``TypeError`` or ``ValueError``
    with a one-line message that names one of ``names`` (the arguments, as whole words). Any other
    exception propagates; a ``TypeError``/``ValueError`` without a name, or over several
    lines, fails with an ``AssertionError``.

    Parameters
    ----------
    fn : callable
        The entry point.
    *args, **kwargs
        Its arguments.
    names : sequence of str
        Names a refusal may mention (argument names, or words such as ``"shape"``).

    Returns
    -------
    object
        The result, or a refusal whose ``error`` attribute is the exception (see :func:`refused`).
    """
    try:
        return fn(*args, **kwargs)
    except WavephaseError as err:
        message = str(err)
        assert message and "\n" not in message.strip(), f"{type(err).__name__} not in one line: {message!r}"
        return _Refused(err)
    except (TypeError, ValueError) as err:
        message = str(err)
        assert message and "\n" not in message.strip(), f"{type(err).__name__} not in one line: {message!r}"
        assert any(re.search(rf"\b{re.escape(name)}\b", message) for name in names), (
            f"{type(err).__name__} names none of {list(names)}: {message!r}")
        return _Refused(err)


def check_call(fn: Callable[..., Any], *args: Any, names: Sequence[str], strict: bool = True,
               **kwargs: Any) -> Any:
    """:func:`documented_call`, then the result's numbers: finite for finite real input.

    Parameters
    ----------
    fn : callable
        The entry point.
    *args, **kwargs
        Its arguments; the arrays and tensors among them are checked with :func:`is_finite_real`.
    names : sequence of str
        Names a refusal may mention (see :func:`documented_call`).
    strict : bool
        Also require a refusal when an argument holds NaN, infinity, booleans or
        complex numbers (the dtype policy refuses them); False for elementwise maps
        whose domain is complex.

    Returns
    -------
    object
        The result, or a refusal (see :func:`refused`).
    """
    result = documented_call(fn, *args, names=names, **kwargs)
    clean = is_finite_real(*args, *kwargs.values())
    if clean and not refused(result):
        assert_finite(result)
    if strict and not clean:
        assert refused(result), f"non-finite, boolean or complex input gave a result: {result!r}"
    return result


def refused(result: Any) -> bool:
    """Whether ``result`` is the refusal :func:`documented_call` returns for a documented error."""
    return isinstance(result, _Refused)


def assert_finite(result: Any, what: str = "result") -> None:
    """Assert that every number of ``result`` (tensors, arrays, numbers, containers, dataclasses) is finite.

    Parameters
    ----------
    result : object
        Tensors, arrays, numbers, and dicts, lists, tuples or dataclasses of them;
        strings and other objects are skipped.
    what : str
        Name used in the failure message.
    """
    if isinstance(result, torch.Tensor):
        assert bool(torch.isfinite(result.detach()).all()), f"{what} holds NaN or infinity"
    elif isinstance(result, np.ndarray):
        if result.dtype.kind in "fc":
            assert np.isfinite(result).all(), f"{what} holds NaN or infinity"
    elif isinstance(result, (float, np.floating, complex)):
        assert np.isfinite(result), f"{what} = {result}"
    elif isinstance(result, dict):
        for key, value in result.items():
            assert_finite(value, f"{what}[{key!r}]")
    elif isinstance(result, (list, tuple)):
        for i, value in enumerate(result):
            assert_finite(value, f"{what}[{i}]")
    elif dataclasses.is_dataclass(result) and not isinstance(result, type):
        for field in dataclasses.fields(result):
            assert_finite(getattr(result, field.name), f"{what}.{field.name}")
