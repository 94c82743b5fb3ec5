"""wavephase.harmonics."""
