"""``wavephase generate``: generative scattering network on MNIST, Fashion-MNIST or polygons."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``generate`` sub-command."""
    p = subparsers.add_parser(
        "generate",
        help="train a generative scattering network and its baselines; write reconstructions, "
        "interpolations, samples, refinements and metrics.json",
    )
    p.add_argument("--dataset", choices=("mnist", "fashion-mnist", "polygons"), required=True)
    p.add_argument("--out", required=True, help="output directory (a killed run resumes from its checkpoints)")
    # --n-train and --n-test are the earlier spellings, kept for the recorded commands.
    p.add_argument("--train-size", "--n-train", type=int, default=40000, help="training images (default 40000)")
    p.add_argument("--test-size", "--n-test", type=int, default=2000, help="test images (default 2000)")
    p.add_argument("--epochs", type=int, default=8, help="decoder epochs (default 8)")
    p.add_argument("--vae-epochs", type=int, default=None,
                   help="epochs of the VAE baseline (default EPOCHS + 4: at least our model's training time)")
    p.add_argument("--n-components", type=int, default=256, help="whitened dimensions (default 256)")
    p.add_argument("--n-fsd", type=int, default=2000, help="generated images per model for the FSD (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="seed of data, training and sampling (default 0)")
    p.add_argument("--device", default="cpu", help="torch device to train on, e.g. cuda (default cpu)")
    p.add_argument("--checkpoint", default=None,
                   help="checkpoint file (default OUT/checkpoint.pt; the VAE's beside it); resumed if present")
    p.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                   help="show progress bars (default on)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from wavephase.experiments.generation import run_generation

    checkpoint = args.checkpoint if args.checkpoint is not None else Path(args.out) / "checkpoint.pt"
    m = run_generation(
        args.dataset, args.out, train_size=args.train_size, test_size=args.test_size, epochs=args.epochs,
        n_components=args.n_components, n_fsd=args.n_fsd, vae_epochs=args.vae_epochs, random_state=args.seed,
        checkpoint=checkpoint, device=args.device, progress=args.progress, quick=args.quick,
    )
    print(f"{args.dataset}: PSNR train {m['psnr_train']:.2f} dB, test {m['psnr_test']:.2f} dB; FSD samples "
          f"{m['fsd_samples']:.2f}, Gaussian {m['fsd_gaussian_baseline']:.2f}, VAE {m['fsd_vae_baseline']:.2f}; "
          f"figures and metrics.json in {args.out}")
    return 0
