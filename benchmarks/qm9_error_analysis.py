"""Where the QM9 error of the linear model comes from: worst molecules, groups of molecules, families of invariants.

Fits the learning curve of ``run_qm9`` (streamed from a cached feature store, as
``wavephase qm9`` does) and reports, on the 10,831 test molecules:

* the 10 worst molecules with their nearest training molecule
  (``worst_molecules.csv``/``.png``, as ``run_qm9`` writes them);
* MAE, RMSE and share of the squared error by number of fluorine atoms, number
  of heavy atoms, and whether the invariants leave the training range;
* with ``--ablation-size N``: the test MAE at ``N`` training molecules when one
  family of invariants is left out (scattering; the spectrum at each scale; the
  spectrum pairs involving each element), read from ``meta()``.

Peak resident memory (``ru_maxrss``) of the process is recorded. Usage::

    python benchmarks/qm9_error_analysis.py --store ~/.cache/wavephase/qm9/features-<hash> --out DIR
        [--train-size 110000] [--ablation-size 10000] [--no-fit]
"""

from __future__ import annotations

import argparse
import json
import resource
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np


def _groups(err: np.ndarray, charges: np.ndarray, outside: np.ndarray) -> list[dict[str, Any]]:
    n_f = (charges == 9).sum(1)
    heavy = (charges > 1).sum(1)
    total = float((err**2).sum())
    masks = {"no F": n_f == 0, "1 F": n_f == 1, "2 F": n_f == 2, ">= 3 F": n_f >= 3,
             "<= 7 heavy atoms": heavy <= 7, "8 heavy atoms": heavy == 8, "9 heavy atoms": heavy == 9,
             "invariants in training range": ~outside, "invariants outside training range": outside}
    out = []
    for name, m in masks.items():
        if m.any():
            out.append({"group": name, "n": int(m.sum()), "mae_kcal_mol": float(np.abs(err[m]).mean()),
                        "rmse_kcal_mol": float(np.sqrt((err[m]**2).mean())),
                        "share_of_squared_error": float((err[m]**2).sum() / total)})
    return out


def _ablation(store: str, rows: dict[str, np.ndarray], y: dict[str, np.ndarray], size: int) -> list[dict[str, Any]]:
    from wavephase.distributed import read_features
    from wavephase.models.molecule_features import qm9_invariants
    from wavephase.models.molecules import MoleculeEnergyRegressor

    meta = qm9_invariants("fast").meta()
    F = {"train": read_features(store, rows["train"][:size]), "validation": read_features(store, rows["validation"]),
         "test": read_features(store, rows["test"])}
    spec = meta["part"] == "spectrum"
    families = {"none (all invariants)": np.zeros(spec.size, bool), "scattering": ~spec}
    for j in np.unique(meta["j1"][spec]):
        families[f"spectrum, scale j1={j}"] = spec & (meta["j1"] == j)
    for e in (1, 6, 7, 8, 9):
        families[f"spectrum pairs with element {e}"] = spec & ((meta["element1"] == e) | (meta["element2"] == e))
    runs = [(name, drop, "linear") for name, drop in families.items()]
    runs.insert(1, ("none (all invariants)", families["none (all invariants)"], "linear+sqrt"))
    out = []
    for name, drop, feature_map in runs:
        t = time.perf_counter()
        cols = np.flatnonzero(~drop)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reg = MoleculeEnergyRegressor(feature_map=feature_map).fit(
                F["train"][:, cols], y["train"][:size], validation=(F["validation"][:, cols], y["validation"]))
            err = reg.predict(F["test"][:, cols]) - y["test"]
        out.append({"left_out": name, "feature_map": feature_map, "n_left_out": int(drop.sum()),
                    "mae_kcal_mol": float(np.abs(err).mean()), "rmse_kcal_mol": float(np.sqrt((err**2).mean())),
                    "median_abs_error_kcal_mol": float(np.median(np.abs(err))), "alpha": reg.alpha_,
                    "seconds": time.perf_counter() - t})
        print(f"  without {name:>32} ({drop.sum():4d}, {feature_map}): MAE {out[-1]['mae_kcal_mol']:.3f}, median "
              f"{out[-1]['median_abs_error_kcal_mol']:.3f} kcal/mol", flush=True)
    return out


def _record(parts: list[dict[str, Any]]) -> int:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from record import headline, write_record

    fit = next(p for p in parts if "groups" in p)
    ablation = next((p["ablation"] for p in parts if "ablation" in p), None)
    worst = fit["worst_test_molecules"]
    tables = [{"title": f"Test errors by group ({fit['train_size']} training molecules)",
               "columns": ["group", "molecules", "MAE (kcal/mol)", "RMSE (kcal/mol)", "share of squared error"],
               "rows": [[g["group"], g["n"], g["mae_kcal_mol"], g["rmse_kcal_mol"], g["share_of_squared_error"]]
                        for g in fit["groups"]]},
              {"title": "The 10 worst test molecules",
               "columns": ["QM9 index", "formula", "error (kcal/mol)", "invariants out of range",
                           "nearest training molecule", "distance"],
               "rows": [[m["qm9_index"], m["formula"], m["error_kcal_mol"], m["n_invariants_out_of_range"],
                         f"{m['nearest_train_formula']} (#{m['nearest_train_qm9_index']})", m["nearest_distance"]]
                        for m in worst["molecules"]]}]
    if ablation:
        tables.append({"title": f"Invariant families left out ({ablation['train_size']} training molecules)",
                       "columns": ["left out", "feature map", "invariants left out", "MAE (kcal/mol)",
                                   "median |error| (kcal/mol)"],
                       "rows": [[r["left_out"], r["feature_map"], r["n_left_out"], r["mae_kcal_mol"],
                                 r["median_abs_error_kcal_mol"]] for r in ablation["rows"]]})
    write_record(
        "qm9_error_analysis", application="qm9", title="Where the QM9 error of the linear model comes from",
        headlines=[headline("share of the squared test error in the 10 worst molecules",
                            100 * worst["share_of_squared_error"], "%",
                            note=f"{fit['train_size']} training molecules, MAE {fit['mae_kcal_mol']:.3f}, RMSE "
                                 f"{fit['rmse_kcal_mol']:.2f} kcal/mol")],
        tables=tables,
        notes=[f"{fit['test_molecules_outside_training_range']} test molecules have invariants outside the "
               f"training range; peak memory of the streamed fit and analysis {fit['peak_rss_gb']:.2f} GB."])
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--train-size", type=int, default=110_000)
    p.add_argument("--ablation-size", type=int, default=0)
    p.add_argument("--curve-sizes", default="1000,10000", help="smaller training sizes also fitted ('' for none)")
    p.add_argument("--no-fit", action="store_true", help="only the ablation")
    p.add_argument("--record-from", nargs="+", default=None, metavar="JSON",
                   help="write benchmarks/results/qm9_error_analysis.json from analysis.json/ablation.json files "
                        "written earlier, without computing anything")
    args = p.parse_args(argv)
    if args.record_from:
        return _record([json.loads(Path(f).read_text()) for f in args.record_from])
    from wavephase.data.molecules import Molecules
    from wavephase.data.qm9 import load_qm9
    from wavephase.experiments.qm9 import fit_learning_curve, split_rows
    from wavephase.experiments.qm9_outliers import worst_molecules, write_outliers
    from wavephase.models.molecule_features import qm9_invariants

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = load_qm9()
    split = data["split"]
    order = np.concatenate([split["train"], split["validation"], split["test"]])
    rows = split_rows(max(args.train_size, args.ablation_size), split["validation"].size, split["test"].size)
    energies, charges = data["energy_kcal_mol"][order], data["charges"][order]
    y = {k: energies[r] for k, r in rows.items()}
    result: dict[str, Any] = {"train_size": args.train_size, "store": args.store}
    if not args.no_fit:
        t = time.perf_counter()
        molecules = Molecules(data["positions"][order[rows["train"]]], charges[rows["train"]])
        sizes = tuple(int(n) for n in args.curve_sizes.split(",") if n)
        reg, curve, (pred, flags) = fit_learning_curve(args.store, rows, y, transform=qm9_invariants("fast"),
                                                       molecules=molecules, sizes=sizes)
        result["fit_seconds"] = time.perf_counter() - t
        result["learning_curve"] = curve
        err = pred - y["test"]
        outside = flags["n_out_of_range"] > 0
        result.update({"mae_kcal_mol": float(np.abs(err).mean()), "rmse_kcal_mol": float(np.sqrt((err**2).mean())),
                       "median_abs_error_kcal_mol": float(np.median(np.abs(err))),
                       "test_molecules_outside_training_range": int(outside.sum()),
                       "groups": _groups(err, charges[rows["test"]], outside)})
        result["worst_test_molecules"] = worst_molecules(args.store, rows, reg, y, err, charges, data["index"][order])
        write_outliers(out, result["worst_test_molecules"])
        result["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(json.dumps({k: result[k] for k in ("mae_kcal_mol", "rmse_kcal_mol", "peak_rss_gb", "fit_seconds")}),
              flush=True)
        (out / "analysis.json").write_text(json.dumps(result, indent=1))
    if args.ablation_size:
        result["ablation"] = {"train_size": args.ablation_size,
                              "rows": _ablation(args.store, rows, y, args.ablation_size)}
        (out / "analysis.json" if args.no_fit is False else out / "ablation.json").write_text(
            json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
