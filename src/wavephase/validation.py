"""Input validation shared by every entry point.

One place decides what a well-formed input is, so every operator rejects bad
input with the same kind of message: which argument, what was expected, what
was received and what to do about it.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

__all__ = [
    "check_real_tensor",
    "check_image_shape",
    "check_same_device",
    "check_finite",
    "check_positive_int",
    "as_float_tensor",
]

_FLOAT_DTYPES = (torch.float32, torch.float64)


def check_real_tensor(x: object, name: str, *, min_ndim: int = 0, finite: bool = True) -> torch.Tensor:
    """Check that ``x`` is a real floating tensor (float32 or float64).

    Parameters
    ----------
    x : object
        Candidate tensor.
    name : str
        Argument name used in error messages.
    min_ndim : int
        Minimum number of dimensions.
    finite : bool
        Also reject NaN and infinite entries.

    Returns
    -------
    torch.Tensor
        ``x`` itself.

    Raises
    ------
    TypeError
        If ``x`` is not a tensor or has an integer, boolean or complex dtype.
    ValueError
        If ``x`` has fewer than ``min_ndim`` dimensions or non-finite entries.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor, got {type(x).__name__}; "
            f"convert it with torch.as_tensor({name}, dtype=torch.float32)."
        )
    if x.is_complex():
        raise TypeError(
            f"{name} must be real, got complex dtype {x.dtype}; pass the real part "
            f"({name}.real) or split real and imaginary parts into a batch dimension."
        )
    if x.dtype not in _FLOAT_DTYPES:
        raise TypeError(
            f"{name} must be float32 or float64, got {x.dtype}; cast it with {name}.float() or {name}.double()."
        )
    if x.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimensions, got shape {tuple(x.shape)}.")
    if finite:
        check_finite(x, name)
    return x


def check_finite(x: torch.Tensor, name: str) -> torch.Tensor:
    """Raise ``ValueError`` if ``x`` holds NaN or infinite values.

    Parameters
    ----------
    x : torch.Tensor
        Tensor of any shape.
    name : str
        Argument name used in the error message.

    Returns
    -------
    torch.Tensor
        ``x`` itself.
    """
    # torch.isfinite on an autograd tensor is cheap and does not build a graph.
    if not bool(torch.isfinite(x.detach()).all()):
        n_bad = int((~torch.isfinite(x.detach())).sum())
        raise ValueError(
            f"{name} contains {n_bad} non-finite value(s) (NaN or inf); clean or mask them "
            f"before the transform, e.g. torch.nan_to_num({name})."
        )
    return x


def check_image_shape(shape: Sequence[int], J: int, name: str = "shape") -> tuple[int, int]:
    """Check a 2D image shape against the number of scales ``J``.

    Parameters
    ----------
    shape : sequence of int
        ``(M, N)``.
    J : int
        Number of dyadic scales; each side must be at least ``2**J``.
    name : str
        Argument name used in error messages.

    Returns
    -------
    tuple of int
        ``(M, N)`` as Python ints.
    """
    check_positive_int(J, "J")
    try:
        dims = tuple(int(s) for s in shape)
    except TypeError as err:
        raise TypeError(f"{name} must be a pair of ints (M, N), got {shape!r}.") from err
    if len(dims) != 2:
        raise ValueError(f"{name} must be a pair (M, N), got {shape!r} with {len(dims)} entries.")
    if min(dims) < 2**J:
        raise ValueError(
            f"{name}={dims} is too small for J={J}: each side must be at least 2**J = {2**J}; "
            f"lower J to at most {int(np.floor(np.log2(max(min(dims), 1))))} or pad the image."
        )
    return dims  # type: ignore[return-value]


def check_positive_int(value: object, name: str, minimum: int = 1) -> int:
    """Check that ``value`` is an int no smaller than ``minimum``.

    Parameters
    ----------
    value : object
        Candidate value.
    name : str
        Argument name used in error messages.
    minimum : int
        Smallest accepted value.

    Returns
    -------
    int
        ``value`` as a Python int.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} ({value!r}).")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}.")
    return int(value)


def check_same_device(x: torch.Tensor, reference: torch.Tensor, name: str, owner: str) -> None:
    """Check that ``x`` lives on the same device as the operator's buffers.

    Parameters
    ----------
    x : torch.Tensor
        Input tensor.
    reference : torch.Tensor
        A buffer of the operator.
    name : str
        Argument name used in the error message.
    owner : str
        Operator name used in the error message.
    """
    if x.device != reference.device:
        raise ValueError(
            f"{name} is on {x.device} but {owner} is on {reference.device}; move one of them, "
            f"e.g. {name}.to({str(reference.device)!r}) or {owner}.to({name}.device)."
        )


def as_float_tensor(x: object, name: str, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Convert an array-like of real numbers to a float tensor, with checks.

    Parameters
    ----------
    x : array-like
        NumPy array, tensor or nested sequence of real numbers.
    name : str
        Argument name used in error messages.
    dtype : torch.dtype
        Target dtype for integer input; float input keeps float32/float64.

    Returns
    -------
    torch.Tensor
        Finite float tensor.
    """
    if isinstance(x, torch.Tensor):
        t = x
    else:
        arr = np.asarray(x)
        if arr.dtype == object:
            raise TypeError(f"{name} must be a numeric array, got an object array.")
        if np.iscomplexobj(arr):
            raise TypeError(f"{name} must be real, got complex dtype {arr.dtype}.")
        t = torch.from_numpy(np.ascontiguousarray(arr))
    if t.is_complex():
        raise TypeError(f"{name} must be real, got complex dtype {t.dtype}.")
    if t.dtype not in _FLOAT_DTYPES:
        if t.dtype == torch.bool:
            raise TypeError(f"{name} must be numeric, got bool.")
        t = t.to(dtype)
    return check_finite(t, name)
