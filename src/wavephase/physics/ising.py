"""Two-dimensional Ising model sampled by Swendsen–Wang cluster updates.

The square-lattice ferromagnet with periodic boundaries and unit coupling,

.. math:: H(s) = -\\sum_{\\langle ij \\rangle} s_i s_j, \\qquad s_i = \\pm 1,

is sampled at temperature ``T`` by Swendsen–Wang sweeps: every bond between
equal neighbours is activated with probability ``p = 1 - exp(-2/T)``, the
connected clusters of active bonds are found with
:func:`scipy.sparse.csgraph.connected_components`, and every cluster is flipped
with probability 1/2. Cluster moves have a small dynamic exponent at the
critical point, so a few hundred sweeps equilibrate a 128 x 128 lattice where
single-spin Metropolis would need millions. Independent chains are stacked in
one graph so that a whole batch of samples is updated by one call.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import connected_components
from tqdm.auto import tqdm

from wavephase.resources import check_memory, parse_memory_limit
from wavephase.validation import as_float_tensor, check_positive_int, check_random_state

__all__ = ["T_CRITICAL", "ising", "ising_energy", "magnetisation", "swendsen_wang_sweep"]

#: Onsager's critical temperature of the square-lattice Ising model, ``2 / ln(1 + sqrt(2))``.
T_CRITICAL: float = 2.0 / math.log(1.0 + math.sqrt(2.0))

# Cap on the default number of chains run side by side: beyond this the graph grows
# without making the samples any more independent than n_between already does.
_MAX_CHAINS = 32
# Bytes per spin and chain of one sweep: random draws, bond masks, the bond graph, cluster labels (measured ~70).
_SWEEP_BYTES = 100
# Bytes per spin and sample: the int8 samples, their stack, the float32 result.
_SAMPLE_BYTES = 6


def _check_temperature(temperature: object) -> float:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float, np.floating, np.integer)):
        raise TypeError(f"temperature must be a positive float, got {type(temperature).__name__} ({temperature!r}).")
    t = float(temperature)
    if not math.isfinite(t) or t <= 0:
        raise ValueError(
            f"temperature must be a finite positive number, got {temperature!r}; "
            f"use None for the critical temperature T_CRITICAL={T_CRITICAL:.6f}."
        )
    return t


def swendsen_wang_sweep(spins: np.ndarray, temperature: float, rng: np.random.Generator) -> np.ndarray:
    """Apply one Swendsen–Wang sweep to a batch of independent lattices.

    Parameters
    ----------
    spins : numpy.ndarray
        ``(C, L, L)`` array of ``+1`` / ``-1`` (int8), one lattice per chain.
    temperature : float
        Temperature ``T > 0`` in units of the coupling.
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    numpy.ndarray
        New ``(C, L, L)`` int8 spins.

    Shapes
    ------
    spins: (C, L, L) -> (C, L, L)
    """
    c, h, w = spins.shape
    n = c * h * w
    p = -math.expm1(-2.0 / temperature)
    idx = np.arange(n, dtype=np.int64).reshape(c, h, w)
    # Right and down neighbours cover every periodic nearest-neighbour bond exactly once.
    right = (spins == np.roll(spins, -1, axis=2)) & (rng.random((c, h, w)) < p)
    down = (spins == np.roll(spins, -1, axis=1)) & (rng.random((c, h, w)) < p)
    src = np.concatenate([idx[right], idx[down]])
    dst = np.concatenate([np.roll(idx, -1, axis=2)[right], np.roll(idx, -1, axis=1)[down]])
    graph = sp.csr_matrix((np.ones(src.size, dtype=np.int8), (src, dst)), shape=(n, n))
    # Weak connectivity of the one-way bond graph equals connectivity of the undirected one
    # and spares scipy the symmetrisation.
    n_clusters, labels = connected_components(graph, directed=True, connection="weak")
    flip = np.where(rng.random(n_clusters) < 0.5, -1, 1).astype(np.int8)
    return (spins.reshape(-1) * flip[labels]).reshape(c, h, w)


def ising(size: int, n_samples: int, temperature: float | None = None, random_state: int = 0, *,
          n_equilibrate: int | None = None, n_between: int | None = None, n_chains: int | None = None,
          progress: bool = True, memory_limit: int | float | str | None = None) -> torch.Tensor:
    """Sample 2D Ising configurations with Swendsen–Wang cluster updates.

    ``n_chains`` independent chains run side by side. Each chain starts
    from random spins (ordered spins below ``T_CRITICAL``, with a random global
    sign), is equilibrated for ``n_equilibrate`` sweeps and then yields one
    sample every ``n_between`` sweeps until ``n_samples`` samples exist.
    Sample ``i`` comes from chain ``i % n_chains`` (the chains' first samples,
    then their second ones, ...).

    Parameters
    ----------
    size : int
        Side ``L`` of the periodic ``L x L`` lattice (at least 2).
    n_samples : int
        Number of configurations.
    temperature : float or None
        Temperature ``T`` in units of the coupling (``k_B = J = 1``); ``None``
        means the critical temperature :data:`T_CRITICAL` ``= 2 / ln(1 + sqrt 2)``.
    random_state : int
        Seed of the random generator; equal arguments give equal samples.
    n_equilibrate : int or None
        Sweeps before the first sample; default ``100 + 2 L`` (356 at ``L = 128``),
        many times the Swendsen–Wang autocorrelation time at ``T_c``.
    n_between : int or None
        Sweeps between two samples of one chain; default ``10 + L // 4`` (42 at
        ``L = 128``, several times the Swendsen–Wang autocorrelation time of the
        energy and magnetisation at ``T_c``).
    n_chains : int or None
        Number of chains; default ``ceil(n_samples / 4)`` (at most 32), so that
        each chain pays its equilibration for four samples.
    progress : bool
        Show a tqdm progress bar over sweeps.
    memory_limit : int, float or str, optional
        Largest memory the chains and the samples may need (bytes, or e.g. ``"8GB"``);
        default ``$WAVEPHASE_MEMORY_LIMIT``, else a quarter of the memory available
        (see :mod:`wavephase.resources`). Past it,
        :class:`~wavephase.exceptions.ResourceLimitError` is raised before anything
        is allocated.

    Returns
    -------
    torch.Tensor
        ``(n_samples, size, size)`` float32 tensor of ``+1`` / ``-1``.

    Shapes
    ------
    -> (n_samples, size, size)
    """
    size = check_positive_int(size, "size", minimum=2)
    n_samples = check_positive_int(n_samples, "n_samples")
    random_state = check_random_state(random_state)
    t = T_CRITICAL if temperature is None else _check_temperature(temperature)
    n_eq = 100 + 2 * size if n_equilibrate is None else check_positive_int(n_equilibrate, "n_equilibrate", 0)
    n_btw = 10 + size // 4 if n_between is None else check_positive_int(n_between, "n_between")

    if n_chains is None:
        n_chains = min(-(-n_samples // 4), _MAX_CHAINS)
    n_chains = min(check_positive_int(n_chains, "n_chains"), n_samples)
    check_memory(float(size) ** 2 * (_SWEEP_BYTES * n_chains + _SAMPLE_BYTES * n_samples),
                 f"{n_chains} Ising chain(s) of {size}x{size} and {n_samples} sample(s)", "cpu",
                 parse_memory_limit(memory_limit), "lower size, n_samples or n_chains")
    rng = np.random.default_rng(random_state)
    per_chain = -(-n_samples // n_chains)
    if t < T_CRITICAL:
        # Ordered start: equilibrates in a few sweeps instead of coarsening domains.
        spins = np.ones((n_chains, size, size), dtype=np.int8) * rng.choice(
            np.array([-1, 1], dtype=np.int8), size=(n_chains, 1, 1))
    else:
        spins = rng.choice(np.array([-1, 1], dtype=np.int8), size=(n_chains, size, size))

    total = n_eq + (per_chain - 1) * n_btw
    samples = []
    bar = None
    if progress:
        bar = tqdm(total=total, desc=f"Ising {size}x{size} T={t:.3f}", unit="sweep")
    for _ in range(n_eq):
        spins = swendsen_wang_sweep(spins, t, rng)
        if bar is not None:
            bar.update(1)
    samples.append(spins.copy())
    for _ in range(per_chain - 1):
        for _ in range(n_btw):
            spins = swendsen_wang_sweep(spins, t, rng)
            if bar is not None:
                bar.update(1)
        samples.append(spins.copy())
    if bar is not None:
        bar.close()
    # Round-major order: sample i comes from chain i % n_chains, so the first samples come from
    # different chains, and a jackknife dealing field i to group i % g (with g dividing n_chains)
    # leaves out whole chains, which keeps any correlation left within a chain in its error bars.
    out = np.stack(samples, axis=0).reshape(-1, size, size)[:n_samples]
    return torch.from_numpy(out.astype(np.float32))


def _as_fields(fields: object, name: str = "fields") -> torch.Tensor:
    x = as_float_tensor(fields, name)
    if x.ndim == 2:
        x = x.unsqueeze(0)
    if x.ndim != 3:
        raise ValueError(f"{name} must have shape (n, L, L) or (L, L), got {tuple(x.shape)}.")
    if min(x.shape[-2:]) < 2:
        raise ValueError(f"{name} must be at least 2 x 2 per field, got {tuple(x.shape[-2:])}.")
    return x


def ising_energy(fields: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Energy per spin ``-(1/N) sum_<ij> s_i s_j`` with periodic nearest-neighbour bonds.

    Parameters
    ----------
    fields : torch.Tensor or numpy.ndarray
        ``(n, M, N)`` or ``(M, N)`` spins (any real values are accepted; for
        continuous fields this is the same quadratic form).

    Returns
    -------
    torch.Tensor
        ``(n,)`` float64 energy per spin (``(1,)`` for a single field).

    Shapes
    ------
    fields: (n, M, N) or (M, N) -> (n,)
    """
    x = _as_fields(fields).double()
    bonds = x * torch.roll(x, -1, dims=-1) + x * torch.roll(x, -1, dims=-2)
    return -bonds.mean(dim=(-2, -1))


def magnetisation(fields: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Signed magnetisation per spin ``(1/N) sum_i s_i`` of each field.

    Parameters
    ----------
    fields : torch.Tensor or numpy.ndarray
        ``(n, M, N)`` or ``(M, N)`` spins.

    Returns
    -------
    torch.Tensor
        ``(n,)`` float64 magnetisation (take ``abs`` for ``|m|``).

    Shapes
    ------
    fields: (n, M, N) or (M, N) -> (n,)
    """
    return _as_fields(fields).double().mean(dim=(-2, -1))
