"""recipe_record: what a run records about the recipe it started from."""

from __future__ import annotations

import pytest

from wavephase.experiments.recipes import CLASSIFICATION_RECIPES, SYNTHESIS_RECIPES, recipe_record


def test_the_recipe_itself_overrides_nothing():
    for recipes in (CLASSIFICATION_RECIPES, SYNTHESIS_RECIPES):
        for name, settings in recipes.items():
            assert recipe_record(name, recipes, dict(settings)) == {"name": name, "settings": settings,
                                                                    "overridden": {}}


def test_differences_are_recorded_in_the_shape_of_the_settings():
    settings = CLASSIFICATION_RECIPES["mnist-best"]
    used = {**settings, "epochs": 3, "J": 2,
            "model_params": {**settings["model_params"], "views": [[28, 0], [32, -2]], "n_atoms": 64, "n_steps": 2}}
    record = recipe_record("mnist-best", CLASSIFICATION_RECIPES, used)
    # lists and tuples compare alike; J is not a setting of the recipe; n_steps was added to it
    assert record["overridden"] == {"epochs": 3, "model_params": {"n_atoms": 64, "n_steps": 2}}
    missing = recipe_record("fashion-best", CLASSIFICATION_RECIPES, {})
    assert missing["overridden"]["model_params"] == {"n_proj": None, "n_atoms": None}


def test_no_recipe_and_unknown_recipes():
    assert recipe_record(None, SYNTHESIS_RECIPES, {}) is None
    with pytest.raises(ValueError, match="recipe must be one of"):
        recipe_record("ising-4096", SYNTHESIS_RECIPES, {})
