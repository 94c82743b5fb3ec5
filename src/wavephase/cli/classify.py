"""``wavephase classify``: scattering classifiers on MNIST / Fashion-MNIST."""

from __future__ import annotations

import argparse

__all__ = ["register"]


class _DefaultsHelp(argparse.ArgumentDefaultsHelpFormatter):
    # Every default in --help; options whose default is "not given" (None) say in
    # their own words what happens then.
    def _get_help_string(self, action: argparse.Action) -> str | None:
        return action.help if action.default is None else super()._get_help_string(action)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``classify`` sub-command."""
    p = subparsers.add_parser("classify", help="train a scattering classifier; write test accuracy, "
                                               "confusion matrix (JSON + PNG) and metrics.json",
                              formatter_class=_DefaultsHelp)
    p.add_argument("--dataset", choices=("mnist", "fashion-mnist"), default="mnist", help="data set")
    p.add_argument("--model", choices=("scattering-linear", "scattering-svm", "sparse-scattering"),
                   default="scattering-linear", help="classifier")
    p.add_argument("--train-size", type=int, default=None, help="random training subset (default: all of it)")
    p.add_argument("--test-size", type=int, default=None, help="first N test images (default: all of them)")
    p.add_argument("--epochs", type=int, default=10, help="epochs of the sparse cascade")
    p.add_argument("--augment", type=int, default=0, metavar="K",
                   help="sparse cascade: K augmented copies of the training set (shifts; flips for "
                        "fashion-mnist; rotations and elastic deformations for mnist)")
    p.add_argument("--test-flip", action="store_true",
                   help="sparse cascade: average the predictions of each test image and its mirror image")
    p.add_argument("--test-augment", type=int, default=0, metavar="K",
                   help="sparse cascade: also average the predictions of K augmented copies of each test image")
    p.add_argument("--n-proj", type=int, default=None, help="sparse cascade: projection channels (default: the estimator's, 64)")
    p.add_argument("--n-atoms", type=int, default=None, help="sparse cascade: dictionary atoms (default: the estimator's, 256)")
    p.add_argument("--n-steps", type=int, default=None, help="sparse cascade: unrolled ISTC steps (default: the estimator's, 3)")
    p.add_argument("--label-smoothing", type=float, default=None,
                   help="sparse cascade: label smoothing of the cross-entropy (default: the estimator's, 0)")
    p.add_argument("--ensemble", type=int, default=None, metavar="K",
                   help="sparse cascade: average the probabilities of K cascades of seeds seed..seed+K-1 "
                        "(default: 1); metrics.json also gives each member's error")
    p.add_argument("--views", nargs="+", type=_view, default=None, metavar="SIZE:OFFSET",
                   help="sparse cascade: member m fits the images translated by OFFSET pixels on a "
                        "SIZE x SIZE canvas of view m mod (number of views), a scattering sampled on "
                        "another grid (e.g. 28:0 32:-2 for MNIST; default: one view, the images as they are)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="sparse cascade: train N ensemble members at once, one process and thread each (default: 1)")
    p.add_argument("--device", default="cpu",
                   help="torch device of the scattering and the sparse cascade, e.g. cuda")
    p.add_argument("--validation-size", type=int, default=None, metavar="N",
                   help="model selection: evaluate on N held-out training images instead of the test set "
                        "(default: evaluate on the test set)")
    p.add_argument("--J", type=int, default=3, help="scattering scales")
    p.add_argument("--L", type=int, default=8, help="scattering angles")
    p.add_argument("--seed", type=int, default=0, help="seed of the subsets, augmentation and training")
    p.add_argument("--data-dir", default=None, help="directory of the IDX files (default: the data set's own source)")
    p.add_argument("--no-cache", action="store_true", help="do not cache scattering features on disk")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="progress bars")
    p.add_argument("--out", required=True, help="output directory (a killed sparse run resumes from it)")
    p.set_defaults(func=_run)


def _view(text: str) -> tuple[int, int]:
    try:
        size, offset = text.split(":")
        return int(size), int(offset)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a view is SIZE:OFFSET in pixels, e.g. 32:-2; got {text!r}") from None


def _run(args: argparse.Namespace) -> int:
    from wavephase.experiments.classification import run_classification
    from wavephase.experiments.outputs import prepare_output_dir

    sparse_only = {"--n-proj": args.n_proj, "--n-atoms": args.n_atoms, "--n-steps": args.n_steps,
                   "--label-smoothing": args.label_smoothing, "--ensemble": args.ensemble,
                   "--workers": args.workers, "--views": args.views}
    given = [flag for flag, value in sparse_only.items() if value is not None]
    if given and args.model != "sparse-scattering":
        raise ValueError(f"{', '.join(given)} apply to --model sparse-scattering only.")
    prepare_output_dir(args.out, "--out")
    m = run_classification(
        args.dataset, args.model, args.out, train_size=args.train_size, test_size=args.test_size,
        validation_size=args.validation_size, augment=args.augment, test_flip=args.test_flip,
        test_augment=args.test_augment, epochs=args.epochs, J=args.J, L=args.L, random_state=args.seed,
        device=args.device, data_path=args.data_dir, cache_features=not args.no_cache, progress=args.progress,
        model_params={k: v for k, v in (("n_proj", args.n_proj), ("n_atoms", args.n_atoms), ("n_steps", args.n_steps),
                                        ("label_smoothing", args.label_smoothing), ("ensemble", args.ensemble),
                                        ("n_jobs", args.workers), ("views", args.views))
                      if v is not None},
    )
    print(f"{m['dataset']} {m['model']} train_size={m['train_size']}: {m['evaluated_on']} accuracy "
          f"{100 * m['test_accuracy']:.2f}% (error {100 * m['test_error']:.2f}%), {m['seconds']:.1f} s; "
          f"results in {args.out}")
    return 0
