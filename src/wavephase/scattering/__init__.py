"""Scattering transforms: 2D Morlet scattering and 3D solid-harmonic scattering."""

from wavephase.scattering.scattering2d import Scattering2D

__all__ = ["Scattering2D"]
