"""The default recipe really groks and collapses (slow: ~30 s on a 2-core CPU, JAX)."""

from pathlib import Path

import keras
import pytest

from keras_grok.experiments.recipe import load_recipe
from keras_grok.runs.run_folder import read_metrics

ROOT = Path(__file__).parents[2]


@pytest.mark.slow
@pytest.mark.skipif(keras.backend.backend() != "jax", reason="the JAX default recipe")
def test_default_modadd_recipe_groks(tmp_path):
    recipe = load_recipe(ROOT / "recipes" / "modadd.py")
    summary = recipe.run(dict(recipe.defaults), tmp_path, verbose=False)
    assert summary["final_test_accuracy"] >= 0.99
    assert summary["final_train_accuracy"] >= 0.99
    assert summary["generalized_at"] >= 2 * summary["memorized_at"]

    # Paper A: the test features collapse as the test accuracy rises. Measured
    # (seed 0, adaptive schedule): test_rnc1 ~0.3 while memorizing, below half
    # that by step 2,694, generalized at 4,244, 0.002 at the end.
    rows = [r for r in read_metrics(tmp_path / "metrics.csv") if "test_rnc1" in r]
    rows = [r for r in rows if r["test_rnc1"] == r["test_rnc1"]]  # measured steps
    plateau = max(
        r["test_rnc1"] for r in rows if 100 <= r["step"] <= summary["memorized_at"]
    )
    halved = next(
        r["step"]
        for r in rows
        if r["step"] > summary["memorized_at"] and r["test_rnc1"] <= plateau / 2
    )
    assert halved <= summary["generalized_at"]
    assert summary["final_test_rnc1"] < 0.1 * plateau
