"""The Molecules container (padded positions and atomic numbers) and the shared molecule checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.model_selection import KFold, train_test_split
from sklearn.utils import _safe_indexing

from wavephase.data.molecules import Molecules, check_molecule_inputs
from wavephase.testing import random_molecule


def _ragged(sizes=(3, 5, 2)) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    mols = [random_molecule(n, random_state=n) for n in sizes]
    return [p for p, _ in mols], [z for _, z in mols]


def test_from_per_molecule_arrays_pads_with_zeros():
    pos, z = _ragged()
    mols = Molecules(pos, z)
    assert len(mols) == 3 and mols.shape == (3, 5) and mols.positions.shape == (3, 5, 3)
    assert mols.positions.dtype == np.float64 and mols.charges.dtype == np.int64
    np.testing.assert_array_equal(mols.n_atoms, [3, 5, 2])
    np.testing.assert_array_equal(mols.positions[2, :2], pos[2].numpy())
    assert not mols.positions[2, 2:].any() and not mols.charges[2, 2:].any()
    # The same molecules as padded arrays give the same container.
    again = Molecules(mols.positions, mols.charges.astype(np.float32))
    np.testing.assert_array_equal(again.positions, mols.positions)
    np.testing.assert_array_equal(again.charges, mols.charges)


def test_dtype_policy_of_positions():
    pos, z = _ragged((4, 4))
    assert Molecules(torch.stack(pos).float(), torch.stack(z)).positions.dtype == np.float32
    assert Molecules(torch.stack(pos).to(torch.int64), torch.stack(z)).positions.dtype == np.float32
    assert Molecules(torch.stack(pos), torch.stack(z)).positions.dtype == np.float64


def test_row_indexing_like_an_array():
    mols = Molecules(*_ragged((3, 5, 2, 4)))
    for key in (1, -1, slice(1, 3), np.array([3, 0]), [2, 2], np.array([True, False, True, False]),
                torch.tensor([1, 2])):
        rows = np.arange(4)[key.numpy() if isinstance(key, torch.Tensor) else key]
        sub = mols[key]
        assert isinstance(sub, Molecules)
        np.testing.assert_array_equal(sub.charges, mols.charges[np.atleast_1d(rows)])
        np.testing.assert_array_equal(sub.positions, mols.positions[np.atleast_1d(rows)])
    np.testing.assert_array_equal(mols[np.array([1, 3]), ...].n_atoms, [5, 4])  # scikit-learn's form
    with pytest.raises(IndexError):
        mols[4]
    with pytest.raises(IndexError, match="rows only"):
        mols[0, 1]
    assert len(mols[np.zeros(0, dtype=np.int64)]) == 0


def test_scikit_learn_splits_it():
    mols = Molecules(*_ragged((3, 5, 2, 4, 6, 3)))
    y = np.arange(6.0)
    train, test, y_train, y_test = train_test_split(mols, y, test_size=2, random_state=0)
    assert isinstance(train, Molecules) and len(train) == 4 and len(test) == 2
    np.testing.assert_array_equal(np.sort(np.concatenate([y_train, y_test])), y)
    for tr, te in KFold(3).split(mols):
        part = _safe_indexing(mols, te)
        np.testing.assert_array_equal(part.charges, mols.charges[te])


def test_trim_and_tensors():
    pos, z = _ragged((2, 3))
    padded = Molecules(np.pad(torch.stack([torch.cat([pos[0], torch.zeros(1, 3)]), pos[1]]).numpy(),
                              ((0, 0), (0, 4), (0, 0))),
                       np.pad(torch.stack([torch.cat([z[0], torch.zeros(1)]), z[1]]).numpy(), ((0, 0), (0, 4))))
    assert padded.shape == (2, 7) and padded.trim().shape == (2, 3)
    p, c = padded.trim().tensors()
    assert p.dtype == torch.float64 and c.dtype == torch.float64 and c.shape == (2, 3)
    assert p.data_ptr() == torch.from_numpy(padded.positions).data_ptr()  # no copy on the CPU
    assert "n=2" in repr(padded)


@pytest.mark.parametrize(
    "positions, charges, error, match",
    [
        (np.zeros((2, 3)), np.zeros(2), ValueError, r"\(n, A, 3\)"),
        (np.zeros((1, 2, 2)), np.ones((1, 2)), ValueError, r"\(\.\.\., A, 3\)"),
        (np.zeros((1, 2, 3)), np.ones((1, 3)), ValueError, "charges must have shape"),
        (np.full((1, 2, 3), np.nan), np.ones((1, 2)), ValueError, "non-finite"),
        (np.zeros((1, 2, 3)), np.array([[6.5, 1.0]]), ValueError, "integer"),
        (np.zeros((1, 2, 3)), np.array([[-6, 1]]), ValueError, ">= 0"),
        (np.zeros((2, 2, 3)), np.array([[6, 1], [0, 0]]), ValueError, "1 empty molecule"),
        (np.zeros((1, 2, 3)), np.array([["C", "H"]]), TypeError, "numeric"),
        (np.zeros((1, 2, 3), dtype=complex), np.ones((1, 2)), TypeError, "real"),
        (np.zeros((1, 0, 3)), np.zeros((1, 0)), ValueError, "no atoms"),
        ([np.zeros((2, 3)), np.zeros((2, 2))], [np.ones(2), np.ones(2)], ValueError, r"positions\[1\]"),
    ],
)
def test_bad_input(positions, charges, error, match):
    with pytest.raises(error, match=match):
        Molecules(positions, charges)


def test_empty_container_is_allowed():
    mols = Molecules(np.zeros((0, 4, 3)), np.zeros((0, 4)))
    assert len(mols) == 0 and mols.shape == (0, 4)


def test_check_molecule_inputs():
    pos = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    out, z = check_molecule_inputs(pos, torch.tensor([6, 1], dtype=torch.uint8))
    assert out is pos and z.dtype == torch.float64
    with pytest.raises(ValueError, match=r"\[16\] unknown.*add them"):
        check_molecule_inputs(pos, torch.tensor([16.0, 1.0]), elements=(1, 6), fix="add them")
    with pytest.raises(TypeError, match="charges must be a torch.Tensor"):
        check_molecule_inputs(pos, [6, 1])
    with pytest.raises(TypeError, match="real atomic numbers"):
        check_molecule_inputs(pos, torch.tensor([True, True]))
    with pytest.raises(ValueError, match="distance 0"):
        check_molecule_inputs(torch.zeros(2, 3), torch.tensor([6.0, 1.0]))
    # Padding atoms may share a place; an empty batch is fine.
    check_molecule_inputs(torch.zeros(3, 3), torch.tensor([6.0, 0.0, 0.0]))
    check_molecule_inputs(torch.zeros(0, 2, 3), torch.zeros(0, 2))


@settings(max_examples=60, deadline=None)
@given(shape=st.sampled_from([(0, 3, 3), (2, 3, 3), (2, 3), (2, 3, 2), (1, 0, 3)]),
       dtype=st.sampled_from([np.float16, np.float32, np.float64, np.int32, np.uint8, np.bool_, np.complex64]),
       special=st.sampled_from([None, np.nan, np.inf, 1e300]),
       charges=st.sampled_from([[6, 1, 0], [0, 0, 0], [6.5, 1, 1], [-1, 6, 6], [200, 1, 0]]))
def test_random_arrays_give_a_container_or_a_named_error(shape, dtype, special, charges):
    positions = np.ones(shape).astype(dtype)
    if special is not None and positions.size and dtype in (np.float32, np.float64):
        with np.errstate(over="ignore"):  # 1e300 is inf in float32: refused the same way
            positions.flat[0] = special
    z = np.tile(np.asarray(charges, dtype=np.float64)[: shape[1] if len(shape) > 1 else 3], (shape[0], 1))
    try:
        mols = Molecules(positions, z)
    except (TypeError, ValueError) as err:
        assert str(err)
        return
    assert mols.positions.dtype in (np.float32, np.float64) and np.isfinite(mols.positions).all()
    assert (mols.n_atoms > 0).all() and len(mols) == shape[0]
