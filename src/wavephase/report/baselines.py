"""Baselines the report computes itself, on the same data as the run it sits beside."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["DRESSED_ATOM_ELEMENTS", "dressed_atom_errors"]

#: Atomic numbers of QM9's elements: H, C, N, O, F.
DRESSED_ATOM_ELEMENTS = (1, 6, 7, 8, 9)


def dressed_atom_errors(metrics: dict[str, Any]) -> dict[str, float]:
    """Test errors of the "dressed atom" model on the molecules of a QM9 run.

    The dressed-atom model predicts an energy linear in the number of atoms of each
    element (least squares with an intercept): the simplest invariant model, which
    knows the composition of a molecule and nothing of its geometry. It is fitted on
    the run's training molecules and scored on its test molecules (the same
    sets, from ``limit``, ``train_size`` and the run's split seed ``random_state``).

    Parameters
    ----------
    metrics : dict
        ``metrics.json`` of :func:`wavephase.experiments.qm9.run_qm9` (``limit``,
        ``train_size``, ``random_state``: 0, the fixed split, when absent).

    Returns
    -------
    dict
        ``mae_kcal_mol``, ``rmse_kcal_mol``, ``train_size``, ``n_test``.
    """
    from wavephase.data.qm9 import load_qm9
    from wavephase.experiments.qm9 import qm9_sizes, split_rows

    n_train, n_val, n_test = qm9_sizes(metrics.get("limit"), metrics["train_size"])
    data = load_qm9()
    split = data["split"]
    order = np.concatenate([split["train"], split["validation"], split["test"]])
    rows = split_rows(n_train, n_val, n_test, metrics.get("random_state", 0))
    charges = np.asarray(data["charges"])[order]
    energies = np.asarray(data["energy_kcal_mol"], dtype=np.float64)[order]
    counts = np.stack([(charges == z).sum(1) for z in DRESSED_ATOM_ELEMENTS], axis=1).astype(np.float64)
    design = np.hstack([counts, np.ones((len(counts), 1))])
    coef, *_ = np.linalg.lstsq(design[rows["train"]], energies[rows["train"]], rcond=None)
    err = design[rows["test"]] @ coef - energies[rows["test"]]
    return {"mae_kcal_mol": float(np.abs(err).mean()), "rmse_kcal_mol": float(np.sqrt((err**2).mean())),
            "train_size": int(n_train), "n_test": int(n_test)}
