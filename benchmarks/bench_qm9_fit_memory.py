"""Benchmark: peak memory of the QM9 ridge fit, invariants in memory against streamed from the feature store.

Both ways fit the learning curve of ``run_qm9`` (1,000, 10,000 and ``--train-size``
training molecules, penalty chosen on the 10,000 validation molecules, MAE on the
10,831 test molecules) on the same cached feature store, each in a fresh child
process whose peak resident memory (``ru_maxrss``) is read when it ends:

* ``array``: the training invariants read whole (float32) and given to
  ``MoleculeEnergyRegressor.fit`` (what ``run_qm9`` did before the streamed fit;
  run this mode with an older checkout on ``PYTHONPATH`` to measure older code);
* ``stream``: :func:`wavephase.experiments.qm9.fit_learning_curve`, which reads
  the training invariants block by block into a float64 Gram matrix.

The two MAEs must agree to round-off. Usage::

    python benchmarks/bench_qm9_fit_memory.py --store ~/.cache/wavephase/qm9/features-<hash> \
        [--train-size 110000] [--modes array,stream] [--baseline-src OLD/src] [--no-record]
    python benchmarks/bench_qm9_fit_memory.py --child array --store ... --train-size N > a.json  # one measurement
    python benchmarks/bench_qm9_fit_memory.py --store ... --use a.json s.json  # record two measurements
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def _data(train_size: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], Any]:
    from wavephase.data.molecules import Molecules
    from wavephase.data.qm9 import load_qm9
    from wavephase.experiments.qm9 import split_rows

    data = load_qm9()
    split = data["split"]
    order = np.concatenate([split["train"], split["validation"], split["test"]])
    rows = split_rows(train_size, split["validation"].size, split["test"].size)
    energies = data["energy_kcal_mol"][order]
    y = {k: energies[r] for k, r in rows.items()}
    return rows, y, Molecules(data["positions"][order[rows["train"]]], data["charges"][order[rows["train"]]])


def child(mode: str, store: str, train_size: int) -> dict[str, Any]:
    """One fit of the learning curve in this process; returns MAEs, seconds and peak RSS."""
    from wavephase.distributed import read_features
    from wavephase.models.molecule_features import qm9_invariants
    from wavephase.models.molecules import MoleculeEnergyRegressor

    t0 = time.perf_counter()
    rows, y, molecules = _data(train_size)
    tf = qm9_invariants("fast")
    curve = []
    if mode == "array":
        F = {k: read_features(store, r) for k, r in rows.items()}
        for size in sorted({s for s in (1_000, 10_000) if s < train_size} | {train_size}):
            reg = MoleculeEnergyRegressor(tf).fit(F["train"][:size], y["train"][:size],
                                                   validation=(F["validation"], y["validation"]))
            err = reg.predict(F["test"]) - y["test"]
            curve.append({"train_size": size, "mae_kcal_mol": float(np.abs(err).mean()), "alpha": reg.alpha_})
    else:
        from wavephase.experiments.qm9 import fit_learning_curve

        _, full, _ = fit_learning_curve(store, rows, y, transform=tf, molecules=molecules)
        curve = [{k: c[k] for k in ("train_size", "mae_kcal_mol", "alpha")} for c in full]
    return {"mode": mode, "train_size": train_size, "curve": curve, "seconds": time.perf_counter() - t0,
            "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", required=True, help="feature store of the fast preset (all 130,831 rows)")
    p.add_argument("--train-size", type=int, default=110_000)
    p.add_argument("--modes", default="array,stream")
    p.add_argument("--child", choices=("array", "stream"), default=None, help=argparse.SUPPRESS)
    p.add_argument("--baseline-src", default=None,
                   help="src folder of an older checkout: the array mode runs with it first on PYTHONPATH")
    p.add_argument("--use", nargs=2, default=None, metavar=("ARRAY_JSON", "STREAM_JSON"),
                   help="record two measurements made earlier with --child (their JSON lines) instead of running")
    p.add_argument("--note", action="append", default=[], help="a remark added to the record (repeatable)")
    p.add_argument("--no-record", action="store_true")
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.store, args.train_size)))
        return 0
    results = [json.loads(Path(f).read_text().strip().splitlines()[-1]) for f in args.use or []]
    for mode in [] if args.use else args.modes.split(","):
        env = os.environ.copy()
        if mode == "array" and args.baseline_src:
            env["PYTHONPATH"] = os.pathsep.join([args.baseline_src, env.get("PYTHONPATH", "")])
        cmd = [sys.executable, __file__, "--child", mode, "--store", args.store, "--train-size", str(args.train_size)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    for r in results:
        print(f"{r['mode']:>6} ({r['train_size']} training): peak RSS {r['peak_rss_gb']:.2f} GB, "
              f"{r['seconds']:.0f} s, MAE "
              + ", ".join(f"{c['train_size']}: {c['mae_kcal_mol']:.4f}" for c in r["curve"]), flush=True)
    if len(results) == 2:
        a, s = results
        same = [(x, y) for x in a["curve"] for y in s["curve"] if x["train_size"] == y["train_size"]]
        print(f"memory ratio array/stream: {a['peak_rss_gb'] / s['peak_rss_gb']:.2f}x; largest MAE difference "
              f"{max((abs(x['mae_kcal_mol'] - y['mae_kcal_mol']) for x, y in same), default=float('nan')):.2e} "
              f"kcal/mol at the training sizes both ran")
    if not args.no_record and len(results) == 2:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from record import headline, write_record

        a, s = results
        for r, label in ((a, "invariants in memory"), (s, "streamed from the store")):
            r.setdefault("label", label)
        write_record(
            "qm9_fit_memory", application="qm9",
            title="QM9 ridge fit memory (learning curve included)",
            headlines=[headline(f"peak memory of the fit, streamed, {s['train_size']} training molecules",
                                s["peak_rss_gb"], "GB",
                                baseline=(f"invariants in memory, {a['train_size']} training", a["peak_rss_gb"]),
                                note="ru_maxrss of a fresh process, loaded 2-core machine")],
            tables=[{"title": "Peak memory and test MAE",
                     "columns": ["fit", "training molecules", "peak RSS (GB)", "seconds", "MAE per training size"],
                     "rows": [[r.get("label", r["mode"]), r["train_size"], r["peak_rss_gb"], r["seconds"],
                               ", ".join(f"{c['train_size']}: {c['mae_kcal_mol']:.4f}" for c in r["curve"])]
                              for r in results]}],
            notes=["Each fit in a fresh process on the same cached feature store (ru_maxrss), on a loaded 2-core "
                   "machine; the MAEs agree to round-off where both ran the same size.", *args.note])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
