"""``wavephase synth``: maximum-entropy synthesis of Ising, turbulence or image textures, with figures."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``synth`` sub-command."""
    p = subparsers.add_parser(
        "synth",
        help="synthesise fields from wavelet phase harmonic moments; write target/synthesis/Gaussian "
        "figures, spectra, PDFs, metrics.json and metrics.txt",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--field", required=True,
                   help="'ising' (critical 2D Ising), 'turbulence' (2D vorticity) or a PNG/JPEG texture path")
    p.add_argument("--size", type=int, default=None,
                   help="field side (None: 64 for ising, 128 for turbulence and images)")
    p.add_argument("--samples", type=int, default=None,
                   help="number of syntheses (None: 4 ising, 2 turbulence, 1 image)")
    p.add_argument("--targets", type=int, default=None,
                   help="number of target fields whose moments are matched (None: --samples, at least 64 for ising)")
    p.add_argument("--heldout", type=int, default=None,
                   help="number of held-out true fields (None: max(samples, 8))")
    p.add_argument("--steps", type=int, default=None, help="L-BFGS iterations (None: 200, 150 turbulence)")
    p.add_argument("--statistics", choices=("phase-harmonics", "scattering-covariance", "gaussian"),
                   default="phase-harmonics", help="moment model")
    p.add_argument("--seed", type=int, default=0, help="seed of the simulations and syntheses")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (1 is faster than 2 for these small operations on a busy machine)")
    p.add_argument("--device", default="cpu", help="torch device of the simulations and syntheses, e.g. cuda")
    p.add_argument("--out", required=True, help="output directory (a rerun resumes from its checkpoint)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="show progress bars")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from wavephase.experiments.synthesis import run_synthesis

    m = run_synthesis(args.field, args.out, size=args.size, n_samples=args.samples, steps=args.steps,
                      random_state=args.seed, statistics=args.statistics, n_targets=args.targets,
                      n_heldout=args.heldout, threads=args.threads, device=args.device, progress=args.progress)
    print(f"{m['field']} {m['size']}x{m['size']}: {m['n_samples']} syntheses in {m['seconds']['synthesis']:.1f} s "
          f"({m['steps_done']} steps); figures, metrics.json and metrics.txt in {args.out}")
    with open(f"{args.out}/metrics.txt") as fh:
        print(fh.read(), end="")
    return 0
