"""Real sample images that ship with installed packages (no download needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["sample_image", "load_image"]

# Photographs and terrain maps bundled with matplotlib's sample data.
_SAMPLES = {
    "grace_hopper": "grace_hopper.jpg",
    "terrain": "jacksboro_fault_dem.npz",
}


def load_image(path: str | Path, size: int | None = None) -> np.ndarray:
    """Read an image file as a grayscale float array in ``[0, 1]``.

    Parameters
    ----------
    path : str or Path
        PNG/JPEG file (any format Pillow reads).
    size : int, optional
        Centre-crop to a square and resize to ``size x size``.

    Returns
    -------
    numpy.ndarray
        float32 image.

    Shapes
    ------
    -> (M, N), or (size, size)
    """
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file {path} does not exist.")
    try:
        img = Image.open(path).convert("L")
    except Exception as err:  # Pillow raises several types for unreadable files
        raise ValueError(f"cannot read {path} as an image ({err}).") from err
    if size is not None:
        side = min(img.size)
        left, top = (img.size[0] - side) // 2, (img.size[1] - side) // 2
        img = img.crop((left, top, left + side, top + side)).resize((size, size), Image.LANCZOS)
    return np.asarray(img, dtype=np.float32) / 255.0


def sample_image(name: str = "grace_hopper", size: int = 256) -> np.ndarray:
    """A real image from the sample data bundled with matplotlib.

    Parameters
    ----------
    name : {"grace_hopper", "terrain"}
        ``"grace_hopper"``: a photograph; ``"terrain"``: a digital elevation map.
    size : int
        Output side length (centre crop, resampled).

    Returns
    -------
    numpy.ndarray
        float32 image scaled to ``[0, 1]``.

    Shapes
    ------
    -> (size, size)
    """
    import matplotlib

    if name not in _SAMPLES:
        raise ValueError(f"unknown sample image {name!r}; choose one of {sorted(_SAMPLES)}.")
    path = Path(matplotlib.get_data_path()) / "sample_data" / _SAMPLES[name]
    if name == "terrain":
        from PIL import Image

        with np.load(path, allow_pickle=False) as data:
            z = data["elevation"].astype(np.float64)
        side = min(z.shape)
        z = z[:side, :side]
        z = (z - z.min()) / max(z.max() - z.min(), 1e-12)
        img = Image.fromarray((z * 65535).astype(np.uint16).astype(np.int32)).resize((size, size), Image.LANCZOS)
        return (np.asarray(img, dtype=np.float32) / 65535.0).clip(0, 1)
    return load_image(path, size)
