"""wavephase.models."""
