"""The grammar every sub-command shares: one name, type and check per idea.

A sub-command declares the shared flags that apply to it and says, in its help,
what they mean there (what a worker is, what the seed draws); the names, types,
defaults and checks are made here only:

=================== ================================================================
``--out DIR``        output folder; checked (created, writable) before any heavy work
``--seed N``         the API's ``random_state``
``--device DEV``     the API's ``device``, checked before any work (no CUDA: one line)
``--workers N``      parallel work: processes or threads, as each sub-command says
``--progress``       progress bars, ``--no-progress`` to hide them
``--train-size N``   training examples (images, molecules, target fields)
``--test-size N``    evaluation examples (test images, held-out fields)
``--size N``         side of a square image or field
``--samples N``      samples drawn from a model
``--recipe NAME``    a named set of flags; flags given explicitly win
=================== ================================================================

:func:`check_before_work` checks these flags (and the cache folder, for the
sub-commands that use it) before a sub-command imports its driver.
"""

from __future__ import annotations

import argparse
import copy
import textwrap
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = [
    "HelpFormatter", "add_command", "add_count", "add_device", "add_out", "add_progress", "add_recipes",
    "add_seed", "add_workers", "api_kwargs", "apply_recipe", "check_before_work",
]

# Namespace attributes the grammar itself sets; never flags.
_USES_CACHE = "_uses_cache"
_RECIPES = "_recipes"


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Every default in ``--help``; descriptions and epilogs keep their line breaks.

    An option whose default is None ("not given") says in its own words what happens then.
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        return action.help if action.default is None else super()._get_help_string(action)


def add_command(subparsers: argparse._SubParsersAction, name: str, summary: str,
                run: Callable[[argparse.Namespace], int], *, description: str = "", uses_cache: bool = False
                ) -> argparse.ArgumentParser:
    """Add a sub-command: its one-line summary, its description and the function that runs it.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The ``wavephase`` sub-command registry.
    name : str
        Sub-command name.
    summary : str
        One line (at most 54 characters, so ``wavephase --help`` keeps it on one line).
    run : callable
        ``run(args) -> exit status``, called after :func:`check_before_work`.
    description : str
        More text for the sub-command's own ``--help``, after the summary.
    uses_cache : bool
        The sub-command reads or writes the wavephase cache, which is then checked first.

    Returns
    -------
    argparse.ArgumentParser
        The sub-command's parser.
    """
    if len(summary) > 54 or "\n" in summary:
        raise ValueError(f"the summary of {name!r} must be one line of at most 54 characters: {summary!r}")
    text = summary[0].upper() + summary[1:] + "." + (f"\n\n{textwrap.fill(description, 100)}" if description else "")
    p = subparsers.add_parser(name, help=summary, description=text, formatter_class=HelpFormatter)
    p.set_defaults(func=run, **{_USES_CACHE: uses_cache})
    return p


def _add(p: argparse.ArgumentParser, flag: str, aliases: Sequence[str], **kwargs: Any) -> None:
    # The documented flag, then earlier spellings that still parse but are not shown.
    p.add_argument(flag, **kwargs)
    hidden = {k: v for k, v in kwargs.items() if k not in ("help", "default", "required", "metavar")}
    for alias in aliases:
        p.add_argument(alias, **hidden, dest=p._option_string_actions[flag].dest, default=argparse.SUPPRESS,
                       help=argparse.SUPPRESS)


def add_out(p: argparse.ArgumentParser, what: str = "output folder") -> None:
    """``--out DIR`` (required): ``what`` says what the folder receives and whether a rerun resumes from it."""
    p.add_argument("--out", required=True, metavar="DIR", help=what)


def add_seed(p: argparse.ArgumentParser, what: str) -> None:
    """``--seed N`` (default 0), the API's ``random_state``; ``what`` names what it draws."""
    p.add_argument("--seed", type=int, default=0, metavar="N", help=f"seed (random_state) of {what}")


def add_device(p: argparse.ArgumentParser, what: str) -> None:
    """``--device DEV`` (default cpu); ``what`` names what runs there."""
    p.add_argument("--device", default="cpu", metavar="DEV", help=f"torch device of {what}: cpu, cuda, cuda:1, ...")


def add_workers(p: argparse.ArgumentParser, what: str, default: int | None, aliases: Sequence[str] = ()) -> None:
    """``--workers N``: ``what`` says whether they are processes or threads, and of what."""
    _add(p, "--workers", aliases, type=int, default=default, metavar="N", help=what)


def add_progress(p: argparse.ArgumentParser) -> None:
    """``--progress/--no-progress`` (default on)."""
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="show progress bars")


def add_count(p: argparse.ArgumentParser, flag: str, what: str, default: int | None = None,
              aliases: Sequence[str] = ()) -> None:
    """A size or count (``--train-size``, ``--test-size``, ``--size``, ``--samples``): ``what`` it counts."""
    _add(p, flag, aliases, type=int, default=default, metavar="N", help=what)


def _as_flags(p: argparse.ArgumentParser, values: Mapping[str, Any]) -> list[str]:
    # The command-line spelling of parsed values (for --help), one "--flag value..." per dest.
    words = []
    for dest, value in values.items():
        action = next(a for a in p._actions if a.dest == dest and a.help != argparse.SUPPRESS)
        flag = next(s for s in action.option_strings if s.startswith("--"))
        if isinstance(action, argparse.BooleanOptionalAction):
            words.append(flag if value else "--no-" + flag[2:])
        elif isinstance(value, bool):
            words.append(flag)
        else:
            items = value if isinstance(value, list) else [value]
            words.append(" ".join([flag, *(":".join(map(str, v)) if isinstance(v, tuple) else str(v) for v in items)]))
    return words


def _wrap(name: str, words: list[str], width: int = 100) -> list[str]:
    # "  NAME  --flag value --flag value", broken between flags only.
    head = f"  {name:<15} "
    lines, line = [], head
    for word in words:
        if len(line) > len(head) and len(line) + len(word) > width:
            lines.append(line.rstrip())
            line = " " * len(head)
        line += word + " "
    return [*lines, line.rstrip()]


def add_recipes(p: argparse.ArgumentParser, recipes: Mapping[str, Mapping[str, Any]], api: Mapping[str, str]) -> None:
    """``--recipe NAME``: a named set of flags, listed at the end of ``--help``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The sub-command's parser, with every flag the recipes set already added.
    recipes : mapping
        Recipe name -> keyword arguments of the driver (see :mod:`wavephase.experiments.recipes`).
    api : mapping
        Flag dest -> the driver's keyword, as in :func:`api_kwargs`.
    """
    dest_of = {key: dest for dest, key in api.items()}
    as_flags: dict[str, dict[str, Any]] = {}
    for name, settings in recipes.items():
        values = as_flags[name] = {}
        for key, value in settings.items():
            # a dict-valued setting (model_params) holds one flag per key
            for inner, v in value.items() if isinstance(value, Mapping) else [(None, value)]:
                values[dest_of[key if inner is None else f"{key}.{inner}"]] = copy.deepcopy(v)
    p.add_argument("--recipe", choices=tuple(recipes), default=None, metavar="NAME",
                   help=f"start from a recipe: {', '.join(recipes)} (flags below; flags given explicitly win; "
                        f"default: none)")
    lines = ["recipes (--recipe NAME stands for these flags):"]
    for name, values in as_flags.items():
        lines += _wrap(name, _as_flags(p, values))
    p.epilog = "\n".join(lines)
    p.set_defaults(**{_RECIPES: as_flags})


def apply_recipe(parser: argparse.ArgumentParser, args: argparse.Namespace, argv: Sequence[str]
                 ) -> argparse.Namespace:
    """Parse ``argv`` again with the chosen recipe's values as defaults, so that explicit flags win.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The top-level parser.
    args : argparse.Namespace
        ``argv`` parsed once.
    argv : sequence of str
        The arguments (without the program name).

    Returns
    -------
    argparse.Namespace
        ``args`` itself without a recipe, else the new parse.
    """
    name = getattr(args, "recipe", None)
    if name is None:
        return args
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    commands.choices[args.command].set_defaults(**getattr(args, _RECIPES)[name])
    return parser.parse_args(argv)


def api_kwargs(args: argparse.Namespace, api: Mapping[str, str]) -> dict[str, Any]:
    """The driver's keyword arguments from the parsed flags.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed flags.
    api : mapping
        Flag dest -> the driver's keyword; ``"model_params.n_atoms"`` puts the value in
        the dict ``model_params`` under ``n_atoms``, and only when the flag was given (not None).

    Returns
    -------
    dict
        Keyword arguments.
    """
    kwargs: dict[str, Any] = {}
    for dest, key in api.items():
        value = getattr(args, dest)
        outer, _, inner = key.partition(".")
        if not inner:
            kwargs[key] = value
        elif value is not None:
            kwargs.setdefault(outer, {})[inner] = value
    return kwargs


def check_before_work(args: argparse.Namespace) -> None:
    """Check the shared flags a sub-command declared, the cache it uses and its ``--out``.

    Runs before the sub-command imports its driver or reads any data, so a mistake
    costs a second, not a computation.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed flags.

    Raises
    ------
    ValueError, TypeError
        A bad value (the message names the flag).
    wavephase.exceptions.DeviceUnavailableError
        ``--device`` names a CUDA device this machine does not have.
    """
    from wavephase.data.cache import cache_dir
    from wavephase.experiments.outputs import prepare_output_dir
    from wavephase.validation import check_device, check_positive_int, check_random_state

    if hasattr(args, "seed"):
        check_random_state(args.seed, "--seed")
    if getattr(args, "workers", None) is not None:
        check_positive_int(args.workers, "--workers")
    if hasattr(args, "device"):
        check_device(args.device, "--device")
    if getattr(args, _USES_CACHE):
        cache_dir()
    prepare_output_dir(args.out, "--out")
