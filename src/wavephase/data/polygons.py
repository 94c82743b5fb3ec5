"""Synthetic data set of random filled convex polygons (the "Polygon5" family).

Each image holds one convex polygon with 3 to 6 vertices (by default), filled
with intensity 1 on a background of 0 and anti-aliased by supersampling: a pixel's
value is the fraction of its ``supersample x supersample`` sub-pixel centres that
fall inside the polygon. Images are generated from a seed, so a data set is fully
described by ``(n, size, min_vertices, max_vertices, random_state)``.

How a polygon is drawn
----------------------
``k`` vertices are placed on a circle at ``k`` sorted random angles (with a minimum
angular gap so that no vertex is degenerate), which makes the polygon convex with
exactly ``k`` vertices. The circle has a random radius between 20% and 42% of the
image side and a random centre that keeps it inside the image; the polygon is then
stretched by a random anisotropic scaling (factors in ``[0.7, 1]``) along a random
direction, which keeps it convex.
"""

from __future__ import annotations

import numpy as np

from wavephase.resources import check_memory
from wavephase.validation import check_positive_int, check_random_state

__all__ = ["make_polygons", "polygon_vertices", "rasterize_polygons"]


def polygon_vertices(
    n: int, *, size: int = 64, min_vertices: int = 3, max_vertices: int = 6, random_state: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Draw vertices of ``n`` random convex polygons, in pixel coordinates.

    Parameters
    ----------
    n : int
        Number of polygons (0 gives empty arrays).
    size : int
        Side of the (square) image the polygons live in.
    min_vertices, max_vertices : int
        Range (inclusive) of the number of vertices, at least 3.
    random_state : int
        Seed of the NumPy generator.

    Returns
    -------
    vertices : numpy.ndarray
        Counter-clockwise vertices, padded by repeating the last one.
    counts : numpy.ndarray
        Number of distinct vertices of each polygon.

    Shapes
    ------
    -> vertices (n, max_vertices, 2) as (row, col); counts (n,)
    """
    n = check_positive_int(n, "n", minimum=0)
    size = check_positive_int(size, "size", minimum=8)
    min_vertices = check_positive_int(min_vertices, "min_vertices", minimum=3)
    max_vertices = check_positive_int(max_vertices, "max_vertices", minimum=3)
    if max_vertices < min_vertices:
        raise ValueError(f"max_vertices={max_vertices} must be >= min_vertices={min_vertices}.")
    check_memory(16.0 * n * max_vertices, f"the vertices of {n} polygon(s) of up to {max_vertices} vertices",
                 fix="lower n or max_vertices", argument=False)
    rng = np.random.default_rng(check_random_state(random_state))
    counts = rng.integers(min_vertices, max_vertices + 1, size=n)
    vertices = np.empty((n, max_vertices, 2))
    for i, k in enumerate(counts):
        # Angles as a random composition of 2*pi with every gap >= 0.35 * (2*pi/k),
        # so no vertex sits almost on the edge joining its neighbours.
        gaps = 0.35 + rng.dirichlet(np.ones(k)) * (k - 0.35 * k)
        angles = rng.uniform(0, 2 * np.pi) + np.cumsum(gaps) * (2 * np.pi / k)
        radius = rng.uniform(0.20, 0.42) * size
        pts = np.stack([np.sin(angles), np.cos(angles)], axis=1) * radius
        # Anisotropic stretch along a random direction (an affine map keeps convexity).
        phi = rng.uniform(0, np.pi)
        rot = np.array([[np.cos(phi), -np.sin(phi)], [np.sin(phi), np.cos(phi)]])
        pts = pts @ rot @ np.diag(rng.uniform(0.7, 1.0, size=2)) @ rot.T
        low, high = pts.min(0), pts.max(0)
        margin = 1.0
        centre = np.array([rng.uniform(margin - low[d], size - margin - high[d]) for d in range(2)])
        pts = pts + centre
        # Orientation: make it counter-clockwise in (x=col, y=row) for the half-plane test.
        x, y = pts[:, 1], pts[:, 0]
        if np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y) < 0:
            pts = pts[::-1]
        vertices[i, :k] = pts
        vertices[i, k:] = pts[-1]
    return vertices, counts


def rasterize_polygons(vertices: np.ndarray, size: int = 64, supersample: int = 4) -> np.ndarray:
    """Fill convex polygons with anti-aliasing by supersampling.

    Parameters
    ----------
    vertices : numpy.ndarray
        Counter-clockwise vertices (row, col) in pixel units, pixel ``(i, j)``
        covering ``[i, i+1) x [j, j+1)``; repeated vertices are allowed.
    size : int
        Side of the output images.
    supersample : int
        Sub-pixels per side used for anti-aliasing.

    Returns
    -------
    numpy.ndarray
        float32 coverage in ``[0, 1]``.

    Shapes
    ------
    vertices: (n, K, 2) -> (n, size, size)
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    if vertices.ndim != 3 or vertices.shape[2] != 2:
        raise ValueError(f"vertices must have shape (n, K, 2), got {vertices.shape}.")
    size = check_positive_int(size, "size")
    s = check_positive_int(supersample, "supersample")
    # the images, the sub-pixel grid (five arrays) and one chunk's edge tests (about four arrays per vertex)
    check_memory(4.0 * len(vertices) * size**2 + 8.0 * (size * s) ** 2 * (5 + 4 * vertices.shape[1]),
                 f"{len(vertices)} polygon image(s) of {size}x{size} supersampled {s} times",
                 fix="lower n, size or supersample", argument=False)
    sub = (np.arange(size * s) + 0.5) / s
    rows, cols = np.meshgrid(sub, sub, indexing="ij")
    y, x = rows.ravel(), cols.ravel()
    out = np.empty((len(vertices), size, size), dtype=np.float32)
    chunk = max(1, 2**22 // (len(y) * vertices.shape[1]))  # bounds peak memory to ~32 MB
    for start in range(0, len(vertices), chunk):
        v = vertices[start : start + chunk]
        y0, x0 = v[:, :, 0], v[:, :, 1]
        y1, x1 = np.roll(y0, -1, axis=1), np.roll(x0, -1, axis=1)
        # Inside a counter-clockwise convex polygon = left of (or on) every edge;
        # a zero-length edge gives a zero cross product and never excludes a point.
        cross = (x1 - x0)[:, :, None] * (y[None, None] - y0[:, :, None]) - (y1 - y0)[:, :, None] * (
            x[None, None] - x0[:, :, None]
        )
        inside = (cross >= 0).all(axis=1).reshape(len(v), size, s, size, s)
        out[start : start + chunk] = inside.mean(axis=(2, 4))
    return out


def make_polygons(
    n: int,
    *,
    size: int = 64,
    min_vertices: int = 3,
    max_vertices: int = 6,
    supersample: int = 4,
    random_state: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Generate a seeded data set of filled, anti-aliased random convex polygons.

    Parameters
    ----------
    n : int
        Number of images (0 gives empty arrays).
    size, min_vertices, max_vertices : int
        Image side (64 as in Angles & Mallat's Polygon5) and the inclusive range of the
        number of vertices, as in :func:`polygon_vertices`.
    supersample : int
        Sub-pixels per side for anti-aliasing.
    random_state : int
        Seed; the same arguments always give the same images.

    Returns
    -------
    images : numpy.ndarray
        float32 images in ``[0, 1]``.
    counts : numpy.ndarray
        Number of vertices of each polygon (usable as a label).

    Shapes
    ------
    -> images (n, size, size); counts (n,)
    """
    vertices, counts = polygon_vertices(
        n, size=size, min_vertices=min_vertices, max_vertices=max_vertices, random_state=random_state
    )
    return rasterize_polygons(vertices, size=size, supersample=supersample), counts
