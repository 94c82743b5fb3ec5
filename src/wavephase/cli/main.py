"""The ``wavephase`` command: one sub-command per application.

Each sub-command lives in its own module of this package and exposes
``register(subparsers)``, which adds its parser with
:func:`wavephase.cli._options.add_command` (the one grammar of shared flags,
``--help`` with every default) and the function that runs it. Modules keep their
heavy imports inside that function so that ``wavephase --help`` stays fast.
A ``--recipe`` stands for a set of flags; flags given explicitly win.

A user mistake (a bad argument, an unusable ``--out``, a missing optional
dependency, no CUDA device, a corrupt or stale file) prints one line on stderr
and exits with code 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import textwrap
import traceback
from typing import NoReturn, Sequence

from wavephase.cli._options import HelpFormatter, apply_recipe, check_before_work
from wavephase.exceptions import WavephaseError

__all__ = ["main", "build_parser", "USER_ERRORS"]

# Sub-command modules of wavephase.cli, in the order --help lists them.
SUBCOMMANDS: tuple[str, ...] = ("report", "scatter", "generate", "classify", "qm9", "synth")

#: Errors that report a mistake of the user or a state of the machine, not a bug:
#: one line and exit code 2.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, TypeError, OSError, WavephaseError)


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (with where to find help), exit code 2."""

    def error(self, message: str) -> NoReturn:
        """Print ``message`` on one line and exit with code 2."""
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every sub-command registered.

    Returns
    -------
    argparse.ArgumentParser
        The top-level parser.
    """
    parser = OneLineParser(
        prog="wavephase",
        description=textwrap.fill("Multiscale wavelet models: scattering, phase harmonics, and their applications. "
                                  "Every sub-command writes metrics.json into --out; see wavephase COMMAND --help.",
                                  100),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    subparsers.required = True
    for name in SUBCOMMANDS:
        importlib.import_module(f"wavephase.cli.{name}").register(subparsers)
    for sub in subparsers.choices.values():
        # Also after the sub-command; SUPPRESS keeps the top-level value when absent here.
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                         help="show the full traceback of an error")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``wavephase`` command line.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; defaults to ``sys.argv[1:]``.

    Returns
    -------
    int
        Process exit status: 0 success, 2 a user mistake, 1 an internal error, 130 interrupted.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = apply_recipe(parser, parser.parse_args(argv), argv)
    prog = f"wavephase {args.command}"
    try:
        check_before_work(args)
        status = args.func(args)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except USER_ERRORS as err:
        if args.debug:
            traceback.print_exc()
        else:
            print(f"{prog}: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except Exception as err:  # a bug: still one line, with how to see more
        if args.debug:
            traceback.print_exc()
        else:
            print(f"{prog}: internal error: {type(err).__name__}: {_one_line(err)} (rerun with --debug for the "
                  f"traceback and please report it)", file=sys.stderr)
        return 1
    return int(status or 0)


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    if isinstance(err, OSError) and err.filename is not None and str(err.filename) not in text:
        text = f"{text}: {err.filename}"
    return text


if __name__ == "__main__":
    sys.exit(main())
