"""``wavephase synth``: maximum-entropy synthesis of Ising, turbulence or image textures, with figures."""

from __future__ import annotations

import argparse

from wavephase.cli._options import (add_command, add_count, add_device, add_out, add_progress, add_recipes,
                                    add_seed, add_workers, api_kwargs)
from wavephase.experiments.recipes import SYNTHESIS_RECIPES

__all__ = ["register", "API"]

#: Each flag's keyword of :func:`~wavephase.experiments.synthesis.run_synthesis`.
API: dict[str, str] = {
    "field": "field", "size": "size", "samples": "n_samples", "train_size": "n_targets", "test_size": "n_heldout",
    "steps": "steps", "statistics": "statistics", "seed": "random_state", "workers": "threads", "device": "device",
    "progress": "progress", "recipe": "recipe", "true_fields": "n_true",
    "two_level": "two_level",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``synth`` sub-command."""
    p = add_command(subparsers, "synth", "synthesise fields from wavelet phase harmonics", _run,
                    description="Matches the moments of target fields (Ising, turbulence or a texture) and "
                                "compares the syntheses and a Gaussian model with held-out true fields; writes "
                                "figures, spectra, PDFs, the syntheses (syntheses.npy), metrics.json and "
                                "metrics.txt. A killed run resumes "
                                "from --out when started again.",
                    uses_cache=True)
    p.add_argument("--field", default=None,
                   help="'ising' (critical 2D Ising), 'turbulence' (2D vorticity) or the path of a PNG/JPEG "
                        "texture or a .npy field "
                        "(required unless a recipe gives it)")
    add_count(p, "--size", "field side (default: 64 for ising, 128 for turbulence, an image's own size)")
    add_count(p, "--samples", "syntheses drawn (default: 4 ising, 2 turbulence, 1 image)")
    add_count(p, "--train-size", "target fields whose moments are matched (default: --samples, at least 64 for "
                                 "ising)", aliases=("--targets",))
    add_count(p, "--test-size", "held-out true fields the syntheses are compared with (default: max(samples, 8))",
              aliases=("--heldout",))
    add_count(p, "--true-fields", "other true fields scored against the held-out ones beside the syntheses: the "
                                  "spread below which no error can be judged (default: --samples; images: none)")
    p.add_argument("--steps", type=int, default=None, help="L-BFGS iterations (default: 200, 150 turbulence)")
    p.add_argument("--statistics", choices=("phase-harmonics", "scattering-covariance", "gaussian"),
                   default="phase-harmonics", help="moment model")
    p.add_argument("--two-level", nargs="+", type=float, default=None, metavar="W",
                   help="weights of the stages (100 L-BFGS steps each, after --steps) that make syntheses of a "
                        "two-valued field (spins) two-valued, e.g. 0.01 0.1 1 10 (default: none)")
    add_seed(p, "the simulations and syntheses (held-out fields: seed + 1)")
    add_workers(p, "torch threads (1 is faster than 2 for these small operations on a busy machine)",
                default=1, aliases=("--threads",))
    add_device(p, "the simulations and syntheses")
    add_progress(p)
    add_out(p, "output folder (a killed run resumes from its checkpoint there)")
    add_recipes(p, SYNTHESIS_RECIPES, API)


def _run(args: argparse.Namespace) -> int:
    from wavephase.experiments.synthesis import run_synthesis

    if args.field is None:
        raise ValueError("give --field (ising, turbulence or a PNG/JPEG or .npy path) or a --recipe.")
    m = run_synthesis(out_dir=args.out, **api_kwargs(args, API))
    print(f"{m['field']} {m['size']}x{m['size']}: {m['n_samples']} syntheses in {m['seconds']['synthesis']:.1f} s "
          f"({m['steps_done']} steps); figures, syntheses.npy, metrics.json and metrics.txt in {args.out}")
    with open(f"{args.out}/metrics.txt") as fh:
        print(fh.read(), end="")
    return 0
