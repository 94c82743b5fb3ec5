"""Input validation shared by every entry point.

One place decides what a well-formed input is, so every operator rejects bad
input with the same kind of message: which argument, what was expected, what
was received and what to do about it.

The dtype policy (also on the conventions page of the docs):

* **Operators** (``nn.Module``) compute in the dtype of their input, so they take
  float32 or float64 tensors only (:func:`check_real_tensor`); an integer,
  boolean or complex tensor is refused with a ``TypeError`` that says how to cast.
* **Estimators and functions that take array-likes** (NumPy arrays, lists,
  tensors) convert real numeric input to float32, as scikit-learn converts to
  float: integers (e.g. ``uint8`` images, taken as they are, not rescaled) and
  float16 become float32, float64 stays float64 (:func:`as_float_array`,
  :func:`check_images`). Boolean, complex and object arrays are refused.
* Everywhere, NaN and infinite values are refused with a ``ValueError``.
* Seeds are called ``random_state`` (:func:`check_random_state`); devices are
  chosen with ``device`` (:func:`check_device`).
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import torch

from wavephase.exceptions import DeviceUnavailableError

__all__ = [
    "as_float_array",
    "check_device",
    "check_images",
    "check_labels",
    "check_random_state",
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
    values = x.detach()  # no graph
    # A sum is finite only if every term is (NaN and inf propagate through it), and it makes no temporary the
    # size of x: torch.isfinite(x).all() makes three (0.47 ms per call on case (a)'s 256 x 28 x 28 images,
    # against 0.05 ms for the sum). Only a sum that overflowed, or a real NaN or inf, takes the elementwise check.
    if not bool(torch.isfinite(values.sum())) and not bool(torch.isfinite(values).all()):
        n_bad = int((~torch.isfinite(values)).sum())
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


def _numeric_array(x: object, name: str) -> np.ndarray:
    """``np.asarray(x)``, refusing ragged sequences, objects and strings by name."""
    try:
        arr = np.asarray(x)
    except ValueError as err:  # ragged nested sequences
        raise ValueError(f"{name} must be a rectangular array of numbers ({err}).") from None
    if arr.dtype == object or arr.dtype.kind in "USV":
        raise TypeError(f"{name} must be a numeric array, got dtype {arr.dtype}.")
    return arr


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
    t = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(_numeric_array(x, name)))
    if t.is_complex():
        raise TypeError(f"{name} must be real, got complex dtype {t.dtype}; pass {name}.real.")
    if t.dtype not in _FLOAT_DTYPES:
        if t.dtype == torch.bool:
            raise TypeError(f"{name} must be numeric, got bool.")
        t = t.to(dtype)
    return check_finite(t, name)


def as_float_array(x: object, name: str) -> np.ndarray:
    """Convert an array-like of real numbers to a finite float32 or float64 NumPy array.

    Parameters
    ----------
    x : array-like
        Same inputs as :func:`as_float_tensor`; a tensor is detached and copied to the CPU.
    name : str
        Argument name used in error messages.

    Returns
    -------
    numpy.ndarray
        float64 input stays float64; other numeric input becomes float32.

    Shapes
    ------
    x: (...) -> (...)
    """
    arr = _numeric_array(x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x, name)
    if arr.dtype.kind == "b":
        raise TypeError(f"{name} must be numeric, got bool; convert it with {name}.astype(np.float32).")
    if arr.dtype.kind == "c":
        raise TypeError(f"{name} must be real, got complex dtype {arr.dtype}; pass {name}.real.")
    if arr.dtype != np.float64:
        arr = arr.astype(np.float32, copy=False)
    if arr.size and not np.isfinite(arr).all():
        raise ValueError(f"{name} contains {int((~np.isfinite(arr)).sum())} non-finite value(s) (NaN or inf); "
                         f"clean or mask them first, e.g. np.nan_to_num({name}).")
    return arr


def check_images(x: object, name: str = "X", *, allow_single: bool = False) -> np.ndarray:
    """Check a stack of 2D images ``(n, M, N)`` (see the module's dtype policy).

    Parameters
    ----------
    x : array-like
        Images.
    name : str
        Argument name used in error messages.
    allow_single : bool
        Accept one image ``(M, N)`` and return it as ``(1, M, N)``.

    Returns
    -------
    numpy.ndarray
        C-contiguous float32 or float64 array; ``n`` may be 0.

    Shapes
    ------
    x: (n, M, N) -> (n, M, N)
    """
    arr = as_float_array(x, name)
    if allow_single and arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        expected = "(n, M, N) or (M, N)" if allow_single else "(n, M, N)"
        raise ValueError(f"{name} must be a stack of images of shape {expected}, got shape {arr.shape}; "
                         f"add a batch axis with {name}[None] or reshape flat images with {name}.reshape(n, M, N).")
    return np.ascontiguousarray(arr)


def check_labels(y: object, n: int, name: str = "y", *, min_classes: int = 2) -> np.ndarray:
    """Check class labels for ``n`` samples, as scikit-learn's classifiers take them.

    Parameters
    ----------
    y : array-like
        Labels: integers, strings, booleans, or floats with integer values. A column
        vector ``(n, 1)`` is raveled with a ``DataConversionWarning``.
    n : int
        Number of samples they label.
    name : str
        Argument name used in error messages.
    min_classes : int
        Fewest distinct classes accepted.

    Returns
    -------
    numpy.ndarray
        The labels, 1-D, in their own dtype.

    Shapes
    ------
    y: (n,) -> (n,)
    """
    arr = np.asarray(y.detach().cpu() if isinstance(y, torch.Tensor) else y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        # Imported here: scikit-learn takes seconds to import, and every command line imports this module.
        from sklearn.exceptions import DataConversionWarning

        warnings.warn(f"A column-vector y was passed when a 1d array was expected ({name}); it is raveled.",
                      DataConversionWarning, stacklevel=2)
        arr = arr.ravel()
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of class labels, got shape {arr.shape}.")
    if len(arr) != n:
        raise ValueError(f"{name} has {len(arr)} labels but X has {n} samples.")
    if arr.dtype == object:
        arr = arr.astype(str) if all(isinstance(v, str) for v in arr) else arr
    if arr.dtype.kind in "fc":
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} contains NaN or infinite labels.")
        if arr.dtype.kind == "c" or not np.array_equal(arr, np.round(arr.real)):
            raise ValueError(f"Unknown label type: {name} holds continuous values; a classifier needs class labels "
                             f"(integers or strings), e.g. np.round({name}).astype(int) for rounded values.")
    elif arr.dtype.kind not in "iubUS":
        raise ValueError(f"Unknown label type: {name} must hold integers, strings or booleans, got dtype {arr.dtype}.")
    n_classes = len(np.unique(arr))
    if n_classes < min_classes:
        raise ValueError(f"{name} has only {n_classes} class; a classifier needs at least {min_classes} classes.")
    return arr


def check_random_state(random_state: object, name: str = "random_state") -> int:
    """Check a seed: the one way randomness is chosen across the library.

    Parameters
    ----------
    random_state : int
        Non-negative seed; every random draw of the call derives from it, so the
        same seed gives the same result.
    name : str
        Argument name used in error messages.

    Returns
    -------
    int
        The seed as a Python int.
    """
    if isinstance(random_state, bool) or not isinstance(random_state, (int, np.integer)):
        raise TypeError(f"{name} must be a non-negative int seed, got {type(random_state).__name__} "
                        f"({random_state!r}).")
    if not 0 <= random_state < 2**63:
        raise ValueError(f"{name} must be a non-negative int below 2**63, got {random_state}.")
    return int(random_state)


def check_device(device: object, name: str = "device") -> torch.device:
    """Resolve a device: the one way a device is chosen across the library.

    Parameters
    ----------
    device : str, torch.device or None
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...; None means the CPU.
    name : str
        Argument name used in error messages.

    Returns
    -------
    torch.device
        A device that exists on this machine.

    Raises
    ------
    DeviceUnavailableError
        For a CUDA device on a machine without one (or without that index).
    """
    if device is None:
        return torch.device("cpu")
    try:
        dev = torch.device(device)  # type: ignore[arg-type]
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"{name}={device!r} is not a torch device; use 'cpu' or 'cuda' ({err}).") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise DeviceUnavailableError(f"{name}={device!r} asks for a CUDA GPU, but torch sees none on this "
                                         f"machine; use device='cpu'.")
        if dev.index is not None and dev.index >= count:
            raise DeviceUnavailableError(f"{name}={device!r}: this machine has {count} CUDA device(s), "
                                         f"numbered from 0.")
    elif dev.type not in ("cpu", "mps", "meta"):
        raise ValueError(f"{name}={device!r}: wavephase runs on 'cpu' or 'cuda' devices.")
    return dev
