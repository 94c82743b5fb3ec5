"""The phase-harmonic moment families as functions: lattices and their links to phase harmonics."""

from __future__ import annotations

import pytest
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


def test_quantile_moments_are_block_means_of_the_sorted_values():
    from wavephase.harmonics.families import quantile_moments

    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 8, 8, generator=g, dtype=torch.float64)
    q = quantile_moments(x, None, 4)
    v = (x - x.mean((-2, -1), keepdim=True)).reshape(2, -1).sort(-1).values
    torch.testing.assert_close(q, v.reshape(2, 4, 16).mean(-1))
    # invariant to any permutation of the pixels, blind to everything but the histogram
    perm = torch.randperm(64, generator=g)
    torch.testing.assert_close(quantile_moments(x.reshape(2, -1)[:, perm].reshape(2, 8, 8), None, 4), q)
    # blocks of unequal size when they do not divide the pixels; the mean of the blocks is kept
    q7 = quantile_moments(x, torch.tensor(0.0, dtype=torch.float64), 7)
    assert q7.shape == (2, 7) and bool((q7.diff(dim=-1) >= 0).all())
    counts = torch.bincount(torch.arange(64) * 7 // 64).double()
    torch.testing.assert_close((q7 * counts).sum(-1) / 64, x.mean((-2, -1)))
    assert quantile_moments(x, None, 0).shape == (2, 0)


def test_quantile_family_separates_spins_from_grey_fields():
    from wavephase.harmonics import PhaseHarmonicStatistics

    g = torch.Generator().manual_seed(1)
    spins = torch.sign(torch.randn(1, 16, 16, generator=g, dtype=torch.float64))
    grey = spins * 0.6 + 0.4 * torch.randn(1, 16, 16, generator=g, dtype=torch.float64)
    grey = grey / grey.std() * spins.std()
    stats = PhaseHarmonicStatistics((16, 16), 2, 4, quantiles=16, dtype=torch.float64).set_reference(spins)
    q_ref = stats.reference_moments["Q"]
    assert q_ref.shape == (16,)
    torch.testing.assert_close(stats(spins)["Q"][0], q_ref)
    assert float((stats(grey)["Q"][0] - q_ref).abs().max()) > 0.3
    with pytest.raises(ValueError, match="quantile_weight"):
        PhaseHarmonicStatistics((16, 16), 2, 4, quantiles=4, quantile_weight=0.0)
    with pytest.raises(ValueError, match="quantiles"):
        PhaseHarmonicStatistics((16, 16), 2, 4, quantiles=1000)
