"""``wavephase classify``: scattering classifiers on MNIST / Fashion-MNIST."""

from __future__ import annotations

import argparse

from wavephase.cli._options import (add_command, add_count, add_device, add_out, add_progress, add_recipes,
                                    add_seed, add_workers, api_kwargs)
from wavephase.experiments.recipes import CLASSIFICATION_RECIPES

__all__ = ["register", "API"]

#: Each flag's keyword of :func:`~wavephase.experiments.classification.run_classification`;
#: ``model_params.KEY`` is a hyper-parameter of the sparse cascade's estimator.
API: dict[str, str] = {
    "dataset": "dataset", "model": "model", "train_size": "train_size", "test_size": "test_size",
    "validation_size": "validation_size", "epochs": "epochs", "augment": "augment", "test_flip": "test_flip",
    "test_augment": "test_augment", "J": "J", "L": "L", "seed": "random_state", "device": "device",
    "data_dir": "data_path", "cache": "cache_features", "progress": "progress", "recipe": "recipe",
    "n_proj": "model_params.n_proj", "n_atoms": "model_params.n_atoms", "n_steps": "model_params.n_steps",
    "label_smoothing": "model_params.label_smoothing", "ensemble": "model_params.ensemble",
    "workers": "model_params.n_jobs", "views": "model_params.views",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``classify`` sub-command."""
    p = add_command(subparsers, "classify", "train a scattering classifier on MNIST-like data", _run,
                    description="Writes the test accuracy, the confusion matrix (JSON and PNG) and metrics.json. "
                                "A killed sparse-cascade run resumes from --out when started again.",
                    uses_cache=True)
    p.add_argument("--dataset", choices=("mnist", "fashion-mnist"), default="mnist", help="data set")
    p.add_argument("--model", choices=("scattering-linear", "scattering-svm", "sparse-scattering"),
                   default="scattering-linear", help="classifier")
    add_count(p, "--train-size", "training images, a seeded random subset (default: all of them)")
    add_count(p, "--test-size", "first N evaluation images (default: all of them)")
    add_count(p, "--validation-size", "model selection: evaluate on N held-out training images instead of the "
                                      "test set (default: evaluate on the test set)")
    p.add_argument("--epochs", type=int, default=10, help="epochs of the sparse cascade")
    p.add_argument("--augment", type=int, default=0, metavar="K",
                   help="sparse cascade: K augmented copies of the training set (shifts; flips for "
                        "fashion-mnist; rotations and elastic deformations for mnist)")
    p.add_argument("--test-flip", action=argparse.BooleanOptionalAction, default=False,
                   help="sparse cascade: average the predictions of each test image and its mirror image")
    p.add_argument("--test-augment", type=int, default=0, metavar="K",
                   help="sparse cascade: also average the predictions of K augmented copies of each test image")
    p.add_argument("--n-proj", type=int, default=None, help="sparse cascade: projection channels (default: 64)")
    p.add_argument("--n-atoms", type=int, default=None, help="sparse cascade: dictionary atoms (default: 256)")
    p.add_argument("--n-steps", type=int, default=None, help="sparse cascade: unrolled ISTC steps (default: 3)")
    p.add_argument("--label-smoothing", type=float, default=None,
                   help="sparse cascade: label smoothing of the cross-entropy (default: 0)")
    p.add_argument("--ensemble", type=int, default=None, metavar="K",
                   help="sparse cascade: average the probabilities of K cascades of seeds seed..seed+K-1 "
                        "(default: 1); metrics.json also gives each member's error")
    p.add_argument("--views", nargs="+", type=_view, default=None, metavar="SIZE:OFFSET",
                   help="sparse cascade: member m fits the images translated by OFFSET pixels on a "
                        "SIZE x SIZE canvas of view m mod (number of views), a scattering sampled on "
                        "another grid (e.g. 28:0 32:-2 for MNIST; default: one view, the images as they are)")
    add_workers(p, "sparse cascade: ensemble members trained at once, one process (of one thread) each "
                   "(default: 1)", default=None, aliases=("--jobs",))
    add_device(p, "the scattering and the sparse cascade")
    p.add_argument("--J", type=int, default=3, help="scattering scales")
    p.add_argument("--L", type=int, default=8, help="scattering angles")
    add_seed(p, "the subsets, the augmentation and the training")
    p.add_argument("--data-dir", default=None, help="folder of the IDX files (default: the data set's own source)")
    p.add_argument("--cache", action=argparse.BooleanOptionalAction, default=True,
                   help="keep the scattering features in the wavephase cache")
    add_progress(p)
    add_out(p, "output folder (a killed sparse-cascade run resumes from it)")
    add_recipes(p, CLASSIFICATION_RECIPES, API)


def _view(text: str) -> tuple[int, int]:
    try:
        size, offset = text.split(":")
        return int(size), int(offset)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a view is SIZE:OFFSET in pixels, e.g. 32:-2; got {text!r}") from None


def _run(args: argparse.Namespace) -> int:
    from wavephase.experiments.classification import run_classification

    kwargs = api_kwargs(args, API)
    if kwargs.get("model_params") and args.model != "sparse-scattering":
        flags = [f"--{dest.replace('_', '-')}" for dest, key in API.items()
                 if key.startswith("model_params.") and getattr(args, dest) is not None]
        raise ValueError(f"{', '.join(flags)} apply to --model sparse-scattering only.")
    m = run_classification(out_dir=args.out, **kwargs)
    print(f"{m['dataset']} {m['model']} train_size={m['train_size']}: {m['evaluated_on']} accuracy "
          f"{100 * m['test_accuracy']:.2f}% (error {100 * m['test_error']:.2f}%), {m['seconds']:.1f} s; "
          f"results in {args.out}")
    return 0
