"""Every public operator of the library passes the common checks (wavephase.testing.check_operator).

Shapes and batch invariance, the empty batch, dtypes and buffers, devices, gradients
(finite at zero, correct by finite differences) and the refusal of bad input: the
contract of docs/conventions.rst, one list of operators.
"""

from __future__ import annotations

import pytest
import torch

from wavephase import PhaseHarmonicStatistics, Scattering2D, SolidHarmonicScattering3D
from wavephase.harmonics.scattering_covariance import ScatteringCovariance
from wavephase.models.decoder import ScatteringDecoder
from wavephase.models.whitening import WhitenedScattering
from wavephase.scattering.atom_spectrum import SolidHarmonicAtomSpectrum
from wavephase.scattering.concat import ConcatInvariants
from wavephase.sparse import ISTC
from wavephase.testing import check_operator, image_inputs, random_molecule


def molecule_inputs(n_atoms: int = 4):
    """Random molecules of ``n_atoms`` atoms (the last one padding), positions differentiated."""
    base_pos, base_z = random_molecule(n_atoms, random_state=3)
    base_z[-1] = 0

    def make(batch, dtype, gen):
        pos = base_pos.to(dtype) + 0.05 * torch.randn(*batch, n_atoms, 3, generator=gen, dtype=dtype)
        return pos, base_z.to(dtype).expand(*batch, n_atoms).clone()

    return make


def _with_reference(op):
    op.set_reference(torch.randn(2, *op.shape, generator=torch.Generator().manual_seed(1)))
    return op


def _fitted_whitening():
    op = WhitenedScattering(2, (8, 8), L=2, n_components=4)
    feats = op.features(torch.randn(20, 8, 8, generator=torch.Generator().manual_seed(2)))
    return op.fit_features(feats, random_state=0)


# Atoms all at one point are refused (two atoms at distance 0), so the gradient at zero is not checked.
MOLECULES = {"float32_rtol": 1e-3, "zero_input": False}

OPERATORS = {
    "Scattering2D/fft": (lambda: Scattering2D(2, (8, 8), L=2, backend="fft"), image_inputs((8, 8)), {}),
    "Scattering2D/matmul": (lambda: Scattering2D(2, (8, 8), L=2, backend="matmul"), image_inputs((8, 8)), {}),
    "Scattering2D/rotation": (lambda: Scattering2D(2, (8, 8), L=4, rotation="fourier"), image_inputs((8, 8)),
                              {"gradcheck": False}),
    "SolidHarmonicScattering3D": (lambda: SolidHarmonicScattering3D(J=1, L=1, grid_step=1.0, margin=2.0, align=False),
                                  molecule_inputs(), {"gradcheck": False, **MOLECULES}),
    "SolidHarmonicAtomSpectrum": (lambda: SolidHarmonicAtomSpectrum(scales=(0.5, 1.0), L=1), molecule_inputs(),
                                  MOLECULES),
    "ConcatInvariants": (lambda: ConcatInvariants(a=SolidHarmonicAtomSpectrum(scales=(0.5,), L=0, scale_offsets=0),
                                                  b=SolidHarmonicAtomSpectrum(scales=(1.0,), L=1, scale_offsets=0)),
                         molecule_inputs(), MOLECULES),
    "PhaseHarmonicStatistics": (lambda: _with_reference(PhaseHarmonicStatistics((16, 16), J=2, L=2)),
                                image_inputs((16, 16)), {"gradcheck": False, "float32_rtol": 1e-3}),
    "ScatteringCovariance": (lambda: _with_reference(ScatteringCovariance((16, 16), J=2, L=2)),
                             image_inputs((16, 16)), {"gradcheck": False, "float32_rtol": 1e-3}),
    "ISTC": (lambda: ISTC(6, 10, 3, 0.5, homotopy=False), image_inputs((6,)), {}),
    # The homotopy's first threshold is the detached largest correlation: a schedule, not a function
    # to differentiate, so the finite differences see a term the gradient leaves out by design.
    "ISTC/homotopy": (lambda: ISTC(6, 10, 3, 0.5), image_inputs((6,)), {"gradcheck": False}),
    "WhitenedScattering": (_fitted_whitening, image_inputs((8, 8)), {"gradcheck": False, "float32_rtol": 1e-3}),
    "ScatteringDecoder": (lambda: ScatteringDecoder(4, (8, 8), 2, channels=(4, 4)).eval(), image_inputs((4,)),
                          {"gradcheck": False}),
}


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_operator_passes_the_common_checks(name):
    make_op, make_inputs, options = OPERATORS[name]
    torch.manual_seed(0)
    check_operator(make_op, make_inputs, **options)
