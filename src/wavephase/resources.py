"""Resource guards: estimate what a computation will allocate and refuse it past a limit, before allocating.

Work whose memory grows with the geometry of its input (3D grids of molecules,
moment statistics of large fields, syntheses of many samples, simulations,
feature stores read back, augmented copies of data sets) calls
:func:`check_memory` with its estimate before it allocates anything. Past the
limit it raises :class:`~wavephase.exceptions.ResourceLimitError`, whose one
line names what needs the memory, how much, the limit and where the limit comes
from, and the setting that raises it.

The limit is, in order of precedence, the ``memory_limit`` argument of the
operator or function, the environment variable ``WAVEPHASE_MEMORY_LIMIT``, or a
quarter of the memory available on the device (free GPU memory for CUDA,
``MemAvailable`` of ``/proc/meminfo`` on Linux for the CPU). Limits are bytes,
or strings such as ``"8GB"``, ``"512MiB"``.
"""

from __future__ import annotations

import os
import re

import torch

from wavephase.exceptions import ResourceLimitError

__all__ = ["MEMORY_LIMIT_ENV", "check_memory", "parse_memory_limit"]

MEMORY_LIMIT_ENV = "WAVEPHASE_MEMORY_LIMIT"
_DEFAULT_FRACTION = 0.25
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_PATTERN = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([a-z]*)\s*$")


def parse_memory_limit(value: object, name: str = "memory_limit") -> int | None:
    """A memory limit in bytes from a number of bytes or a string with a unit (``"8GB"``).

    Parameters
    ----------
    value : int, float, str or None
        The limit; None means "use the default".
    name : str
        Argument name used in error messages.

    Returns
    -------
    int or None
        Bytes, or None.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number of bytes or a string such as '8GB', got {value!r}.")
    if isinstance(value, (int, float)):
        number, unit = float(value), ""
    elif isinstance(value, str) and (match := _PATTERN.match(value.lower())) and match.group(2) in _UNITS:
        number, unit = float(match.group(1)), match.group(2)
    else:
        raise ValueError(f"{name} must be a number of bytes or a string such as '8GB' or '512MiB', got {value!r}.")
    if not number > 0 or number == float("inf"):
        raise ValueError(f"{name} must be a positive finite amount of memory, got {value!r}.")
    return int(number * _UNITS[unit])


def _available(device: torch.device) -> int | None:
    """Bytes available on ``device`` now, or None when it cannot be told."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type != "cpu":
        return None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def _limit(device: torch.device, override: int | None) -> tuple[int | None, str]:
    """The limit in bytes and where it comes from."""
    if override is not None:
        return override, f"memory_limit={_gb(override)}"
    env = os.environ.get(MEMORY_LIMIT_ENV)
    if env:
        return parse_memory_limit(env, MEMORY_LIMIT_ENV), f"{MEMORY_LIMIT_ENV}={env}"
    available = _available(device)
    if available is None:
        return None, "no limit"
    return int(available * _DEFAULT_FRACTION), f"a quarter of the {_gb(available)} available on {device}"


def _gb(n: float) -> str:
    """``n`` bytes in the largest decimal unit that keeps the number at least 1."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.3g} B"


def check_memory(n_bytes: float, what: str, device: torch.device | str | None = None, override: int | None = None,
                 fix: str = "use a smaller input", *, argument: bool = True) -> None:
    """Raise :class:`~wavephase.exceptions.ResourceLimitError` if ``n_bytes`` exceeds the memory limit.

    Parameters
    ----------
    n_bytes : float
        Estimated allocation (may be infinite for absurd inputs).
    what : str
        What needs the memory, e.g. ``"the 3D grid of a molecule 1e4 angstrom wide"``.
    device : torch.device or str, optional
        Where it would be allocated (the CPU by default).
    override : int or None
        The caller's own limit in bytes (its ``memory_limit``), or None for the default.
    fix : str
        What else lowers the need, e.g. ``"lower chunk_size"``.
    argument : bool
        The caller takes a ``memory_limit`` argument, which the message then names
        besides the environment variable.

    Raises
    ------
    ResourceLimitError
        Past the limit, in one line.
    """
    device = torch.device("cpu" if device is None else device)
    limit, source = _limit(device, override)
    if limit is None or n_bytes <= limit:
        return
    setting = f"memory_limit= or the environment variable {MEMORY_LIMIT_ENV}" if argument else \
        f"the environment variable {MEMORY_LIMIT_ENV}"
    raise ResourceLimitError(
        f"{what} needs about {_gb(n_bytes)}, over the memory limit of {_gb(limit)} ({source}); {fix}, or raise "
        f"the limit with {setting} (e.g. {MEMORY_LIMIT_ENV}=32GB).")
