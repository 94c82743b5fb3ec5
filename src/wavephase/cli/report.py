"""``wavephase report``: a tour of all models on real data, as an HTML page."""

from __future__ import annotations

import argparse

from wavephase.cli._options import add_command, add_out

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``report`` sub-command."""
    about = ("Runs each application at quick or full sizes and writes DIR/index.html and DIR/report.json. Each "
             "section's sizes, seeds and device are the report's own, so that pages compare from run to run.")
    p = add_command(subparsers, "report", "run every application; write an HTML report", _run, description=about,
                    uses_cache=True)
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="quick", action="store_true", default=True,
                      help="small sizes, about 10 minutes on 2 cores")
    size.add_argument("--full", dest="quick", action="store_false", default=argparse.SUPPRESS,
                      help="paper sizes (hours)")
    p.add_argument("--only", nargs="+", metavar="SECTION", help="run only these sections (default: all)")
    p.add_argument("--include", nargs="+", metavar="DIR", default=None,
                   help="add the earlier runs under each DIR (their metrics.json) as sections, labelled with their "
                        "command, commit, date and machine (default: none)")
    add_out(p, "output folder of the page, its figures and report.json")


def _run(args: argparse.Namespace) -> int:
    from wavephase.report import build_report

    page = build_report(args.out, quick=args.quick, only=args.only, include=args.include)
    print(f"report written: {page.resolve()}")
    return 0
