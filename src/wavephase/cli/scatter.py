"""``wavephase scatter``: scattering of a real image, with figures."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``scatter`` sub-command."""
    p = subparsers.add_parser("scatter", help="scatter a real image; write wavelets, coefficients, "
                                              "deformation-stability figures and metrics.json")
    p.add_argument("--image", default="grace_hopper",
                   help="sample image name (grace_hopper, terrain) or path to a PNG/JPEG file")
    p.add_argument("--size", type=int, default=256, help="side of the square image (default 256)")
    p.add_argument("--J", type=int, default=4, help="number of scales (default 4)")
    p.add_argument("--L", type=int, default=8, help="number of angles (default 8)")
    p.add_argument("--out", required=True, help="output directory")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from wavephase.experiments.scattering_demo import run_scattering_demo

    metrics = run_scattering_demo(args.out, image=args.image, size=args.size, J=args.J, L=args.L)
    print(f"{metrics['channels']} channels, output {metrics['output_shape']}, "
          f"forward {metrics['forward_seconds']:.3f} s; figures and metrics.json in {args.out}")
    return 0
