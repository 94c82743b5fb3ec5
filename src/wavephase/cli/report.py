"""``wavephase report``: a tour of all models on real data, as an HTML page."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``report`` sub-command."""
    p = subparsers.add_parser("report", help="run every application and write DIR/index.html")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="quick", action="store_true", default=True,
                      help="small default sizes, ~10 minutes on 2 cores (default)")
    size.add_argument("--full", dest="quick", action="store_false", help="paper sizes (hours)")
    p.add_argument("--only", nargs="+", metavar="SECTION", help="run only these sections")
    p.add_argument("--out", required=True, help="output directory")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from wavephase.report import build_report

    page = build_report(args.out, quick=args.quick, only=args.only)
    print(f"report written: {page.resolve()}")
    return 0
