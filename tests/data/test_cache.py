"""cache_dir: where the cache lives, and one line naming the variable when it cannot be there."""

from __future__ import annotations

import pytest

from wavephase.data.cache import cache_dir


def test_cache_dir_follows_wavephase_cache_then_xdg(tmp_path, monkeypatch):
    monkeypatch.setenv("WAVEPHASE_CACHE", str(tmp_path / "mine"))
    assert cache_dir("features") == tmp_path / "mine" / "features" and (tmp_path / "mine" / "features").is_dir()
    monkeypatch.delenv("WAVEPHASE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "wavephase"


@pytest.mark.parametrize("variable, value, subdir", [
    ("WAVEPHASE_CACHE", "file", ""),            # the cache is a file
    ("WAVEPHASE_CACHE", "file/below", ""),      # ... or lies under one
    ("WAVEPHASE_CACHE", "cache", "taken"),      # a file where a sub-folder goes
    ("XDG_CACHE_HOME", "file", ""),
])
def test_a_file_in_the_way_is_one_line_naming_the_variable(tmp_path, monkeypatch, variable, value, subdir):
    (tmp_path / "file").write_text("")
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "taken").write_text("")
    monkeypatch.delenv("WAVEPHASE_CACHE", raising=False)
    monkeypatch.setenv(variable, str(tmp_path / value))
    with pytest.raises(ValueError, match=f"from {variable}") as err:
        cache_dir(subdir)
    assert "\n" not in str(err.value) and "point WAVEPHASE_CACHE at a folder" in str(err.value)
