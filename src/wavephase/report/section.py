"""What a section of the report is."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

__all__ = ["Section"]


@dataclass(frozen=True)
class Section:
    """One part of the report.

    Attributes
    ----------
    key : str
        Identifier (also the sub-directory of its files).
    title : str
        Heading on the page.
    run : callable
        ``run(section_dir, quick) -> dict`` with ``"table"``, ``"figures"`` and ``"settings"``.
    """

    key: str
    title: str
    run: Callable[[Path, bool], dict[str, Any]]
