"""The phase-harmonic moment families as functions: lattices and their links to phase harmonics."""

from __future__ import annotations

import torch

from wavephase.harmonics import phase_harmonic
from wavephase.harmonics.families import WaveletGrids, cross_scale_moments, increment_moments, shift_lattice


def test_shift_lattice_is_a_half_disc():
    assert shift_lattice(0) == [(0, 0)]
    assert shift_lattice(1) == [(0, 0), (0, 1), (1, 0)]
    lattice = shift_lattice(2)
    assert len(lattice) == 1 + 6 and len(set(lattice)) == len(lattice)
    # one of each +-n pair, all within the radius
    assert all((-a, -b) not in lattice for a, b in lattice[1:]) and all(a * a + b * b <= 4 for a, b in lattice)


def test_cphase_is_a_phase_harmonic_correlation():
    # Cphase = <[z_j1]^(2^(j2 - j1)) conj z_j2> with [z]^k = |z| e^(i k arg z)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 16, 16, generator=g, dtype=torch.float64)
    psi = torch.rand(3, 2, 16, 16, generator=g, dtype=torch.float64)
    grids = WaveletGrids(torch.fft.fft2(x), psi)
    _, _, cph = cross_scale_moments(grids, [(0, 2)], lambda j: 1)
    z0, z2 = grids.z[0], grids.z[2]
    expected = (phase_harmonic(z0, 4) * z2.conj()).mean((-2, -1))
    torch.testing.assert_close(cph[0], expected)


def test_increment_moments_without_shifts_are_empty():
    assert increment_moments(torch.zeros(3, 8, 8), []).shape == (3, 0)
