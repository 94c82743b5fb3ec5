"""One grammar: the same flag for the same idea in every sub-command, recipes, defaults in --help."""

from __future__ import annotations

import argparse
import inspect

import pytest

from wavephase.cli import classify, generate, qm9, scatter, synth
from wavephase.cli._options import add_command, apply_recipe
from wavephase.cli.main import build_parser, main
from wavephase.experiments.classification import run_classification
from wavephase.experiments.generation import run_generation
from wavephase.experiments.qm9 import run_qm9
from wavephase.experiments.recipes import CLASSIFICATION_RECIPES, SYNTHESIS_RECIPES
from wavephase.experiments.scattering_demo import run_scattering_demo
from wavephase.experiments.synthesis import run_synthesis
from wavephase.models.sparse_classifier import SparseScatteringClassifier

SHARED = ("--out", "--seed", "--device", "--workers", "--progress", "--train-size", "--test-size", "--size",
          "--samples", "--recipe")
# The flag table of the README and the user guide: which shared flags each sub-command takes.
TABLE = {
    "scatter": {"--out", "--seed", "--device", "--size"},
    "synth": {"--out", "--seed", "--device", "--workers", "--progress", "--train-size", "--test-size", "--size",
              "--samples", "--recipe"},
    "classify": {"--out", "--seed", "--device", "--workers", "--progress", "--train-size", "--test-size",
                 "--recipe"},
    "qm9": {"--out", "--seed", "--device", "--workers", "--progress", "--train-size"},
    "generate": {"--out", "--seed", "--device", "--workers", "--progress", "--train-size", "--test-size",
                 "--samples"},
    "report": {"--out"},
}
# Earlier spellings (in recorded commands) that still parse, hidden from --help.
ALIASES = {"generate": {"--n-train": "train_size", "--n-test": "test_size", "--n-fsd": "samples"},
           "synth": {"--targets": "train_size", "--heldout": "test_size", "--threads": "workers"},
           "classify": {"--jobs": "workers"}}
MODULES = {"scatter": (scatter, run_scattering_demo), "synth": (synth, run_synthesis),
           "classify": (classify, run_classification), "qm9": (qm9, run_qm9), "generate": (generate, run_generation)}
BASE = {"scatter": [], "synth": ["--field", "ising"], "classify": [], "qm9": [], "generate": ["--dataset", "mnist"],
        "report": []}


def _commands() -> dict[str, argparse.ArgumentParser]:
    return next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices


def _main_args(argv: list[str]) -> argparse.Namespace:
    """The arguments ``main`` runs with: parsed, with the recipe applied."""
    parser = build_parser()
    return apply_recipe(parser, parser.parse_args(argv), argv)


def _visible(sub: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {s: a for a in sub._actions if a.help != argparse.SUPPRESS for s in a.option_strings}


def test_each_subcommand_takes_the_shared_flags_of_the_table():
    for name, sub in _commands().items():
        assert {flag for flag in _visible(sub) if flag in SHARED} == TABLE[name], name


def test_a_shared_flag_has_one_type_default_and_dest_everywhere():
    seen: dict[str, set] = {}
    for sub in _commands().values():
        for flag, action in _visible(sub).items():
            if flag in ("--seed", "--device", "--progress", "--out"):
                seen.setdefault(flag, set()).add((action.dest, action.type, action.default, type(action).__name__,
                                                  action.required))
            elif flag in SHARED and flag != "--recipe":
                seen.setdefault(flag, set()).add((action.dest, action.type, action.metavar))
    assert all(len(kinds) == 1 for kinds in seen.values()), seen
    assert seen["--seed"] == {("seed", int, 0, "_StoreAction", False)}
    assert seen["--device"] == {("device", None, "cpu", "_StoreAction", False)}


def test_earlier_spellings_parse_to_the_new_flags_and_are_hidden():
    parser = build_parser()
    for cmd, aliases in ALIASES.items():
        help_text = _commands()[cmd].format_help()
        for alias, dest in aliases.items():
            args = parser.parse_args([cmd, *BASE[cmd], alias, "7", "--out", "x"])
            assert getattr(args, dest) == 7, alias
            assert alias not in help_text, alias


@pytest.mark.parametrize("cmd", sorted(MODULES))
def test_every_flag_reaches_a_parameter_of_the_driver(cmd):
    module, driver = MODULES[cmd]
    parameters = inspect.signature(driver).parameters
    dests = {a.dest for a in _commands()[cmd]._actions}
    for dest, key in module.API.items():
        assert dest in dests, dest
        assert key.partition(".")[0] in parameters, key


def test_recipes_are_keyword_arguments_of_their_drivers():
    for recipes, driver in ((CLASSIFICATION_RECIPES, run_classification), (SYNTHESIS_RECIPES, run_synthesis)):
        for name, settings in recipes.items():
            assert set(settings) <= set(inspect.signature(driver).parameters), name
    hyper = SparseScatteringClassifier().get_params()
    for settings in CLASSIFICATION_RECIPES.values():
        assert set(settings.get("model_params", {})) <= set(hyper)


def test_mnist_best_is_the_documented_thirteen_flags():
    parser = build_parser()
    documented = parser.parse_args(
        "classify --dataset mnist --model sparse-scattering --epochs 50 --augment 8 --label-smoothing 0.1 "
        "--n-proj 128 --n-atoms 512 --ensemble 2 --jobs 2 --views 28:0 32:-2 --out runs/ms".split())
    recipe = _main_args(["classify", "--recipe", "mnist-best", "--out", "runs/ms"])
    assert {**vars(recipe), "recipe": None} == vars(documented)
    fashion = parser.parse_args(
        "classify --dataset fashion-mnist --model sparse-scattering --epochs 40 --augment 2 --test-flip "
        "--n-proj 128 --n-atoms 384 --out runs/fs".split())
    assert {**vars(_main_args(["classify", "--recipe", "fashion-best", "--out", "runs/fs"])), "recipe": None} == \
        vars(fashion)


@pytest.mark.parametrize("argv", [
    ["classify", "--epochs", "3", "--recipe", "mnist-best", "--out", "x"],
    ["classify", "--recipe", "mnist-best", "--epochs", "3", "--out", "x"],
])
def test_explicit_flags_win_over_the_recipe_wherever_they_are(argv):
    args = _main_args(argv)
    assert (args.epochs, args.augment, args.views) == (3, 8, [(28, 0), (32, -2)])
    args = _main_args(["classify", "--recipe", "fashion-best", "--no-test-flip", "--model", "sparse-scattering",
                      "--out", "x"])
    assert (args.test_flip, args.epochs) == (False, 40)
    args = _main_args(["synth", "--recipe", "ising-128", "--targets", "5", "--out", "x"])
    assert (args.field, args.size, args.train_size, args.test_size) == ("ising", 128, 5, 1024)


def test_help_lists_each_recipe_as_flags(capsys):
    for cmd, recipes in (("classify", CLASSIFICATION_RECIPES), ("synth", SYNTHESIS_RECIPES)):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        for name in recipes:
            assert name in text
    assert ("mnist-best --dataset mnist --model sparse-scattering --epochs 50 --augment 8 --label-smoothing 0.1 "
            "--n-proj 128 --n-atoms 512 --ensemble 2 --workers 2 --views 28:0 32:-2") in " ".join(
                _commands()["classify"].format_help().split())
    assert "--test-flip --n-proj 128 --n-atoms 384" in _commands()["classify"].format_help()
    assert "ising-128 --field ising --size 128 --samples 8 --train-size 1024 --test-size 1024 --steps 500" in \
        " ".join(_commands()["synth"].format_help().split())


def test_an_unknown_recipe_is_one_line_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["classify", "--recipe", "mnist-worst", "--out", "x"])
    assert exc.value.code == 2 and "invalid choice: 'mnist-worst'" in capsys.readouterr().err


def test_a_summary_is_one_short_line():
    subparsers = argparse.ArgumentParser().add_subparsers()
    with pytest.raises(ValueError, match="one line of at most 54"):
        add_command(subparsers, "x", "a summary far too long to stay on one line of wavephase --help", print)
