"""``wavephase scatter``: scattering of a real image, with figures."""

from __future__ import annotations

import argparse

from wavephase.cli._options import add_command, add_count, add_device, add_out, add_seed, api_kwargs

__all__ = ["register", "API"]

#: Each flag's keyword of :func:`~wavephase.experiments.scattering_demo.run_scattering_demo`.
API: dict[str, str] = {"image": "image", "size": "size", "J": "J", "L": "L", "seed": "random_state",
                       "device": "device"}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``scatter`` sub-command."""
    p = add_command(subparsers, "scatter", "scatter a real image, with figures", _run,
                    description="Writes the wavelets, the scattering coefficients, the deformation-stability "
                                "figure and metrics.json.")
    p.add_argument("--image", default="grace_hopper",
                   help="sample image name (grace_hopper, terrain) or path to a PNG/JPEG file")
    add_count(p, "--size", "side of the square image", default=256)
    p.add_argument("--J", type=int, default=4, help="scattering scales")
    p.add_argument("--L", type=int, default=8, help="scattering angles")
    add_seed(p, "the random deformations of the stability figure")
    add_device(p, "the timed scattering (the deformation study runs on the CPU, in float64)")
    add_out(p)


def _run(args: argparse.Namespace) -> int:
    from wavephase.experiments.scattering_demo import run_scattering_demo

    metrics = run_scattering_demo(args.out, **api_kwargs(args, API))
    print(f"{metrics['channels']} channels, output {metrics['output_shape']}, "
          f"forward {metrics['forward_seconds']:.3f} s; figures and metrics.json in {args.out}")
    return 0
