"""wavephase.physics."""
