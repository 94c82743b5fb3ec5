"""Generators of physical fields: critical Ising spins and 2D turbulence vorticity."""

from wavephase.physics.ising import T_CRITICAL, ising, ising_energy, magnetisation
from wavephase.physics.turbulence import turbulence2d
from wavephase.physics.turbulence_solver import TurbulenceSolver, velocity_from_vorticity

__all__ = [
    "T_CRITICAL",
    "ising",
    "ising_energy",
    "magnetisation",
    "TurbulenceSolver",
    "turbulence2d",
    "velocity_from_vorticity",
]
