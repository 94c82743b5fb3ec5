"""wavephase.metrics."""
