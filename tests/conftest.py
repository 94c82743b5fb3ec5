"""Fixtures shared by several test folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch


def _user_cache() -> Path:
    root = os.environ.get("WAVEPHASE_CACHE")
    if root is None:
        root = str(Path(os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache"))) / "wavephase")
    return Path(root)


@pytest.fixture(scope="session", autouse=True)
def _temporary_cache(tmp_path_factory):
    """Every test writes its caches (features, simulations, data sets) to a fresh folder.

    The user's own cache is never read as a result nor written to. Downloaded wheels are the
    one exception: they are linked in when present (the loaders verify their SHA-256 before
    use), so a real-data test does not fetch the same wheel again.
    """
    cache = tmp_path_factory.mktemp("wavephase-cache")
    wheels = _user_cache() / "wheels"
    if wheels.is_dir():
        (cache / "wheels").mkdir()
        for wheel in wheels.glob("*.whl"):
            (cache / "wheels" / wheel.name).symlink_to(wheel)
    previous = os.environ.get("WAVEPHASE_CACHE")
    os.environ["WAVEPHASE_CACHE"] = str(cache)
    yield cache
    if previous is None:
        os.environ.pop("WAVEPHASE_CACHE", None)
    else:
        os.environ["WAVEPHASE_CACHE"] = previous


@pytest.fixture
def one_torch_thread():
    """Run the test with one torch thread, restoring the previous count afterwards.

    Small FFTs gain nothing from threads, and on a shared machine threads thrash.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
