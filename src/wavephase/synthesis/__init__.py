"""wavephase.synthesis."""
