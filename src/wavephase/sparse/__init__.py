"""wavephase.sparse."""
