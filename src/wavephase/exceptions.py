"""The library's own errors.

Argument checks raise the built-in ``TypeError`` and ``ValueError`` (through
:mod:`wavephase.validation`). The errors below name situations that are not a
bad argument: a file that does not hold what it should, a resource guard, an
optional dependency or a device that is missing. Each also derives from the
built-in error a caller would expect, so ``except ValueError`` still catches a
corrupt file. The command line turns every one of them into one line on
stderr and exit code 2.
"""

from __future__ import annotations

__all__ = [
    "WavephaseError",
    "ChecksumError",
    "StaleFileError",
    "ResourceLimitError",
    "MissingDependencyError",
    "DeviceUnavailableError",
    "UnsupportedMoleculeError",
    "OutOfDomainWarning",
]


class WavephaseError(Exception):
    """Base class of the errors defined by wavephase."""


class ChecksumError(WavephaseError, ValueError):
    """A file's content does not match the SHA-256 recorded for it (corrupt or truncated)."""


class StaleFileError(WavephaseError, ValueError):
    """A checkpoint or cache was made from another configuration or other data."""


class ResourceLimitError(WavephaseError, MemoryError):
    """A computation would need more memory than its guard allows."""


class MissingDependencyError(WavephaseError, ImportError):
    """An optional dependency is not installed; the message names the extra that provides it."""


class DeviceUnavailableError(WavephaseError, RuntimeError):
    """The requested torch device does not exist on this machine."""


class UnsupportedMoleculeError(WavephaseError, ValueError):
    """A molecule a fitted model cannot answer for: an element it never saw, or a charged species."""


class OutOfDomainWarning(UserWarning):
    """Predictions for inputs whose invariants lie outside the range seen in training (extrapolation)."""
