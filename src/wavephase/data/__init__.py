"""wavephase.data."""
