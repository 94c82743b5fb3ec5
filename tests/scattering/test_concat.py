"""ConcatInvariants: several molecule transforms side by side."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from wavephase import SolidHarmonicScattering3D
from wavephase.scattering.atom_spectrum import SolidHarmonicAtomSpectrum
from wavephase.scattering.concat import ConcatInvariants
from wavephase.testing import random_molecule

# Small tensors gain nothing from threads, and on a shared machine threads thrash.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _parts() -> dict[str, nn.Module]:
    return {"scattering": SolidHarmonicScattering3D(J=1, L=1, max_order=1),
            "spectrum": SolidHarmonicAtomSpectrum(scales=(0.5, 1.0), L=1, scale_offsets=0)}


def test_outputs_slices_and_meta_line_up():
    parts = _parts()
    T = ConcatInvariants(**parts)
    pos, z = random_molecule(5, random_state=1)
    out = T(pos, z)
    assert out.shape == (T.output_size,) and out.dtype == torch.float64
    for name, cols in T.slices().items():
        torch.testing.assert_close(out[cols], parts[name](pos, z))
    meta = T.meta()
    assert all(isinstance(v, np.ndarray) and v.shape == (T.output_size,) for v in meta.values())
    assert meta["part"].dtype.kind == "U" and meta["channel"].dtype.kind == "U"
    spectrum = meta["part"] == "spectrum"
    assert (meta["channel"][spectrum] == "").all() and (meta["probe"][~spectrum] == -1).all()
    assert set(meta["channel"][~spectrum]) == {"full", "valence", "core"}


def test_follows_the_input_and_handles_an_empty_batch():
    T = ConcatInvariants(**_parts())
    pos, z = random_molecule(4, random_state=2)
    assert T(pos.float(), z.float()).dtype == torch.float32
    assert T(torch.zeros(0, 3, 3), torch.zeros(0, 3)).shape == (0, T.output_size)


def test_bad_parts():
    with pytest.raises(ValueError, match="at least one"):
        ConcatInvariants()
    with pytest.raises(TypeError, match="output_size and meta"):
        ConcatInvariants(linear=nn.Linear(3, 3))
