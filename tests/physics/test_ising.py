import itertools
import math

import numpy as np
import pytest
import torch
from scipy.special import ellipk

from wavephase.physics import T_CRITICAL, ising, ising_energy, magnetisation


def _exact_energy_per_spin(L: int, T: float) -> float:
    # Brute-force Boltzmann average over all 2^(L*L) states of a periodic L x L lattice.
    n = L * L
    states = np.array(list(itertools.product([-1, 1], repeat=n)), dtype=np.float64).reshape(-1, L, L)
    e = -(states * np.roll(states, -1, 2) + states * np.roll(states, -1, 1)).sum(axis=(1, 2))
    w = np.exp(-(e - e.min()) / T)
    return float((w * e).sum() / w.sum()) / n


def test_critical_temperature_is_onsager():
    assert T_CRITICAL == pytest.approx(2 / math.log(1 + math.sqrt(2)))
    assert T_CRITICAL == pytest.approx(2.269185, abs=1e-6)


def test_energy_and_magnetisation_of_simple_fields():
    up = torch.ones(3, 8, 8)
    checker = (-1.0) ** (torch.arange(8)[:, None] + torch.arange(8)[None, :]).float()
    torch.testing.assert_close(ising_energy(up), torch.full((3,), -2.0, dtype=torch.float64))
    torch.testing.assert_close(ising_energy(checker), torch.tensor([2.0], dtype=torch.float64))
    torch.testing.assert_close(magnetisation(-up), torch.full((3,), -1.0, dtype=torch.float64))
    assert float(magnetisation(checker)) == 0.0
    # numpy input and a single field are accepted
    assert ising_energy(np.ones((4, 4))).shape == (1,)


def test_swendsen_wang_matches_exact_enumeration_on_4x4():
    # 2^16 states: the exact mean energy checks detailed balance of the cluster moves.
    T = 2.5
    exact = _exact_energy_per_spin(4, T)
    x = ising(4, 4000, temperature=T, random_state=1, n_equilibrate=20, n_between=2, progress=False)
    e = ising_energy(x).numpy()
    # samples are nearly independent at this size; 5 standard errors
    assert abs(e.mean() - exact) < 5 * e.std() / math.sqrt(e.size), (e.mean(), exact)


def test_energy_at_critical_point_matches_onsager():
    # Onsager: u(T_c) = -sqrt(2) in the thermodynamic limit. The finite-size shift at L=64
    # is of order 0.01; the standard error of the mean over 64 samples is ~0.006
    # (16 chains, 4 samples each, n_between=26 sweeps >> the SW autocorrelation time).
    x = ising(64, 64, random_state=0, progress=False)
    assert x.shape == (64, 64, 64) and x.dtype == torch.float32
    assert set(torch.unique(x).tolist()) == {-1.0, 1.0}
    e = ising_energy(x)
    assert abs(float(e.mean()) + math.sqrt(2)) < 0.03


def test_low_temperature_is_ordered_and_high_temperature_is_not():
    T = 1.5
    x = ising(32, 16, temperature=T, random_state=0, progress=False)
    # Onsager–Yang spontaneous magnetisation; finite-size effects are tiny far below T_c.
    m_exact = (1 - math.sinh(2 / T) ** -4) ** 0.125
    m = magnetisation(x).abs()
    assert abs(float(m.mean()) - m_exact) < 0.01
    x = ising(64, 16, temperature=5.0, random_state=0, progress=False)
    assert float(magnetisation(x).abs().mean()) < 0.05


def _onsager_energy(T: float) -> float:
    # Exact energy per spin of the infinite square lattice (Onsager 1944).
    b = 1 / T
    k = 2 * math.sinh(2 * b) / math.cosh(2 * b) ** 2
    return -1 / math.tanh(2 * b) * (1 + 2 / math.pi * (2 * math.tanh(2 * b) ** 2 - 1) * ellipk(k * k))


@pytest.mark.parametrize("T", [1.5, 3.0, 5.0])
def test_energy_away_from_critical_point_matches_onsager(T):
    # Away from T_c the correlation length is a few sites, so L=48 is the infinite lattice
    # to well below the sampling error; 32 independent chains, 4.5 standard errors.
    e = ising_energy(ising(48, 32, temperature=T, random_state=2, n_chains=32, progress=False))
    err = float(e.std()) / math.sqrt(e.numel())
    assert abs(float(e.mean()) - _onsager_energy(T)) < 4.5 * err + 1e-3


def test_seeding_is_reproducible():
    a = ising(16, 5, random_state=3, n_equilibrate=10, n_between=2, progress=False)
    b = ising(16, 5, random_state=3, n_equilibrate=10, n_between=2, progress=False)
    c = ising(16, 5, random_state=4, n_equilibrate=10, n_between=2, progress=False)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_samples_are_not_copies_of_each_other():
    x = ising(16, 40, temperature=3.0, random_state=0, n_equilibrate=10, n_between=5, progress=False)
    flat = x.reshape(40, -1)
    overlap = (flat @ flat.T / flat.shape[1]).fill_diagonal_(0).abs()
    assert float(overlap.max()) < 0.9


def test_samples_are_ordered_round_by_round_across_chains():
    # A longer run extends a shorter one: its first n_chains samples are every chain's first
    # sample, so sample i belongs to chain i % n_chains (the grouping the jackknife relies on).
    short = ising(12, 4, random_state=5, n_chains=4, n_equilibrate=6, n_between=3, progress=False)
    long = ising(12, 12, random_state=5, n_chains=4, n_equilibrate=6, n_between=3, progress=False)
    assert torch.equal(long[:4], short)
    assert not torch.equal(long[4:8], short)


def test_abs_magnetisation_decorrelates_between_samples_of_a_chain_at_tc():
    # |m| is the slowest observable of Swendsen-Wang at T_c; with the default n_between the
    # lag-one correlation between a chain's successive samples must be indistinguishable from 0
    # (126 pairs: standard error ~0.09).
    chains, per_chain = 14, 10
    m = magnetisation(ising(32, chains * per_chain, random_state=6, n_chains=chains, progress=False)).abs()
    m = m.reshape(per_chain, chains).double()
    m = m - m.mean()
    rho = float((m[1:] * m[:-1]).mean() / (m * m).mean())
    assert abs(rho) < 0.35


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        (dict(size=1, n_samples=1), ValueError, "size"),
        (dict(size=8, n_samples=0), ValueError, "n_samples"),
        (dict(size=8.0, n_samples=1), TypeError, "size"),
        (dict(size=8, n_samples=1, temperature=-1.0), ValueError, "temperature"),
        (dict(size=8, n_samples=1, temperature=float("nan")), ValueError, "temperature"),
        (dict(size=8, n_samples=1, temperature="hot"), TypeError, "temperature"),
        (dict(size=8, n_samples=1, random_state=1.5), TypeError, "random_state"),
        (dict(size=8, n_samples=1, random_state=-1), ValueError, "random_state"),
        (dict(size=8, n_samples=1, n_between=0), ValueError, "n_between"),
        (dict(size=8, n_samples=1, n_chains=0), ValueError, "n_chains"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, err, match):
    with pytest.raises(err, match=match):
        ising(progress=False, **kwargs)


def test_bad_fields_are_rejected():
    with pytest.raises(ValueError, match="fields"):
        ising_energy(torch.ones(2, 2, 4, 4))
    with pytest.raises(ValueError, match="non-finite"):
        magnetisation(torch.tensor([[1.0, float("nan")], [1.0, 1.0]]))
