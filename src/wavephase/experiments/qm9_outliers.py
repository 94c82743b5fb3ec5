"""The worst-predicted QM9 test molecules and their nearest training molecules in invariant space.

A linear model on invariants errs most where the test molecule has no close
neighbour among the training ones, or where its invariants leave the training
range. :func:`worst_molecules` lists the ``k`` largest test errors with the
formula, the nearest training molecule (Euclidean distance between standardised
invariants, streamed from the feature store) and the number of invariants
outside the training range; :func:`write_outliers` writes them as a CSV and a
figure.
"""

from __future__ import annotations

import csv
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from wavephase.distributed import read_features
from wavephase.exceptions import OutOfDomainWarning
from wavephase.models.molecules import MoleculeEnergyRegressor

__all__ = ["formula", "nearest_rows", "worst_molecules", "write_outliers"]

_SYMBOLS = {1: "H", 6: "C", 7: "N", 8: "O", 9: "F"}
_BLOCK_ROWS = 8192


def formula(charges: np.ndarray) -> str:
    """Hill formula (C, H, then alphabetical) of one molecule.

    Parameters
    ----------
    charges : numpy.ndarray
        Shape (A,) atomic numbers, 0 for padding.

    Returns
    -------
    str
        E.g. ``"C2F6"``.
    """
    z, n = np.unique(np.asarray(charges)[np.asarray(charges) > 0].astype(int), return_counts=True)
    count = {_SYMBOLS.get(int(a), f"Z{int(a)}"): int(c) for a, c in zip(z, n)}
    order = [e for e in ("C", "H") if e in count] + sorted(e for e in count if e not in ("C", "H"))
    return "".join(f"{e}{count[e] if count[e] > 1 else ''}" for e in order)


def nearest_rows(store: str | os.PathLike[str], train_rows: np.ndarray, queries: np.ndarray, mean: np.ndarray,
                 scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest training row of each query in standardised invariant space, streamed from the store.

    Parameters
    ----------
    store : path-like
        Feature store.
    train_rows : numpy.ndarray
        Shape (n,) rows of the training molecules.
    queries : numpy.ndarray
        Shape (q, K) invariants of the query molecules.
    mean, scale : numpy.ndarray
        Shape (K,): the standardisation.

    Returns
    -------
    position, distance : numpy.ndarray
        Shape (q,): index into ``train_rows`` of the nearest one, and its distance.
    """
    Q = (np.asarray(queries, dtype=np.float64) - mean) / scale
    q2 = (Q**2).sum(1)
    best, where = np.full(Q.shape[0], np.inf), np.zeros(Q.shape[0], dtype=np.int64)
    for s in range(0, train_rows.size, _BLOCK_ROWS):
        T = (read_features(store, train_rows[s:s + _BLOCK_ROWS]).astype(np.float64) - mean) / scale
        d2 = q2[:, None] + (T**2).sum(1)[None, :] - 2.0 * Q @ T.T
        j = d2.argmin(axis=1)
        closer = d2[np.arange(Q.shape[0]), j] < best
        best[closer], where[closer] = d2[np.arange(Q.shape[0]), j][closer], s + j[closer]
    return where, np.sqrt(np.clip(best, 0.0, None))


def worst_molecules(store: str | os.PathLike[str], rows: dict[str, np.ndarray], reg: MoleculeEnergyRegressor,
                    y: dict[str, np.ndarray], err: np.ndarray, charges: np.ndarray, index: np.ndarray, k: int = 10,
                    n_reference: int = 200) -> dict[str, Any]:
    """The ``k`` test molecules with the largest absolute error, with their nearest training molecules.

    Parameters
    ----------
    store : path-like
        Feature store (rows in train, validation, test order).
    rows : dict of str to numpy.ndarray
        ``train`` and ``test`` rows of the store.
    reg : MoleculeEnergyRegressor
        The fitted model (its standardisation defines the distance).
    y : dict of str to numpy.ndarray
        ``train`` and ``test`` energies.
    err : numpy.ndarray
        Shape (n_test,) prediction minus reference.
    charges : numpy.ndarray
        Shape (N, A) atomic numbers of all rows of the store.
    index : numpy.ndarray
        Shape (N,) QM9 index of each row.
    k : int
        Molecules listed.
    n_reference : int
        Random test molecules (seed 0) whose nearest-neighbour distances give the
        typical distance the outliers are compared with.

    Returns
    -------
    dict
        ``molecules``: one dict per outlier (``qm9_index``, ``formula``,
        ``n_atoms``, ``energy_kcal_mol``, ``error_kcal_mol``,
        ``n_invariants_out_of_range``, ``nearest_train_qm9_index``,
        ``nearest_train_formula``, ``nearest_train_energy_kcal_mol``,
        ``nearest_distance``); ``median_nearest_distance_random_test`` and
        ``share_of_squared_error`` (of the ``k`` molecules in the test total).
    """
    K = reg.n_features_in_
    mean, scale = reg.model_.mean.numpy()[:K], reg.model_.scale.numpy()[:K]
    worst = np.argsort(-np.abs(err))[:k]
    sample = np.random.default_rng(0).choice(err.size, size=min(n_reference, err.size), replace=False)
    picked = np.concatenate([worst, sample])
    F = read_features(store, rows["test"][picked])
    where, dist = nearest_rows(store, rows["train"], F, mean, scale)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDomainWarning)
        out_of_range = reg.domain_.out_of_range(F[:worst.size])
    listed = []
    for i, t in enumerate(worst):
        r, n = rows["test"][t], rows["train"][where[i]]
        listed.append({
            "qm9_index": int(index[r]), "formula": formula(charges[r]), "n_atoms": int((charges[r] > 0).sum()),
            "energy_kcal_mol": float(y["test"][t]), "error_kcal_mol": float(err[t]),
            "n_invariants_out_of_range": int(out_of_range[i]),
            "nearest_train_qm9_index": int(index[n]), "nearest_train_formula": formula(charges[n]),
            "nearest_train_energy_kcal_mol": float(y["train"][where[i]]), "nearest_distance": float(dist[i]),
        })
    return {"molecules": listed, "median_nearest_distance_random_test": float(np.median(dist[worst.size:])),
            "share_of_squared_error": float((err[worst]**2).sum() / max((err**2).sum(), 1e-300))}


def write_outliers(out: str | os.PathLike[str], outliers: dict[str, Any]) -> None:
    """Write ``worst_molecules.csv`` and ``worst_molecules.png`` (errors and nearest-neighbour distances).

    Parameters
    ----------
    out : path-like
        Output folder.
    outliers : dict
        The result of :func:`worst_molecules`.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out, mols = Path(out), outliers["molecules"]
    with open(out / "worst_molecules.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(mols[0]) if mols else ["qm9_index"])
        writer.writeheader()
        writer.writerows(mols)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 0.35 * len(mols) + 1.8), sharey=True)
    labels = [f"{m['formula']} (#{m['qm9_index']})" for m in mols][::-1]
    ax.barh(labels, [abs(m["error_kcal_mol"]) for m in mols][::-1],
            color=["C3" if m["n_invariants_out_of_range"] else "C0" for m in mols][::-1])
    ax.set_xlabel("|error| (kcal/mol); red: some invariants outside the training range", fontsize=8)
    bx.barh(labels, [m["nearest_distance"] for m in mols][::-1], color="C2")
    bx.axvline(outliers["median_nearest_distance_random_test"], color="k", ls="--", lw=0.8,
               label="median, random test molecules")
    bx.set_xlabel("distance to the nearest training molecule (standardised invariants)", fontsize=8)
    bx.legend(fontsize=7)
    share = 100 * outliers["share_of_squared_error"]
    fig.suptitle(f"{len(mols)} worst QM9 test molecules: {share:.0f} % of the squared error",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "worst_molecules.png", dpi=120)
    plt.close(fig)
