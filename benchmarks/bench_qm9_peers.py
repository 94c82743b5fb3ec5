"""Benchmark: wavephase invariants against the descriptors people use instead, on the fixed QM9 split.

Same molecules, same split (seed-0 permutation: 110,000 train, 10,000 validation,
10,831 test; training sets are prefixes of the training permutation), same
training sizes:

* **wavephase** ``fast`` invariants (read from the cached feature store) + the
  library's ridge (:class:`wavephase.models.molecules.MoleculeEnergyRegressor`,
  penalty chosen on the validation set);
* **SOAP** (``dscribe``, summed over atoms) + the same ridge;
* **FCHL19** (``qmllib``) + kernel ridge regression (local Gaussian kernel; width
  and penalty chosen on validation molecules). Its kernels cost ~1 ms per pair of
  molecules on one core here, so it runs on ``--fchl-sizes`` training molecules,
  the first ``--fchl-validation`` validation molecules and a fixed random subset of
  ``--fchl-test`` test molecules; the other two are scored on that subset too.

Descriptor time per molecule is measured side by side on the same
``--time-molecules`` test molecules, one thread each. ``dscribe`` and
``qmllib`` live in their own environment (``make peers-venv``); this script runs
``benchmarks/qm9_peer_descriptors.py`` there. Writes
``benchmarks/results/qm9_peers.json`` and ``--out/qm9_peers_learning_curve.png``.

Usage: python benchmarks/bench_qm9_peers.py --store ~/.cache/wavephase/qm9/features-<hash> --out DIR
           [--sizes 1000,10000] [--fchl-sizes 500,1000] [--fchl-test 1000] [--fchl-validation 500]
           [--peers-python .venv-peers/bin/python] [--no-record]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
KCAL_PER_MEV = 1.0 / 43.364  # 1 kcal/mol = 43.364 meV
ANCHORS = [
    {"label": "SchNet (110k training molecules), U0 MAE 14 meV", "value": 14 * KCAL_PER_MEV, "unit": "kcal/mol",
     "source": "Schuett et al., SchNet: a continuous-filter convolutional neural network for modeling quantum "
               "interactions, NeurIPS 2017, table 2"},
    {"label": "PaiNN (110k training molecules), U0 MAE 5.85 meV", "value": 5.85 * KCAL_PER_MEV, "unit": "kcal/mol",
     "source": "Schuett, Unke, Gastegger, Equivariant message passing for the prediction of tensorial properties "
               "and molecular spectra, ICML 2021, table 2"},
]


def _peer(python: str, *args: str) -> dict[str, Any]:
    done = subprocess.run([python, str(HERE / "qm9_peer_descriptors.py"), *args], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"qm9_peer_descriptors.py {args[0]} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _ridge(F: dict[str, np.ndarray], y: dict[str, np.ndarray], size: int, sub: np.ndarray) -> dict[str, float]:
    import warnings

    from wavephase.models.molecules import MoleculeEnergyRegressor

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = MoleculeEnergyRegressor(alphas=None).fit(F["train"][:size], y["train"][:size],
                                                      validation=(F["validation"], y["validation"]))
        err = reg.predict(F["test"]) - y["test"]
    return {"mae_kcal_mol": float(np.abs(err).mean()), "rmse_kcal_mol": float(np.sqrt((err**2).mean())),
            "mae_fchl_subset_kcal_mol": float(np.abs(err[sub]).mean()), "alpha": reg.alpha_}


def _krr(kernels: Any, y_tr: np.ndarray, y_val: np.ndarray, y_te: np.ndarray) -> dict[str, float]:
    """Kernel ridge for each width and penalty; the pair with the lowest validation MAE is scored on test."""
    import scipy.linalg

    best: dict[str, float] = {"val": np.inf}
    y0 = float(y_tr.mean())

    # qmllib returns (sigmas, train, other) for two sets; the test kernel, never square here
    # (test and training sizes differ), tells the orientation of all of them.
    flip = kernels["test"].shape[1] == y_tr.size and kernels["test"].shape[2] == y_te.size
    if kernels["test"].shape[1] == kernels["test"].shape[2]:
        raise ValueError("use a test subset of another size than the training set: the kernel orientation is "
                         "read from its shape")

    def rows_by_train(name: str, i: int) -> np.ndarray:
        return kernels[name][i].T if flip else kernels[name][i]

    for i, sigma in enumerate(kernels["sigmas"]):
        K = kernels["train"][i]
        for lam in (1e-10, 1e-8, 1e-6, 1e-4, 1e-2, 1.0):
            try:
                c = scipy.linalg.cho_factor(K + lam * np.eye(K.shape[0]))
            except np.linalg.LinAlgError:
                continue
            a = scipy.linalg.cho_solve(c, y_tr - y0)
            val = float(np.abs(rows_by_train("validation", i) @ a + y0 - y_val).mean())
            if val < best["val"]:
                err = rows_by_train("test", i) @ a + y0 - y_te
                best = {"val": val, "sigma": float(sigma), "lambda": lam, "mae_kcal_mol": float(np.abs(err).mean()),
                        "rmse_kcal_mol": float(np.sqrt((err**2).mean())),
                        "sigmas_tried": [float(v) for v in kernels["sigmas"]]}
    return best


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", required=True, help="feature store of the fast preset")
    p.add_argument("--out", required=True)
    p.add_argument("--sizes", default="1000,10000")
    p.add_argument("--fchl-sizes", default="500,1000")
    p.add_argument("--fchl-test", type=int, default=1000)
    p.add_argument("--fchl-validation", type=int, default=500)
    p.add_argument("--fchl-sigmas", default="0.25,0.5,1,2")
    p.add_argument("--time-molecules", type=int, default=200)
    p.add_argument("--peers-python", default=str(HERE.parent / ".venv-peers" / "bin" / "python"))
    p.add_argument("--max-eval", type=int, default=None,
                   help="validation and test molecules used (default all; smaller only to try the script)")
    p.add_argument("--rescore-fchl", default=None, metavar="NPZ",
                   help="score FCHL19 again from saved kernels (of the one --fchl-sizes size) and redo the figure "
                        "and record from --out/qm9_peers.json, without computing anything else")
    p.add_argument("--no-record", action="store_true")
    args = p.parse_args(argv)
    if args.rescore_fchl:
        return _rescore(args)
    import torch

    from wavephase.data.qm9 import load_qm9
    from wavephase.distributed import read_features
    from wavephase.experiments.qm9 import split_rows
    from wavephase.models.molecule_features import qm9_invariants

    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    fchl_sizes = [int(s) for s in args.fchl_sizes.split(",")] if args.fchl_sizes else []
    data = load_qm9()
    split = data["split"]
    order = np.concatenate([split["train"], split["validation"], split["test"]])
    rows = split_rows(max(sizes), min(split["validation"].size, args.max_eval or 10**9),
                      min(split["test"].size, args.max_eval or 10**9))
    energies = data["energy_kcal_mol"][order]
    y = {k: energies[r] for k, r in rows.items()}
    sub = np.sort(np.random.default_rng(0).choice(rows["test"].size, size=args.fchl_test, replace=False))
    tmp = Path(tempfile.mkdtemp(prefix="qm9peers-"))

    def npz(name: str, idx: np.ndarray, part: np.ndarray | None = None) -> str:
        path = tmp / f"{name}.npz"
        np.savez(path, positions=data["positions"][order[idx]], charges=data["charges"][order[idx]],
                 part=np.zeros(idx.size, int) if part is None else part)
        return str(path)

    # Descriptor time per molecule, side by side on the same test molecules, one thread each.
    timed = rows["test"][:args.time_molecules]
    tf = qm9_invariants("fast")
    pos = torch.from_numpy(data["positions"][order[timed]].astype(np.float32))
    ch = torch.from_numpy(data["charges"][order[timed]].astype(np.float32))
    with torch.no_grad():
        tf(pos[:2], ch[:2])  # untimed: first-call set-up
    t = time.perf_counter()
    with torch.no_grad():
        for s in range(0, timed.size, 16):
            tf(pos[s:s + 16], ch[s:s + 16])
    times = {"wavephase_seconds_per_molecule": (time.perf_counter() - t) / timed.size,
             **_peer(args.peers_python, "time", npz("time", timed))}
    print("descriptor seconds per molecule:", json.dumps(times), flush=True)

    all_rows = np.concatenate([rows["train"], rows["validation"], rows["test"]])
    t = time.perf_counter()
    info = _peer(args.peers_python, "soap", npz("soap", all_rows), str(tmp / "soap.npy"))
    S = np.load(tmp / "soap.npy")
    n_tr, n_val = rows["train"].size, rows["validation"].size
    F_soap = {"train": S[:n_tr], "validation": S[n_tr:n_tr + n_val], "test": S[n_tr + n_val:]}
    print(f"SOAP: {S.shape[1]} features for {S.shape[0]} molecules in {time.perf_counter() - t:.0f} s", flush=True)
    F_wp = {k: read_features(args.store, r) for k, r in rows.items()}
    curves: dict[str, list[dict[str, Any]]] = {"wavephase (fast) + ridge": [], "SOAP + ridge": [],
                                               "FCHL19 + kernel ridge": []}
    for size in sizes:
        for name, F in (("wavephase (fast) + ridge", F_wp), ("SOAP + ridge", F_soap)):
            r = {"train_size": size, **_ridge(F, y, size, sub)}
            curves[name].append(r)
            print(f"{name} {size}: MAE {r['mae_kcal_mol']:.3f} (FCHL subset {r['mae_fchl_subset_kcal_mol']:.3f}) "
                  f"kcal/mol, alpha {r['alpha']:.0e}", flush=True)
    del S, F_soap
    for size in fchl_sizes:
        idx = np.concatenate([rows["train"][:size], rows["validation"][:args.fchl_validation], rows["test"][sub]])
        part = np.concatenate([np.zeros(size, int), np.ones(args.fchl_validation, int), np.full(sub.size, 2)])
        t = time.perf_counter()
        info = _peer(args.peers_python, "fchl", npz("fchl", idx, part), str(tmp / "fchl.npz"), "--sigmas",
                     args.fchl_sigmas)
        r = _krr(np.load(tmp / "fchl.npz"), y["train"][:size], y["validation"][:args.fchl_validation],
                 y["test"][sub])
        curves["FCHL19 + kernel ridge"].append({"train_size": size, "mae_fchl_subset_kcal_mol": r["mae_kcal_mol"],
                                                **r, **info, "seconds": time.perf_counter() - t})
        print(f"FCHL19 {size}: MAE {r['mae_kcal_mol']:.3f} kcal/mol on {sub.size} test molecules (sigma "
              f"{r['sigma']}, lambda {r['lambda']:.0e}), {time.perf_counter() - t:.0f} s", flush=True)
    (out / "qm9_peers.json").write_text(json.dumps({"times": times, "curves": curves}, indent=1))
    _figure(out / "qm9_peers_learning_curve.png", curves, sub.size)
    if not args.no_record:
        _record(args, times, curves, sub.size)
    return 0


def _rescore(args: argparse.Namespace) -> int:
    from wavephase.data.qm9 import load_qm9
    from wavephase.experiments.qm9 import split_rows

    saved = json.loads((Path(args.out) / "qm9_peers.json").read_text())
    size = int(args.fchl_sizes)
    data = load_qm9()
    split = data["split"]
    y = {k: data["energy_kcal_mol"][split[k]] for k in ("train", "validation", "test")}
    rows = split_rows(size, split["validation"].size, split["test"].size)
    sub = np.sort(np.random.default_rng(0).choice(rows["test"].size, size=args.fchl_test, replace=False))
    r = _krr(np.load(args.rescore_fchl), y["train"][:size], y["validation"][:args.fchl_validation], y["test"][sub])
    old = [c for c in saved["curves"]["FCHL19 + kernel ridge"] if c["train_size"] == size][0]
    old.update({"mae_fchl_subset_kcal_mol": r["mae_kcal_mol"], **r})
    print(f"FCHL19 {size}: MAE {r['mae_kcal_mol']:.3f} kcal/mol on {sub.size} test molecules (sigma {r['sigma']}, "
          f"lambda {r['lambda']:.0e})", flush=True)
    (Path(args.out) / "qm9_peers.json").write_text(json.dumps(saved, indent=1))
    _figure(Path(args.out) / "qm9_peers_learning_curve.png", saved["curves"], sub.size)
    if not args.no_record:
        _record(args, saved["times"], saved["curves"], sub.size)
    return 0


def _figure(path: Path, curves: dict[str, list[dict[str, Any]]], n_sub: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for i, (name, c) in enumerate(curves.items()):
        if not c:
            continue
        n = [r["train_size"] for r in c]
        if name.startswith("FCHL"):
            ax.loglog(n, [r["mae_fchl_subset_kcal_mol"] for r in c], "s-", color=f"C{i}",
                      label=f"{name} ({n_sub} test molecules)")
            continue
        ax.loglog(n, [r["mae_kcal_mol"] for r in c], "o-", color=f"C{i}", label=f"{name} (all test)")
        ax.loglog(n, [r["mae_fchl_subset_kcal_mol"] for r in c], "x:", color=f"C{i}",
                  label=f"{name} ({n_sub} test molecules)")
    for a, ls in zip(ANCHORS, ("--", "-.")):
        ax.axhline(a["value"], color="gray", ls=ls, lw=0.8,
                   label=a["label"].split(" (")[0] + ", 110k training molecules (published)")
    ax.set_xlabel("training molecules")
    ax.set_ylabel("test MAE (kcal/mol)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _record(args: argparse.Namespace, times: dict[str, float], curves: dict[str, list[dict[str, Any]]],
            n_sub: int) -> None:
    sys.path.insert(0, str(HERE))
    from record import headline, write_record

    wp, soap = curves["wavephase (fast) + ridge"], curves["SOAP + ridge"]
    big = max(range(len(wp)), key=lambda i: wp[i]["train_size"])
    rows = []
    for name, c in curves.items():
        for r in c:
            rows.append([name, r["train_size"], r.get("mae_kcal_mol") if not name.startswith("FCHL") else None,
                         r["mae_fchl_subset_kcal_mol"]])
    write_record(
        "qm9_peers", application="qm9", title="QM9: wavephase invariants against SOAP and FCHL19 (same split)",
        headlines=[headline(f"test MAE at {wp[big]['train_size']} training molecules, wavephase + ridge",
                            wp[big]["mae_kcal_mol"], "kcal/mol",
                            baseline=("SOAP + the same ridge", soap[big]["mae_kcal_mol"]),
                            note="all 10,831 test molecules"),
                   headline("descriptor time per molecule, wavephase fast", times["wavephase_seconds_per_molecule"]
                            * 1e3, "ms", baseline=("SOAP (dscribe)", times["soap_seconds_per_molecule"] * 1e3),
                            note=f"FCHL19 (qmllib) {times['fchl19_seconds_per_molecule'] * 1e3:.1f} ms; one "
                                 f"thread, loaded 2-core machine")],
        tables=[{"title": f"Test MAE (kcal/mol): all 10,831 test molecules, and the {n_sub} of the FCHL19 subset",
                 "columns": ["model", "training molecules", "MAE all test", f"MAE {n_sub} test"], "rows": rows}],
        anchors=ANCHORS,
        notes=[f"FCHL19 kernels cost about 1 ms per molecule pair on one core of this machine: FCHL19 ran at "
               f"{args.fchl_sizes} training molecules on {n_sub} random test molecules (seed 0) and "
               f"{args.fchl_validation} validation molecules; larger sizes were not run.",
               "SOAP: dscribe, r_cut 5 A, n_max 8, l_max 6, sigma 0.5, power spectra summed over atoms.",
               *[f"FCHL19 at {r['train_size']}: kernel widths tried {r.get('sigmas_tried')}, chosen {r['sigma']} "
                 f"(penalty {r['lambda']:.0e}) on validation MAE {r['val']:.1f} kcal/mol"
                 for r in curves["FCHL19 + kernel ridge"]]])


if __name__ == "__main__":
    raise SystemExit(main())
