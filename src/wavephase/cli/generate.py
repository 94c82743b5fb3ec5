"""``wavephase generate``: generative scattering network on MNIST, Fashion-MNIST or polygons."""

from __future__ import annotations

import argparse

from wavephase.cli._options import (add_command, add_count, add_device, add_out, add_progress, add_seed,
                                    add_workers, api_kwargs)

__all__ = ["register", "API"]

#: Each flag's keyword of :func:`~wavephase.experiments.generation.run_generation`.
API: dict[str, str] = {
    "dataset": "dataset", "train_size": "train_size", "test_size": "test_size", "epochs": "epochs",
    "vae_epochs": "vae_epochs", "prior": "prior", "prior_components": "prior_components", "n_components": "n_components", "samples": "n_fsd", "seed": "random_state",
    "device": "device", "progress": "progress", "quick": "quick",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``generate`` sub-command."""
    p = add_command(subparsers, "generate", "train a generative scattering network", _run,
                    description="Trains the network and its baselines (a Gaussian of pixels, a VAE); writes "
                                "reconstructions, interpolations, samples, refinements and metrics.json. A killed "
                                "run resumes from its checkpoints when started again.",
                    uses_cache=True)
    p.add_argument("--dataset", choices=("mnist", "fashion-mnist", "polygons"), required=True, help="images")
    add_count(p, "--train-size", "training images (default: 40,000 digits or clothes, 20,000 polygons of 64 x 64)",
              aliases=("--n-train",))
    add_count(p, "--test-size", "test images", default=2000, aliases=("--n-test",))
    p.add_argument("--epochs", type=int, default=8, help="decoder epochs")
    p.add_argument("--vae-epochs", type=int, default=None,
                   help="epochs of the VAE baseline (default: EPOCHS + 6, at least our model's training time)")
    p.add_argument("--prior", choices=("mixture", "gaussian"), default="mixture",
                   help="model of the codes that samples are drawn from: a Gaussian mixture fitted to the training "
                        "codes, or white noise N(0, I) as in Angles & Mallat")
    p.add_argument("--prior-components", type=int, default=None,
                   help="components of the mixture prior (default: 50, at most one per 100 training images)")
    p.add_argument("--n-components", type=int, default=256, help="whitened dimensions")
    add_count(p, "--samples", "images each model generates for the Frechet scattering distance", default=2000,
              aliases=("--n-fsd",))
    add_seed(p, "the data, the training and the sampling")
    add_workers(p, "torch threads of the training (default: torch's own choice)", default=None)
    add_device(p, "both trainings")
    p.add_argument("--checkpoint", default=None,
                   help="checkpoint file (default: OUT/checkpoint.pt; the VAE's beside it); resumed if present")
    p.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test); overrides the sizes above")
    add_progress(p)
    add_out(p, "output folder (a killed run resumes from the checkpoints there)")


def _run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import torch

    from wavephase.experiments.generation import run_generation

    checkpoint = args.checkpoint if args.checkpoint is not None else Path(args.out) / "checkpoint.pt"
    previous = torch.get_num_threads()
    if args.workers is not None:
        torch.set_num_threads(args.workers)
    try:
        m = run_generation(out_dir=args.out, checkpoint=checkpoint, **api_kwargs(args, API))
    finally:
        torch.set_num_threads(previous)
    print(f"{args.dataset}: PSNR train {m['psnr_train']:.2f} dB, test {m['psnr_test']:.2f} dB; FSD samples "
          f"{m['fsd_samples']:.2f}, Gaussian {m['fsd_gaussian_baseline']:.2f}, VAE {m['fsd_vae_baseline']:.2f}; "
          f"{m['sample_score_name']}: {m['sample_score']:.3f}, Gaussian {m['sample_score_gaussian']:.3f}, "
          f"VAE {m['sample_score_vae']:.3f}, real {m['sample_score_train']:.3f}; figures and metrics.json in {args.out}")
    return 0
