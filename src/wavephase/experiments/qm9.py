"""QM9 atomization energies from invariant features, end to end: data, features, fit, metrics, figures.

:func:`run_qm9` computes (or reads back) the invariants of the molecules it
needs into a verified feature store (:func:`wavephase.distributed.extract_features`),
fits :class:`~wavephase.models.molecules.MoleculeEnergyRegressor` on them, and
writes the test MAE/RMSE, a learning curve, a parity plot and a check of the
forces on one test molecule against finite differences into ``metrics.json``.
"""

from __future__ import annotations

import copy
import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from wavephase.data.cache import cache_dir
from wavephase.data.molecules import Molecules
from wavephase.data.qm9 import QM9_N_MOLECULES, SPLIT_SIZES, load_qm9
from wavephase.distributed import chunk_status, extract_features, read_features, resolve_scheduler, transform_fingerprint
from wavephase.exceptions import OutOfDomainWarning
from wavephase.experiments.outputs import prepare_output_dir, write_metrics
from wavephase.experiments.qm9_outliers import worst_molecules, write_outliers
from wavephase.models.molecule_features import FEATURE_MAPS, QM9_PRESETS, qm9_invariants
from wavephase.models.molecules import MoleculeEnergyModel, MoleculeEnergyRegressor
from wavephase.validation import check_device, check_positive_int, check_random_state

__all__ = ["fit_learning_curve", "force_check", "qm9_sizes", "run_qm9", "split_rows"]

_CURVE_SIZES = (1_000, 10_000, 110_000)
# Training rows read from the feature store at once: 8192 x 7,495 float32 invariants are 250 MB.
_BLOCK_ROWS = 8192


def qm9_sizes(limit: int | None, train_size: int | None) -> tuple[int, int, int]:
    """(train, validation, test) sizes: the full split, or ``limit`` molecules split 70/10/20.

    Parameters
    ----------
    limit : int, optional
        Molecules used in all (at least 20).
    train_size : int, optional
        Training molecules (default: all available).

    Returns
    -------
    tuple of int
        Training, validation and test sizes.
    """
    n_train_max, n_val, n_test = SPLIT_SIZES[0], SPLIT_SIZES[1], QM9_N_MOLECULES - sum(SPLIT_SIZES)
    if limit is not None:
        limit = check_positive_int(limit, "limit", minimum=20)
        n_test = min(n_test, max(1, round(0.2 * limit)))
        n_val = min(n_val, max(1, round(0.1 * limit)))
        n_train_max = min(n_train_max, limit - n_test - n_val)
    if train_size is None:
        train_size = n_train_max
    train_size = check_positive_int(train_size, "train_size", minimum=2)
    if train_size > n_train_max:
        raise ValueError(f"train_size={train_size} exceeds the {n_train_max} training molecules available"
                         f"{'' if limit is None else f' with limit={limit}'}; lower it or raise --limit.")
    return train_size, n_val, n_test


def split_rows(n_train: int, n_val: int, n_test: int, random_state: int = 0) -> dict[str, np.ndarray]:
    """Rows of a QM9 feature store (molecules in train, validation, test order) used by a run.

    Parameters
    ----------
    n_train, n_val, n_test : int
        Sizes of the three sets (prefixes of the fixed split).
    random_state : int
        0: the fixed split. Another seed divides the same molecules again at random
        into sets of the same sizes (for the spread of a result over splits); each
        set is then in store order, which is itself random, so its prefixes are
        random subsets and its rows are read chunk by chunk.

    Returns
    -------
    dict of str to numpy.ndarray
        ``train``, ``validation`` and ``test`` row indices.
    """
    v0, t0 = SPLIT_SIZES[0], SPLIT_SIZES[0] + SPLIT_SIZES[1]
    rows = {"train": np.arange(n_train), "validation": np.arange(v0, v0 + n_val), "test": np.arange(t0, t0 + n_test)}
    if random_state == 0:
        return rows
    pool = np.random.default_rng(random_state).permutation(np.concatenate(list(rows.values())))
    bounds = np.cumsum([0, n_train, n_val, n_test])
    return {k: np.sort(pool[a:b]) for k, a, b in zip(rows, bounds[:-1], bounds[1:])}


def force_check(model: MoleculeEnergyModel, positions: np.ndarray, charges: np.ndarray,
                step: float = 1e-5) -> dict[str, Any]:
    """Autograd forces on one molecule against central finite differences, in float64.

    The step is small because grid-based invariants are only piecewise smooth: the
    sampling grid follows the bounding box, whose extreme atoms change at kinks
    that a QM9 atom may lie within ~1e-4 Å of.

    Parameters
    ----------
    model : MoleculeEnergyModel
        The fitted predictor (copied and converted to float64).
    positions : numpy.ndarray
        ``(A, 3)`` positions of one molecule, real atoms first.
    charges : numpy.ndarray
        ``(A,)`` atomic numbers, 0 for padding.
    step : float
        Finite-difference step in angstrom.

    Returns
    -------
    dict
        The forces, their sum, and the largest absolute and relative deviation
        from the finite differences.
    """
    m64 = copy.deepcopy(model).double()
    n_atoms = int((charges > 0).sum())
    pos = torch.from_numpy(positions[:n_atoms].astype(np.float64))[None]
    ch = torch.from_numpy(charges[:n_atoms].astype(np.float64))[None]
    p = pos.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(m64(p, ch).sum(), p)
    forces = -grad[0]
    # All 2 * 3 * n_atoms displaced copies go through the transform as one batch.
    eye = torch.eye(3 * n_atoms, dtype=torch.float64).reshape(3 * n_atoms, n_atoms, 3) * step
    batch = torch.cat([pos + eye, pos - eye])
    with torch.no_grad():
        e = m64(batch, ch.expand(batch.shape[0], -1))
    fd = -((e[: 3 * n_atoms] - e[3 * n_atoms:]) / (2 * step)).reshape(n_atoms, 3)
    err = float((forces - fd).abs().max())
    return {
        "n_atoms": n_atoms,
        "forces_kcal_mol_per_angstrom": forces.tolist(),
        "finite_difference_step_angstrom": step,
        "max_abs_force": float(forces.abs().max()),
        "max_abs_error_vs_finite_difference": err,
        "relative_error_vs_finite_difference": err / max(float(fd.abs().max()), 1e-300),
        "norm_of_force_sum": float(forces.sum(0).norm()),
    }


def fit_learning_curve(store: str | os.PathLike[str], rows: dict[str, np.ndarray], y: dict[str, np.ndarray], *,
                       feature_map: str = "linear", transform: nn.Module | None = None,
                       molecules: Molecules | None = None, sizes: tuple[int, ...] = _CURVE_SIZES,
                       ) -> tuple[MoleculeEnergyRegressor, list[dict[str, float]],
                                  tuple[np.ndarray, dict[str, np.ndarray]]]:
    """Fit on growing prefixes of the training rows of a feature store, streamed block by block.

    The training invariants are never in memory at once: each fit reads them
    from the store in blocks of :data:`_BLOCK_ROWS` rows into a float64 Gram
    matrix (:meth:`MoleculeEnergyRegressor.fit_blocks`); validation and test
    invariants are read whole (float32).

    Parameters
    ----------
    store : path-like
        Feature store of :func:`wavephase.distributed.extract_features`.
    rows : dict of str to numpy.ndarray
        ``train``, ``validation`` and ``test`` rows of the store (:func:`split_rows`).
    y : dict of str to numpy.ndarray
        Energies of the same three sets.
    feature_map : str
        See :class:`MoleculeEnergyRegressor`.
    transform : nn.Module, optional
        The transform the store was made with (kept in the fitted model for forces).
    molecules : Molecules, optional
        The training molecules (applicability domain of the model).
    sizes : tuple of int
        Training sizes of the curve besides all of ``rows["train"]``.

    Returns
    -------
    reg : MoleculeEnergyRegressor
        The fit on all training rows.
    curve : list of dict
        ``train_size``, ``mae_kcal_mol``, ``rmse_kcal_mol``, ``alpha``, ``fit_seconds`` per size.
    test : (numpy.ndarray, dict)
        The fit's predictions on the test rows and their applicability flags
        (``predict(..., return_domain=True)``), so that callers need not read them again.
    """
    n_train = rows["train"].size
    F_val, F_test = read_features(store, rows["validation"]), read_features(store, rows["test"])
    curve, reg, test = [], None, None
    for size in sorted({s for s in sizes if s < n_train} | {n_train}):
        t_fit = time.perf_counter()

        def blocks(size: int = size) -> Any:
            for s in range(0, size, _BLOCK_ROWS):
                r = rows["train"][s:min(s + _BLOCK_ROWS, size)]
                yield read_features(store, r), y["train"][s:s + r.size]

        reg = MoleculeEnergyRegressor(transform, feature_map=feature_map)
        reg.fit_blocks(blocks, validation=(F_val, y["validation"]),
                       molecules=None if molecules is None else molecules[:size])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OutOfDomainWarning)  # counted by the caller
            test = reg.predict(F_test, return_domain=True)
        err = test[0] - y["test"]
        curve.append({"train_size": int(size), "mae_kcal_mol": float(np.abs(err).mean()),
                      "rmse_kcal_mol": float(np.sqrt((err**2).mean())), "alpha": reg.alpha_,
                      "fit_seconds": time.perf_counter() - t_fit})
    assert reg is not None and test is not None
    return reg, curve, test


def _plots(out: Path, y_true: np.ndarray, y_pred: np.ndarray, curve: list[dict[str, float]], mae: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.scatter(y_true, y_pred, s=3, alpha=0.4)
    lo, hi = float(min(y_true.min(), y_pred.min())), float(max(y_true.max(), y_pred.max()))
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    ax.set_xlabel("DFT atomization energy (kcal/mol)")
    ax.set_ylabel("predicted (kcal/mol)")
    ax.set_title(f"QM9 test, MAE {mae:.2f} kcal/mol")
    fig.tight_layout()
    fig.savefig(out / "parity.png", dpi=120)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    ax.loglog([c["train_size"] for c in curve], [c["mae_kcal_mol"] for c in curve], "o-")
    ax.set_xlabel("training molecules")
    ax.set_ylabel("test MAE (kcal/mol)")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "learning_curve.png", dpi=120)
    plt.close(fig)


def _check_settings(preset: str, transform: nn.Module | None, feature_map: str, batch_size: int | None) -> None:
    if transform is None and preset not in QM9_PRESETS:
        raise ValueError(f"preset must be one of {tuple(QM9_PRESETS)}, got {preset!r}.")
    if feature_map not in FEATURE_MAPS:
        raise ValueError(f"feature_map must be one of {FEATURE_MAPS}, got {feature_map!r}.")
    if batch_size is not None:
        check_positive_int(batch_size, "batch_size")
        if transform is not None:
            raise ValueError("batch_size applies to the default transform only; set your transform's own batch size.")


def run_qm9(
    out_dir: str | os.PathLike[str],
    *,
    train_size: int | None = None,
    limit: int | None = None,
    scheduler: str | None = None,
    n_workers: int | None = None,
    progress: bool = True,
    transform: nn.Module | None = None,
    preset: str = "fast",
    feature_map: str = "linear",
    chunk_size: int = 50,
    features_path: str | os.PathLike[str] | None = None,
    device: str = "cpu",
    batch_size: int | None = None,
    random_state: int = 0,
) -> dict[str, Any]:
    """QM9 atomization energies from invariant features, end to end.

    Features of the molecules needed are computed (or read back) with
    :func:`wavephase.distributed.extract_features` into a verified store kept under
    ``cache_dir("qm9")``, in the order of the fixed split (train, validation,
    test), so runs of any size share and extend one cache. The ridge penalty is
    chosen on the validation set; the test set is used once per training size.
    Every argument and the output folder are checked before any heavy work.

    Parameters
    ----------
    out_dir : path-like
        Receives ``metrics.json``, ``parity.png`` and ``learning_curve.png``.
    train_size : int, optional
        Training molecules (a prefix of the fixed random training set); default all
        available (110,000, or 70 % of ``limit``).
    limit : int, optional
        Use only ``limit`` molecules in all: 70 % train, 10 % validation, 20 % test
        prefixes of the fixed split (for quick runs, e.g. ``limit=3000``).
    scheduler : str, optional
        ``"serial"`` (this process, no extra dependency), ``"tcp://HOST:PORT"`` (a Dask
        scheduler) or None (a local Dask cluster of ``n_workers`` processes, or this
        process for one worker); see :func:`~wavephase.distributed.resolve_scheduler`.
    n_workers : int, optional
        Local worker processes; default 2 with Dask installed, else 1.
    progress : bool
        Progress bars.
    transform : nn.Module, optional
        Invariant transform; default ``qm9_invariants(preset)``.
    preset : str
        A name of :data:`~wavephase.models.molecule_features.QM9_PRESETS` (default
        ``"fast"``; ignored with ``transform``).
    feature_map : str
        ``"linear"`` (default), ``"linear+sqrt"`` or ``"quadratic"``, see
        :class:`~wavephase.models.molecules.MoleculeEnergyRegressor`. With the
        scattering alone (the former ``full`` preset, 110,000 training molecules)
        these gave 3.88 (penalties from 1e-8), 3.19 and 2.19 kcal/mol test MAE; the
        spectra need no expansion (see BENCHMARKS.md of 6949ff9).
    chunk_size : int
        Molecules per feature task (and stored chunk).
    features_path : path-like, optional
        Feature store (default: ``cache_dir("qm9")/features-<transform hash>``).
    device : str
        Where the transform runs (``"cuda"`` for a GPU, best with
        ``scheduler="serial"``); the features do not depend on it beyond rounding.
    batch_size : int, optional
        Molecules the default transform processes together (its ``chunk_size``;
        default 16, suited to a CPU; a GPU wants hundreds). It does not change the
        features, nor the cache they are kept in.
    random_state : int
        0 (default): the fixed split; another seed divides the same molecules again
        at random into training, validation and test sets of the same sizes
        (:func:`split_rows`). The fit itself is deterministic.

    Returns
    -------
    dict
        The metrics also written to ``metrics.json``: ``mae_kcal_mol``,
        ``rmse_kcal_mol``, ``train_size``, ``n_validation``, ``n_test``, ``alpha``,
        ``feature_seconds_per_molecule`` (compute time of one worker process per
        molecule, from the chunk markers), ``feature_wall_seconds`` (this run),
        ``learning_curve``, ``forces`` (one test molecule, with its
        finite-difference check), ...
    """
    t_start = time.perf_counter()
    out = prepare_output_dir(out_dir, "out")
    n_train, n_val, n_test = qm9_sizes(limit, train_size)
    _check_settings(preset, transform, feature_map, batch_size)
    chunk_size = check_positive_int(chunk_size, "chunk_size")
    device = str(check_device(device))
    random_state = check_random_state(random_state, "random_state")
    scheduler, n_workers = resolve_scheduler(scheduler, n_workers)
    if features_path is not None and Path(features_path).is_file():
        raise ValueError(f"features_path={str(features_path)!r} is an existing file, not a feature store folder; "
                         f"choose another path.")

    data = load_qm9()
    split = data["split"]
    order = np.concatenate([split["train"], split["validation"], split["test"]])
    molecules = Molecules(data["positions"][order], data["charges"][order])
    energies = data["energy_kcal_mol"][order]
    # Any seed uses the molecules of the fixed split's prefixes: the feature store's ranges.
    ranges = [(int(r[0]), int(r[-1]) + 1) for r in split_rows(n_train, n_val, n_test).values()]
    rows = split_rows(n_train, n_val, n_test, random_state)
    t0 = int(rows["test"][0])  # first test molecule: the one whose forces are checked
    tf = qm9_invariants(preset, chunk_size=batch_size) if transform is None else transform
    store = Path(features_path) if features_path is not None else (
        cache_dir("qm9") / f"features-{transform_fingerprint(tf)[:16]}")
    before = set(chunk_status(store))
    t_feat = time.perf_counter()
    # resolve_scheduler names a local cluster "local", which extract_features takes as None.
    extract_features(tf, molecules, store, chunk_size=chunk_size,
                     scheduler=None if scheduler == "local" else scheduler, n_workers=n_workers,
                     rows=ranges, progress=progress, overwrite=True,
                     trim_padding=True, device=device)
    feature_wall = time.perf_counter() - t_feat
    status = chunk_status(store)
    needed = {int(c) for r in rows.values() for c in np.unique(r // chunk_size)}
    secs = sum(status[c]["seconds"] for c in needed)
    mols = sum(status[c]["stop"] - status[c]["start"] for c in needed)
    y = {k: energies[r] for k, r in rows.items()}
    reg, curve, (pred, flags) = fit_learning_curve(store, rows, y, feature_map=feature_map, transform=tf,
                                                   molecules=molecules[rows["train"]])
    err = pred - y["test"]
    outliers = worst_molecules(store, rows, reg, y, err, molecules.charges, data["index"][order])
    forces = force_check(reg.model_, molecules.positions[t0], molecules.charges[t0])
    forces["molecule_index"] = int(data["index"][order[t0]])
    metrics = {
        "dataset": "QM9 (qm9pack 1.0.3), atomization energy U0 - atomic references",
        "mae_kcal_mol": float(np.abs(err).mean()),
        "rmse_kcal_mol": float(np.sqrt((err**2).mean())),
        "train_size": int(n_train),
        "random_state": random_state,
        "n_validation": int(n_val),
        "n_test": int(n_test),
        "limit": limit,
        "alpha": reg.alpha_,
        "validation_mae_by_alpha": {f"{a:.0e}": m for a, m in reg.scores_.items()},
        "feature_map": feature_map,
        "n_features": int(reg.n_features_in_),
        "test_molecules_outside_training_range": int((flags["n_out_of_range"] > 0).sum()),
        "worst_test_molecules": outliers,
        "transform": repr(tf),
        "preset": None if transform is not None else preset,
        "feature_seconds_per_molecule": secs / max(mols, 1),
        "feature_wall_seconds": feature_wall,
        "feature_chunks_computed_this_run": len(set(status) - before),
        "feature_store": str(store),
        "scheduler": "serial (this process)" if scheduler == "serial" else (
            f"LocalCluster({n_workers} processes)" if scheduler == "local" else scheduler),
        "device": device,
        "learning_curve": curve,
        "forces": forces,
        "test_energy_std_kcal_mol": float(y["test"].std()),
        "seconds": time.perf_counter() - t_start,
    }
    _plots(out, y["test"], pred, curve, metrics["mae_kcal_mol"])
    write_outliers(out, outliers)
    write_metrics(out, metrics)
    return metrics
