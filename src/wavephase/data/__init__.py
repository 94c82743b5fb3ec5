"""wavephase.data."""

from wavephase.data.polygons import make_polygons

__all__ = ["make_polygons"]
