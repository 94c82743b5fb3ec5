"""Test error of the scattering classifiers for training sizes 1k, 10k and full, with wall times.

Each (data set, model, training size) is one :func:`wavephase.experiments.classification.run_classification`
run written to ``OUT/<dataset>-<model>-<size>/metrics.json`` (the same as
``wavephase classify ... --out`` writes); runs already there are read back, not
repeated, so a killed benchmark resumes. Prints a Markdown table.

    python benchmarks/bench_classification.py --out runs/classification [--sizes 1000 10000 full]
        [--augment K [--test-flip]]

``--augment``/``--test-flip`` train the sparse cascade on K augmented copies of
the training set and average each test image with its mirror image (run
directories ``...-augK[-tflip]``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from wavephase.data.datasets import DATASETS
from wavephase.experiments.classification import run_classification

MODELS = ("scattering-linear", "sparse-scattering")


def main() -> None:
    """Run (or read back) every configuration and print the results table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="directory of the runs")
    parser.add_argument("--sizes", nargs="+", default=["1000", "10000", "full"])
    parser.add_argument("--datasets", nargs="+", default=sorted(DATASETS), choices=sorted(DATASETS))
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--epochs", type=int, default=20, help="epochs of the sparse cascade")
    parser.add_argument("--augment", type=int, default=0, help="augmented copies for the sparse cascade")
    parser.add_argument("--test-flip", action="store_true", help="sparse cascade: test-time mirror images")
    args = parser.parse_args()
    rows = []
    for dataset in args.datasets:
        for model in args.models:
            for size in args.sizes:
                extra = {}
                name = f"{dataset}-{model}-{size}"
                if model == "sparse-scattering" and (args.augment or args.test_flip):
                    extra = {"augment": args.augment, "test_flip": args.test_flip}
                    name += f"-aug{args.augment}" + ("-tflip" if args.test_flip else "")
                run = Path(args.out) / name
                file = run / "metrics.json"
                if file.is_file():
                    m = json.loads(file.read_text())
                else:
                    m = run_classification(dataset, model, run, epochs=args.epochs,
                                           train_size=None if size == "full" else int(size), **extra)
                rows.append(m)
    print("| data set | model | augmented copies | test flip | training images | test error (%) | "
          "wall time (s) | threads |")
    print("|---|---|---|---|---|---|---|---|")
    for m in rows:
        print(f"| {m['dataset']} | {m['model']} | {m.get('augment', 0)} | {'yes' if m.get('test_flip') else 'no'} | "
              f"{m['train_size']} | {100 * m['test_error']:.2f} | {m['seconds']:.0f} | {m['threads']} |")


if __name__ == "__main__":
    main()
