"""The dressed-atom baseline is fitted and scored on the very sets of the QM9 run it is compared with."""

from __future__ import annotations

import numpy as np

from wavephase.data import qm9 as qm9_mod
from wavephase.report.baselines import dressed_atom_errors


def test_dressed_atoms_follow_the_runs_split_seed(monkeypatch):
    n = qm9_mod.QM9_N_MOLECULES
    rng = np.random.default_rng(0)
    charges = np.zeros((n, qm9_mod.QM9_MAX_ATOMS), np.uint8)
    charges[:, :6] = rng.choice([0, 1, 6, 7, 8, 9], size=(n, 6))
    energy = -90.0 * (charges == 6).sum(1) - 60.0 * (charges == 1).sum(1) + rng.normal(scale=5.0, size=n)
    monkeypatch.setattr(qm9_mod, "load_qm9", lambda **kw: {"charges": charges, "energy_kcal_mol": energy,
                                                          "split": qm9_mod.qm9_split(n)})
    fixed = dressed_atom_errors({"limit": 2000, "train_size": 1400})
    assert fixed == dressed_atom_errors({"limit": 2000, "train_size": 1400, "random_state": 0})
    other = dressed_atom_errors({"limit": 2000, "train_size": 1400, "random_state": 1})
    assert other["n_test"] == fixed["n_test"] == 400 and other["mae_kcal_mol"] != fixed["mae_kcal_mol"]
    assert 3.0 < other["mae_kcal_mol"] < 5.0  # the noise level (MAE of N(0, 5): 4.0)
