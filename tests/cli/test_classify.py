"""``wavephase classify --recipe``: the recipe's settings, explicit flags over them, both in metrics.json."""

from __future__ import annotations

import json

import numpy as np
import pytest

from wavephase.cli.main import main
from wavephase.experiments import classification as experiment
from wavephase.experiments.recipes import CLASSIFICATION_RECIPES

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _digits(name, data_path=None):
    """Stand-in for load_dataset: 60 training and 20 test noisy bars of three classes, 28x28."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 80)
    x = rng.uniform(0, 0.2, (80, 28, 28)).astype(np.float32)
    x[y == 0, 12:16, :] = 1
    x[y == 1, :, 12:16] = 1
    return x[:60], y[:60], x[60:], y[60:]


def test_recipe_run_records_the_recipe_and_what_was_overridden(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(experiment, "load_dataset", _digits)
    out = tmp_path / "out"
    assert main(["classify", "--recipe", "mnist-best", "--epochs", "1", "--augment", "1", "--n-proj", "4",
                 "--n-atoms", "8", "--workers", "1", "--J", "2", "--L", "2", "--no-cache",
                 "--no-progress", "--out", str(out)]) == 0
    assert "sparse-scattering" in capsys.readouterr().out
    m = json.loads((out / "metrics.json").read_text())
    assert m["recipe"]["name"] == "mnist-best"
    assert m["recipe"]["settings"] == json.loads(json.dumps(CLASSIFICATION_RECIPES["mnist-best"]))
    assert m["recipe"]["overridden"] == {"epochs": 1, "augment": 1,
                                         "model_params": {"n_proj": 4, "n_atoms": 8, "n_jobs": 1}}
    # what the recipe kept: its two views (one per member), its label smoothing
    assert m["params"]["views"] == [[28, 0], [32, -2]] and m["params"]["label_smoothing"] == 0.1
    assert len(m["member_test_errors"]) == 2
    assert m["model"] == "sparse-scattering" and m["augment"] == 1


def test_a_run_without_recipe_records_none(tmp_path, monkeypatch):
    monkeypatch.setattr(experiment, "load_dataset", _digits)
    assert main(["classify", "--J", "2", "--L", "2", "--no-cache", "--no-progress", "--out", str(tmp_path)]) == 0
    assert "recipe" not in json.loads((tmp_path / "metrics.json").read_text())
