"""The default recipe really groks (slow: about a minute on a 2-core CPU, JAX only)."""

from pathlib import Path

import keras
import pytest

from keras_grok.recipe import load_recipe

ROOT = Path(__file__).parents[1]


@pytest.mark.slow
@pytest.mark.skipif(keras.backend.backend() != "jax", reason="the JAX default recipe")
def test_default_modadd_recipe_groks(tmp_path):
    recipe = load_recipe(ROOT / "recipes" / "modadd.py")
    summary = recipe.run(dict(recipe.defaults), tmp_path, verbose=False)
    assert summary["final_test_accuracy"] >= 0.99
    assert summary["final_train_accuracy"] >= 0.99
    assert summary["generalized_at"] >= 2 * summary["memorized_at"]
