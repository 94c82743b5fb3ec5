"""Target fields given by a user: a PNG/JPEG image or a NumPy ``.npy`` array, checked before any synthesis.

A texture model matches the moments of a square, periodic-looking, stationary
field. :func:`load_user_target` refuses what it cannot use with an error that
names the file and the fix (not square, constant, too small for ``J``, NaN or
infinite values, an array of the wrong rank), and leaves stationarity, which a
synthesis can run without, to :func:`wavephase.metrics.stationarity` and a warning.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from wavephase.data.images import load_image
from wavephase.synthesis import default_J
from wavephase.synthesis.gaussian import MIN_SIZE
from wavephase.validation import check_image_shape, check_positive_int

__all__ = ["IMAGE_SUFFIXES", "USER_TARGET_SUFFIXES", "load_user_target"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
USER_TARGET_SUFFIXES = IMAGE_SUFFIXES + (".npy",)


def _read(path: Path) -> np.ndarray:
    if path.suffix.lower() == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as err:
            raise ValueError(f"field={str(path)!r}: cannot read it as a NumPy array ({err}); save the field with "
                             f"numpy.save(path, array) (no pickled objects).") from err
        if arr.dtype.kind not in "biuf":
            raise ValueError(f"field={str(path)!r} holds {arr.dtype} values; save real numbers (float32 or "
                             f"float64).")
        if arr.ndim not in (2, 3):
            raise ValueError(f"field={str(path)!r} has shape {arr.shape}; save one field (M, N) or a stack of "
                             f"fields of one process (n, M, N).")
        return arr.astype(np.float64)
    try:
        return load_image(path).astype(np.float64)
    except ValueError as err:
        raise ValueError(f"field={str(path)!r}: {err}") from err


def load_user_target(path: str | Path, size: int | None = None, J: int | None = None) -> torch.Tensor:
    """Read and check the target field(s) of a synthesis from a PNG/JPEG image or a ``.npy`` file.

    Parameters
    ----------
    path : str or Path
        An image (read as grayscale in ``[0, 1]``) or a ``.npy`` array ``(M, N)`` or ``(n, M, N)``.
    size : int, optional
        Side to resample an image to (Lanczos); a ``.npy`` field must already have it.
        None keeps the file's size.
    J : int, optional
        Scales of the synthesis; each side must be at least ``2**J``. Default:
        :func:`~wavephase.synthesis.default_J` of the size.

    Returns
    -------
    torch.Tensor
        float32 fields.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        For an unsupported suffix, an unreadable file, NaN or infinite values,
        a field that is not square, smaller than ``MIN_SIZE`` or ``2**J``, or constant.

    Shapes
    ------
    -> (n, M, M), n = 1 for an image
    """
    path = Path(path)
    if path.suffix.lower() not in USER_TARGET_SUFFIXES:
        raise ValueError(f"field={str(path)!r}: a user target must be a {'/'.join(USER_TARGET_SUFFIXES)} file.")
    if not path.is_file():
        raise FileNotFoundError(f"field={str(path)!r} does not exist; give the path of a PNG/JPEG or .npy file.")
    arr = _read(path)
    bad = int((~np.isfinite(arr)).sum())
    if bad:
        raise ValueError(f"field={str(path)!r} holds {bad} NaN or infinite value(s); a synthesis needs finite "
                         f"values everywhere: fill them in or crop them out.")
    M, N = arr.shape[-2:]
    if M != N:
        side = min(M, N)
        raise ValueError(f"field={str(path)!r} is {M} x {N}, not square; the synthesis of periodic fields needs "
                         f"a square one: crop it, e.g. to its central {side} x {side} pixels.")
    if size is not None:
        size = check_positive_int(size, "size", minimum=MIN_SIZE)
        if size != M and path.suffix.lower() == ".npy":
            raise ValueError(f"size={size} but field={str(path)!r} is {M} x {M}; omit size or resample the "
                             f"array to {size} x {size} first.")
        if size != M:
            from PIL import Image

            img = Image.fromarray(np.uint8(np.round(arr * 255.0))).resize((size, size), Image.LANCZOS)
            arr = np.asarray(img, dtype=np.float64) / 255.0
            M = size
    if M < MIN_SIZE:
        raise ValueError(f"field={str(path)!r} is {M} x {M}, too small; a synthesis needs at least "
                         f"{MIN_SIZE} x {MIN_SIZE} pixels.")
    J = default_J((M, M)) if J is None else check_positive_int(J, "J")
    check_image_shape((M, M), J, f"the shape of field={str(path)!r}")
    fields = arr[None] if arr.ndim == 2 else arr
    flat = fields.reshape(fields.shape[0], -1)
    spread = flat.max(-1) - flat.min(-1)
    if bool((spread <= 1e-12 * np.maximum(np.abs(flat).max(-1), 1e-300)).any()):
        which = [int(i) for i in np.nonzero(spread <= 1e-12 * np.maximum(np.abs(flat).max(-1), 1e-300))[0]]
        raise ValueError(f"field={str(path)!r}: field(s) {which} are constant; a texture model needs "
                         f"fluctuations to match.")
    return torch.from_numpy(np.ascontiguousarray(fields)).float()
