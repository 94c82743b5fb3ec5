"""Seed study of the MNIST sparse cascade: how much its test error moves from seed to seed.

Trains many members of one recipe (the cascade of ``wavephase classify --model
sparse-scattering``: P=128, K=512, 8 augmented copies, label smoothing 0.1) at
once, one process per seed on one GPU, and saves each member's test-set class
probabilities. ``--summarise`` then gives the distribution of the single members'
errors and of the errors of ensembles of k members (disjoint groups of seeds and
every combination). No recipe is chosen from these figures: the study measures
the spread of the test error of a fixed recipe, which a single run cannot show.

Usage::

    python benchmarks/mnist_seed_study.py --work /tmp/study --out DIR --seeds 10 --deadline 420  # GPU machine
    python benchmarks/mnist_seed_study.py --summarise DIR

The features are computed on the device (``Scattering2D`` on CUDA by default) and kept
in ``--work`` (4.3 GB); members train with ``SparseScatteringClassifier(device=...)``
and leave their test probabilities in ``--out``. ``--limit N --epochs E --device cpu``
makes a small smoke run.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

RECIPE = {"n_proj": 128, "n_atoms": 512, "label_smoothing": 0.1, "epochs": 50}
COPIES, J, L = 8, 3, 8


def _features(work: Path, out: Path, device: str, limit: int | None) -> None:
    # The training set and its copies (seed 0, as `wavephase classify --seed 0`), scattered on the device.
    from wavephase.data.augment import augmented_copies
    from wavephase.data.datasets import load_dataset
    from wavephase.experiments.classification import AUGMENTATIONS
    from wavephase.models.features import scatter_in_batches
    from wavephase.scattering.scattering2d import Scattering2D

    X, y, Xt, yt = (a[:limit] for a in load_dataset("mnist"))
    scat = Scattering2D(J, X.shape[1:], L=L)
    versions = [X, *augmented_copies(X, COPIES, 0, **AUGMENTATIONS["mnist"])]
    train = np.lib.format.open_memmap(work / "train.npy", mode="w+", dtype=np.float32,
                                      shape=(len(versions), len(X), scat.output_channels, *scat.output_shape))
    for v, images in enumerate(versions):
        train[v] = scatter_in_batches(scat, images, batch_size=4000, device=device)
    train.flush()
    np.save(work / "test.npy", scatter_in_batches(scat, Xt, batch_size=4000, device=device))
    np.save(work / "y.npy", y)
    np.save(out / "y_test.npy", yt)


def _worker(work: Path, out: Path, seed: int, device: str, epochs: int) -> None:
    import torch

    from wavephase.models import SparseScatteringClassifier

    torch.set_num_threads(1)
    train = np.load(work / "train.npy", mmap_mode="r")
    y, yt = np.load(work / "y.npy"), np.load(out / "y_test.npy")
    t0 = time.perf_counter()
    est = SparseScatteringClassifier(J=J, L=L, precomputed=True, random_state=seed, device=device,
                                     checkpoint_dir=work / f"ckpt-{seed}", **{**RECIPE, "epochs": epochs})
    est.fit(train, y)
    proba = est.predict_proba(np.load(work / "test.npy"))
    np.save(out / f"proba-{seed}.npy", proba.astype(np.float32))
    error = float((proba.argmax(1) != yt).mean())
    (out / f"member-{seed}.json").write_text(json.dumps({"seed": seed, "test_error": error,
                                                        "seconds": time.perf_counter() - t0}))
    print(f"seed {seed}: test error {100 * error:.2f} % in {time.perf_counter() - t0:.0f} s", flush=True)


def _summarise(out: Path) -> None:
    yt = np.load(out / "y_test.npy")
    probas = {int(p.stem.split("-")[1]): np.load(p) for p in sorted(out.glob("proba-*.npy"))}
    seeds = sorted(probas)
    print(f"recipe {RECIPE}, {COPIES} augmented copies; {len(seeds)} finished seeds: {seeds}")
    print("| members k | ensembles | test error (%): mean | min | max | share <= 0.40 % |")
    print("|---|---|---|---|---|---|")
    for k in range(1, min(len(seeds), 4) + 1):
        errs = [100 * float((np.mean([probas[s] for s in c], 0).argmax(1) != yt).mean())
                for c in itertools.combinations(seeds, k)]
        print(f"| {k} | all {len(errs)} combinations | {np.mean(errs):.3f} | {min(errs):.2f} | {max(errs):.2f} "
              f"| {np.mean(np.array(errs) <= 0.40 + 1e-9):.2f} |")
    singles = [100 * float((probas[s].argmax(1) != yt).mean()) for s in seeds]
    print("single members (%):", " ".join(f"{e:.2f}" for e in singles))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="results: test probabilities and errors per seed")
    parser.add_argument("--work", type=Path, help="features and checkpoints (about 4.3 GB)")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--epochs", type=int, default=RECIPE["epochs"])
    parser.add_argument("--limit", type=int, default=None, help="first N training and test images (smoke runs)")
    parser.add_argument("--deadline", type=float, default=420.0, help="seconds; unfinished members are dropped")
    parser.add_argument("--summarise", type=Path)
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.summarise:
        _summarise(args.summarise)
        return 0
    if args.out is None or args.work is None:
        parser.error("--out and --work are required (or --summarise DIR).")
    args.out.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)
    if args.worker is not None:
        _worker(args.work, args.out, args.worker, args.device, args.epochs)
        return 0
    t0 = time.perf_counter()
    _features(args.work, args.out, args.device, args.limit)
    print(f"features in {time.perf_counter() - t0:.0f} s", flush=True)
    common = ["--out", str(args.out), "--work", str(args.work), "--device", args.device, "--epochs", str(args.epochs)]
    procs = [subprocess.Popen([sys.executable, __file__, *common, "--worker", str(s)],
                              env={**os.environ, "OMP_NUM_THREADS": "1"}) for s in range(args.seeds)]
    while any(p.poll() is None for p in procs) and time.perf_counter() - t0 < args.deadline:
        time.sleep(5)
    for p in procs:
        if p.poll() is None:
            p.kill()
    print(f"stopped after {time.perf_counter() - t0:.0f} s", flush=True)
    _summarise(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
