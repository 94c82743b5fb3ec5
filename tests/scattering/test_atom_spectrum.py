"""Tests of the atom-centred solid-harmonic wavelet power spectra."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wavephase.exceptions import ResourceLimitError
from wavephase.scattering.atom_spectrum import SolidHarmonicAtomSpectrum
from wavephase.scattering.solid_harmonics import solid_harmonic_response
from wavephase.testing import random_molecule, random_rotation, relative_error

# Small tensors gain nothing from threads, and on a shared machine threads thrash.
pytestmark = pytest.mark.usefixtures("one_torch_thread")

F64 = torch.float64
SMALL = dict(scales=(0.4, 0.8, 1.6), L=2, scale_offsets=1)


def test_matches_direct_sum_of_wavelet_coefficients_at_the_nuclei() -> None:
    pos, z = random_molecule(7, random_state=3)
    S = SolidHarmonicAtomSpectrum(**SMALL)
    out = S(pos, z)
    # Direct definition: the closed-form wavelet response of each element's density at each atom.
    X = {(e, j): solid_harmonic_response(pos, (z == e).to(F64), pos, s, S.sigma, S.L)
         for e in S.elements for j, s in enumerate(S.scales)}
    meta = S.meta()
    expected = []
    for a, b, c, j1, j2, l in zip(*(meta[k] for k in ("probe", "element1", "element2", "j1", "j2", "l"))):
        m = slice(l * l, (l + 1) ** 2)
        expected.append(((X[b, j1][:, m] * X[c, j2][:, m]).sum(-1) * (z == a)).sum())
    torch.testing.assert_close(out, torch.stack(expected), rtol=1e-10, atol=1e-14)


def test_rotation_translation_permutation_reflection_invariance() -> None:
    pos, z = random_molecule(9, random_state=5)
    S = SolidHarmonicAtomSpectrum(**SMALL)
    ref = S(pos, z)
    perm = torch.randperm(9, generator=torch.Generator().manual_seed(0))
    moved = pos[perm] @ random_rotation(2).T + torch.tensor([3.0, -1.0, 0.5], dtype=F64)
    assert relative_error(S(moved, z[perm]), ref) < 1e-12
    assert relative_error(S(-pos, z), ref) < 1e-12


def test_padding_batch_shapes_and_batch_independence() -> None:
    S = SolidHarmonicAtomSpectrum(**SMALL, chunk_size=2)
    mols = [random_molecule(n, random_state=n) for n in (3, 6, 5)]
    singles = torch.stack([S(p, z) for p, z in mols])
    pos = torch.zeros(3, 8, 3, dtype=F64)
    ch = torch.zeros(3, 8, dtype=F64)
    for i, (p, z) in enumerate(mols):
        # Padding first and with junk coordinates: only charges 0 mark it.
        pos[i, 8 - len(z):], ch[i, 8 - len(z):] = p, z
        pos[i, :8 - len(z)] = 7.0 * (i + 1)
    torch.testing.assert_close(S(pos, ch), singles, rtol=1e-12, atol=1e-15)
    assert S(pos.reshape(3, 1, 8, 3), ch.reshape(3, 1, 8)).shape == (3, 1, S.output_size)


def test_float32_agrees_with_float64() -> None:
    pos, z = random_molecule(10, random_state=8)
    S = SolidHarmonicAtomSpectrum(**SMALL)
    a, b = S(pos.float(), z.float()), S(pos, z)
    assert a.dtype == torch.float32 and b.dtype == F64 and relative_error(a.double(), b) < 1e-5
    # float64 constants by default; .float() converts them, and the input still sets the precision.
    assert S.harmonic_matrix.dtype == F64 and S.float().harmonic_matrix.dtype == torch.float32
    assert S(pos, z).dtype == F64 and relative_error(S(pos, z), b) < 1e-6


def test_gradcheck_and_finite_gradient_on_symmetric_molecule() -> None:
    pos, z = random_molecule(4, random_state=1)
    S = SolidHarmonicAtomSpectrum(scales=(0.5, 1.0), L=2, scale_offsets=1)
    assert torch.autograd.gradcheck(lambda p: S(p, z), (pos.clone().requires_grad_(True),))
    # CO2: a centre of symmetry makes the odd-degree coefficients at the carbon vanish.
    co2 = torch.tensor([[0.0, 0.0, 0.0], [1.16, 0.0, 0.0], [-1.16, 0.0, 0.0]], dtype=F64, requires_grad=True)
    S(co2, torch.tensor([6.0, 8.0, 8.0], dtype=F64)).sum().backward()
    assert torch.isfinite(co2.grad).all()
    # Forces from an invariant sum to zero (translation invariance).
    torch.testing.assert_close(co2.grad.sum(0), torch.zeros(3, dtype=F64), atol=1e-12, rtol=0)


def test_cross_element_terms_separate_what_the_full_density_mixes() -> None:
    # Swapping the two heavy atoms keeps the element counts and the set of distances
    # (what a single density of all atoms sees at second order), not the C-H distances.
    pos = torch.tensor([[0.0, 0.0, 0.0], [1.4, 0.0, 0.0], [-0.6, 0.9, 0.0], [2.3, 0.5, 0.0]], dtype=F64)
    S = SolidHarmonicAtomSpectrum(scales=(0.5, 1.0), L=1)
    a = S(pos, torch.tensor([6.0, 8.0, 1.0, 1.0], dtype=F64))
    b = S(pos, torch.tensor([8.0, 6.0, 1.0, 1.0], dtype=F64))
    meta = S.meta()
    ch = (meta["element1"] == 1) & (meta["element2"] == 6) & (meta["probe"] == 1)
    assert not torch.allclose(a[torch.from_numpy(ch)], b[torch.from_numpy(ch)])


def test_meta_and_output_size() -> None:
    S = SolidHarmonicAtomSpectrum(scales=(0.5, 1.0, 2.0), L=1, elements=(1, 6), scale_offsets=1)
    meta = S.meta()
    # Per l: same scale, 3 symmetric pairs x 3 scales; offset 1, 4 ordered pairs x 2 scale pairs; x 2 probes.
    assert S.output_size == 2 * 2 * (3 * 3 + 4 * 2) == meta["l"].size
    assert (meta["j1"] >= meta["j2"]).all() and set(meta["probe"]) == {1, 6}
    same = meta["j1"] == meta["j2"]
    assert (meta["element1"][same] <= meta["element2"][same]).all()
    assert len({tuple(r) for r in np.stack(list(meta.values()), 1)}) == S.output_size


@pytest.mark.parametrize(
    "positions, charges, match",
    [
        (torch.zeros(2, 3), torch.tensor([6.0, 16.0]), "unknown"),
        (torch.tensor([[0.0, 0.0, float("nan")], [1.0, 0.0, 0.0]]), torch.tensor([6.0, 1.0]), "NaN"),
        (torch.zeros(2, 3), torch.tensor([6.0, 1.0]), "distance 0"),
        (torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]), torch.tensor([0.0, 0.0]), "empty"),
        (torch.zeros(3, 3), torch.tensor([6.0, 1.0]), "charges must have shape"),
    ],
)
def test_bad_input(positions: torch.Tensor, charges: torch.Tensor, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SolidHarmonicAtomSpectrum(scales=(0.5,), L=1, scale_offsets=0)(positions, charges)


@pytest.mark.parametrize("kwargs", [dict(scales=()), dict(scales=(1.0, 0.5)), dict(scales=(0.0,)), dict(L=7),
                                    dict(elements=(6, 6)), dict(elements=(0,)), dict(sigma=-1.0),
                                    dict(scales=(0.5, 1.0), scale_offsets=2)])
def test_bad_parameters(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        SolidHarmonicAtomSpectrum(**kwargs)


def test_empty_batch_and_meta_types() -> None:
    S = SolidHarmonicAtomSpectrum(**SMALL)
    assert S(torch.zeros(0, 4, 3, dtype=F64), torch.zeros(0, 4)).shape == (0, S.output_size)
    assert all(isinstance(v, np.ndarray) and v.shape == (S.output_size,) for v in S.meta().values())


def test_memory_guard(monkeypatch) -> None:
    pos, z = random_molecule(6, random_state=2)
    monkeypatch.setenv("WAVEPHASE_MEMORY_LIMIT", "1kB")
    with pytest.raises(ResourceLimitError, match="atom pairs.*lower chunk_size"):
        SolidHarmonicAtomSpectrum(**SMALL)(pos, z)
    assert SolidHarmonicAtomSpectrum(**SMALL, memory_limit="1GB")(pos, z).shape[-1] > 0
