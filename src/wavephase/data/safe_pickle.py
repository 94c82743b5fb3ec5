"""A restricted unpickler that admits only numpy array reconstruction.

Plain :mod:`pickle` runs any callable a file names, so loading a pickle from the
network is running code from the network. Data sets shipped as pickles of
numpy arrays only ever need three globals: the array reconstructor, the array
type and the dtype type. Everything else is refused before it is called.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

__all__ = ["UnsafePickleError", "RestrictedUnpickler", "safe_loads"]

# (module, name) pairs a pickle of plain numpy arrays needs; numpy 2 moved
# ``numpy.core`` to ``numpy._core`` and old pickles still name the former.
_ALLOWED: frozenset[tuple[str, str]] = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }
)


class UnsafePickleError(pickle.UnpicklingError, ValueError):
    """A pickle names a global outside the numpy-array allow-list."""


def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    # Protocol-2 pickles written by Python 3 store ``bytes`` (the raw array
    # buffers) as ``_codecs.encode(text, "latin1")``; this admits exactly that
    # conversion and nothing else ``_codecs.encode`` could be asked to do.
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError("refusing _codecs.encode with anything but (str, 'latin1').")
    return text.encode("latin1")


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler whose ``find_class`` admits only numpy array reconstruction.

    Parameters
    ----------
    file : binary file
        Pickle stream.
    encoding : str
        Passed to :class:`pickle.Unpickler`; ``"latin1"`` reads Python 2 pickles
        of numpy arrays byte-exactly.
    """

    def __init__(self, file: io.BufferedIOBase | io.BytesIO, *, encoding: str = "latin1") -> None:
        super().__init__(file, encoding=encoding)

    def find_class(self, module: str, name: str) -> Any:
        """Resolve a global only if it is on the numpy-array allow-list."""
        if (module, name) == ("_codecs", "encode"):
            return _latin1_bytes
        if (module, name) not in _ALLOWED:
            raise UnsafePickleError(
                f"refusing to unpickle global {module}.{name}: only numpy arrays are accepted "
                f"(allowed: {sorted('.'.join(p) for p in _ALLOWED)}). The file is not a plain "
                f"array pickle; do not load it."
            )
        if module.startswith("numpy.core"):
            # numpy >= 2 renamed ``numpy.core`` to ``numpy._core``; importing the
            # new name avoids the deprecation shim.
            try:
                return super().find_class("numpy._core" + module[len("numpy.core"):], name)
            except ModuleNotFoundError:
                pass
        if module.startswith("numpy._core"):
            try:
                return super().find_class(module, name)
            except ModuleNotFoundError:  # numpy < 2
                return super().find_class("numpy.core" + module[len("numpy._core"):], name)
        return super().find_class(module, name)

    def persistent_load(self, pid: Any) -> Any:
        """Refuse persistent ids: array pickles never use them."""
        raise UnsafePickleError("refusing to unpickle a persistent id: only numpy arrays are accepted.")


def safe_loads(data: bytes, *, encoding: str = "latin1") -> Any:
    """Unpickle ``data`` admitting only numpy arrays, tuples, lists, dicts and scalars.

    Parameters
    ----------
    data : bytes
        Pickle content.
    encoding : str
        Encoding of Python 2 ``str`` objects.

    Returns
    -------
    object
        The unpickled structure.

    Raises
    ------
    UnsafePickleError
        If the pickle names any callable other than numpy's array reconstruction.
    ValueError
        If the data is not a valid pickle (truncated or corrupt).
    """
    try:
        return RestrictedUnpickler(io.BytesIO(data), encoding=encoding).load()
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, AttributeError, TypeError, IndexError) as err:
        raise ValueError(f"not a valid array pickle (truncated or corrupt): {err}") from err
