"""Benchmark: which solid-harmonic scattering invariants the QM9 energy needs, and what they cost.

For each settings preset of :class:`wavephase.SolidHarmonicScattering3D`, runs
:func:`wavephase.experiments.qm9.run_qm9` on the full fixed QM9 split (110,000
training, 10,000 validation and 10,831 test molecules, or ``--limit``): features
of every molecule, ridge regression with the penalty chosen on the validation
set, test MAE and the learning curve. Then, on the features of the first preset,
refits on subsets of the columns (scattering or spectrum, order, channel,
scales and degrees, read from ``meta()``) to show which families carry the accuracy, and with
other regressions (feature maps, among them the products of
``feature_map="quadratic"``, and a wider penalty grid).

Meant for a GPU (``--device cuda``): on 2 CPU cores the full presets take hours.
Results are printed as a table and written to ``--out/results.json`` after each
preset, so a run cut short keeps what it finished.

Usage: python benchmarks/bench_qm9_presets.py --out DIR [--device cuda] [--batch-size 256]
           [--scheduler serial|local|tcp://HOST:PORT] [--workers 2]
           [--presets full,fast,...] [--limit N] [--no-subsets] [--subsets NAME,...] [--no-feature-maps]
           [--feature-map linear] [--no-progress]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from wavephase.io import atomic_write_bytes
from wavephase.models.molecule_features import QM9_PRESETS

#: Settings compared (the format of ``QM9_PRESETS``); ``run_qm9``'s own presets plus other candidates.
PRESETS: dict[str, dict[str, Any]] = {
    **QM9_PRESETS,
    "J4": {"scattering": {"J": 4}, "spectrum": None},
    "order2-coarse": {"scattering": {"grid_step": 1.0, "margin": 4.0}, "spectrum": None},
    "spectrum-L3-same-scale": {"scattering": None, "spectrum": {"L": 3, "scale_offsets": 0}},
}

#: Column subsets of the first preset: name -> predicate on one meta row (see ``ConcatInvariants.meta``).
SUBSETS: dict[str, Any] = {
    "all": lambda r: True,
    "scattering only": lambda r: r["part"] == "scattering",
    "scattering orders 0-1": lambda r: r["part"] == "scattering" and r["order"] <= 1,
    "scattering, full channel only": lambda r: r["part"] == "scattering" and r["channel"] == "full",
    "spectrum only": lambda r: r["part"] == "spectrum",
    "spectrum, same scales": lambda r: r["part"] == "spectrum" and r["j1"] == r["j2"],
    "spectrum, l <= 3": lambda r: r["part"] == "spectrum" and r["l"] <= 3,
    "spectrum + scattering orders 0-1": lambda r: r["part"] == "spectrum" or r["order"] <= 1,
}


#: Regressions compared on the features of the first preset: (feature_map, n_components, alphas).
FEATURE_MAP_VARIANTS: list[tuple[str, int, Any]] = [
    ("linear", 0, np.logspace(-8, 2, 11)),
    ("linear+sqrt", 0, np.logspace(-8, 2, 11)),
    ("linear+sqrt", 0, np.logspace(-12, 2, 15)),
    ("quadratic", 32, np.logspace(-12, 2, 15)),
    ("quadratic", 64, np.logspace(-12, 2, 15)),
]


def _split_features(metrics: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Features and energies of a finished run's train/validation/test rows."""
    from wavephase.data.qm9 import load_qm9
    from wavephase.distributed import read_features
    from wavephase.experiments.qm9 import split_rows

    data = load_qm9()
    split = data["split"]
    rows = split_rows(metrics["train_size"], metrics["n_validation"], metrics["n_test"])
    F = {k: read_features(metrics["feature_store"], r).astype(np.float64) for k, r in rows.items()}
    y = {k: data["energy_kcal_mol"][split[k][:len(r)]] for k, r in rows.items()}
    return F, y


def _test_scores(F: dict[str, np.ndarray], y: dict[str, np.ndarray], cols: Any = slice(None),
                 train_size: int | None = None, **params: Any) -> dict[str, float]:
    from wavephase.models.molecules import MoleculeEnergyRegressor

    n = train_size or len(y["train"])
    t0 = time.perf_counter()
    reg = MoleculeEnergyRegressor(**params)
    reg.fit(F["train"][:n, cols], y["train"][:n], validation=(F["validation"][:, cols], y["validation"]))
    err = reg.predict(F["test"][:, cols]) - y["test"]
    return {"train_size": n, "mae_kcal_mol": float(np.abs(err).mean()), "rmse_kcal_mol": float(np.sqrt((err**2).mean())),
            "alpha": reg.alpha_, "fit_seconds": time.perf_counter() - t0}


def subset_scores(F: dict[str, np.ndarray], y: dict[str, np.ndarray], meta: dict[str, np.ndarray],
                  feature_map: str, names: Sequence[str] = tuple(SUBSETS)) -> list[dict[str, Any]]:
    """Test MAE of ridge fits on the column subsets ``names`` of :data:`SUBSETS`."""
    rows = [dict(zip(meta, values)) for values in zip(*meta.values())]
    out = []
    for name in names:
        keep = SUBSETS[name]
        cols = np.array([i for i, r in enumerate(rows) if keep(r)])
        out.append({"subset": name, "n_invariants": int(cols.size),
                    **_test_scores(F, y, cols, feature_map=feature_map)})
        print(f"  subset {name:>20}: {cols.size:4d} invariants, test MAE {out[-1]['mae_kcal_mol']:.3f} kcal/mol",
              flush=True)
    return out


def feature_map_scores(F: dict[str, np.ndarray], y: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """Test MAE of the regression variants of :data:`FEATURE_MAP_VARIANTS`, at 10k and all training molecules."""
    out = []
    for feature_map, k, alphas in FEATURE_MAP_VARIANTS:
        for size in sorted({min(10_000, len(y["train"])), len(y["train"])}):
            r = _test_scores(F, y, train_size=size, feature_map=feature_map, n_components=max(k, 1), alphas=alphas)
            out.append({"feature_map": feature_map, "n_components": k,
                        "alphas": f"1e{int(np.log10(alphas[0]))}..1e{int(np.log10(alphas[-1]))}", **r})
            print(f"  map {feature_map:>11} k={k:3d} alphas {out[-1]['alphas']}: train {size:6d}, test MAE "
                  f"{r['mae_kcal_mol']:.3f}, RMSE {r['rmse_kcal_mol']:.3f} kcal/mol (alpha {r['alpha']:.0e}, "
                  f"{r['fit_seconds']:.1f} s)", flush=True)
    return out


def main() -> None:
    """Run the presets given on the command line and print/write their scores."""
    from wavephase.experiments.qm9 import run_qm9
    from wavephase.models.molecule_features import qm9_invariants

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--scheduler", default="serial",
                    help="'serial' (default, one process: right for a GPU), a tcp:// address, or 'local' for a "
                         "LocalCluster of --workers processes")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=16, help="molecules per transform batch")
    ap.add_argument("--chunk-size", type=int, default=2000, help="molecules per stored chunk")
    ap.add_argument("--presets", default=",".join(PRESETS))
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--feature-map", default="linear")
    ap.add_argument("--no-subsets", action="store_true")
    ap.add_argument("--subsets", default=",".join(SUBSETS), help="comma-separated names of SUBSETS to refit")
    ap.add_argument("--no-feature-maps", action="store_true")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"device": args.device, "limit": args.limit, "presets": {}}
    names = args.presets.split(",")
    unknown = [n for n in names if n not in PRESETS]
    if unknown:
        raise SystemExit(f"unknown preset(s) {unknown}; choose among {list(PRESETS)}")
    print("| preset | invariants | ms / molecule | MAE 1k | MAE 10k | MAE full | RMSE full |", flush=True)
    for i, name in enumerate(names):
        tf = qm9_invariants(PRESETS[name], chunk_size=args.batch_size)
        t0 = time.perf_counter()
        m = run_qm9(out / name, limit=args.limit, progress=not args.no_progress, transform=tf,
                    scheduler=None if args.scheduler == "local" else args.scheduler, n_workers=args.workers,
                    feature_map=args.feature_map, chunk_size=args.chunk_size, device=args.device,
                    features_path=out / f"features-{name}")
        curve = {c["train_size"]: c["mae_kcal_mol"] for c in m["learning_curve"]}
        row = {"settings": PRESETS[name], "repr": repr(tf), "n_invariants": tf.output_size,
               "feature_seconds_per_molecule": m["feature_seconds_per_molecule"],
               "feature_wall_seconds": m["feature_wall_seconds"], "run_seconds": time.perf_counter() - t0,
               "learning_curve": m["learning_curve"], "mae_kcal_mol": m["mae_kcal_mol"],
               "rmse_kcal_mol": m["rmse_kcal_mol"], "train_size": m["train_size"], "n_test": m["n_test"],
               "forces": m["forces"]}
        cells = [f"{curve.get(s, float('nan')):.3f}" for s in (1000, 10000)]
        print(f"| {name} | {tf.output_size} | {1e3 * row['feature_seconds_per_molecule']:.2f} | {cells[0]} | "
              f"{cells[1]} | {m['mae_kcal_mol']:.3f} | {m['rmse_kcal_mol']:.3f} |", flush=True)
        if i == 0 and not (args.no_subsets and args.no_feature_maps):
            F, y = _split_features(m)
            if not args.no_feature_maps:
                row["feature_maps"] = feature_map_scores(F, y)
            if not args.no_subsets:
                row["subsets"] = subset_scores(F, y, tf.meta(), args.feature_map, args.subsets.split(","))
        results["presets"][name] = row
        atomic_write_bytes(out / "results.json", json.dumps(results, indent=2, default=str).encode())


if __name__ == "__main__":
    main()
