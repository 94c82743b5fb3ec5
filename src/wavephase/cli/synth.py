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
    )
    p.add_argument("--field", required=True,
                   help="'ising' (critical 2D Ising), 'turbulence' (2D vorticity) or a PNG/JPEG texture path")
    p.add_argument("--size", type=int, default=None,
                   help="field side (default: 64 for ising, 128 for turbulence and images)")
    p.add_argument("--samples", type=int, default=None,
                   help="number of syntheses (default: 4 ising, 2 turbulence, 1 image)")
    p.add_argument("--targets", type=int, default=None,
                   help="number of target fields whose moments are matched (default: --samples, at least 64 for ising)")
    p.add_argument("--heldout", type=int, default=None,
                   help="number of held-out true fields (default: max(samples, 8))")
    p.add_argument("--steps", type=int, default=None, help="L-BFGS iterations (default: 200, 150 turbulence)")
    p.add_argument("--statistics", choices=("phase-harmonics", "scattering-covariance", "gaussian"),
                   default="phase-harmonics", help="moment model (default phase-harmonics)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default 1: faster than 2 for these small operations on a busy machine)")
    p.add_argument("--out", required=True, help="output directory (a rerun resumes from its checkpoint)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from wavephase.synthesis.run import run_synthesis

    m = run_synthesis(args.field, args.out, size=args.size, n_samples=args.samples, steps=args.steps,
                      seed=args.seed, statistics=args.statistics, n_targets=args.targets,
                      n_heldout=args.heldout, threads=args.threads,
                      progress=not args.no_progress)
    print(f"{m['field']} {m['size']}x{m['size']}: {m['n_samples']} syntheses in {m['seconds']['synthesis']:.1f} s "
          f"({m['steps_done']} steps); figures, metrics.json and metrics.txt in {args.out}")
    with open(f"{args.out}/metrics.txt") as fh:
        print(fh.read(), end="")
    return 0
