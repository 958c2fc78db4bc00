"""ComplexityMonitor: figures in History, weights untouched, on every backend."""

import math

import keras
import numpy as np
import pytest

from keras_grok.callbacks import ComplexityMonitor, Schedule
from keras_grok.data.modular import modular_dataset
from keras_grok.measures import weight_codec
from keras_grok.models import modular_mlp
from tests.testing import to_numpy


@pytest.fixture(scope="module")
def split():
    return modular_dataset(11, "a+b", 0.5, seed=0)


def make_model():
    keras.utils.set_random_seed(0)
    model = modular_mlp(11, embed_dim=8, hidden=32)
    model.compile(
        keras.optimizers.Adam(1e-2),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def fit(model, split, callbacks):
    return model.fit(
        split.x_train,
        split.y_train,
        batch_size=16,
        epochs=4,
        shuffle=False,
        verbose=0,
        callbacks=callbacks,
    )


def test_figures_reach_history_and_are_nan_until_measured(split):
    data = (split.x_train, split.y_train)
    monitor = ComplexityMonitor(data, epsilons=(0.1, 1.0), schedule=Schedule((9,)))
    history = fit(make_model(), split, [monitor])
    names = {
        "complexity_bits",
        "complexity_bits_eps0.1",
        "complexity_bits_eps1",
        "complexity_threshold",
        "complexity_bin_size",
        "naive_bits",
        "compression_ratio",
        "spectral_entropy",
        "effective_rank",
    }
    assert names <= set(history.history)
    assert math.isnan(history.history["complexity_bits"][0])
    assert [r["step"] for r in monitor.records] == [9, 16]
    last = {name: history.history[name][-1] for name in names}
    assert all(math.isfinite(v) for v in last.values())
    assert last["complexity_bits"] == last["complexity_bits_eps0.1"]
    assert last["complexity_bits_eps1"] <= last["complexity_bits_eps0.1"]
    assert last["compression_ratio"] == pytest.approx(
        last["naive_bits"] / last["complexity_bits"]
    )
    assert last["naive_bits"] == 8 * weight_codec.naive_size(
        monitor.model.trainable_weights
    )
    assert 1.0 <= last["effective_rank"] <= 11


def test_measuring_mid_epoch_does_not_change_training(split):
    data = (split.x_train[:64], split.y_train[:64])
    measured = make_model()
    fit(measured, split, [ComplexityMonitor(data, schedule=Schedule((1, 3, 5)))])
    plain = make_model()
    fit(plain, split, [])
    for a, b in zip(measured.weights, plain.weights):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))


def test_bad_arguments_are_refused():
    data = (np.zeros((4, 2), "int32"), np.zeros(4, "int32"))
    with pytest.raises(ValueError, match="epsilons"):
        ComplexityMonitor(data, epsilons=(-1.0,))
    with pytest.raises(ValueError, match="as many labels"):
        ComplexityMonitor((np.zeros((4, 2)), np.zeros(3)))
    with pytest.raises(ValueError, match="Unknown codec"):
        ComplexityMonitor(data, codec="rar")


@pytest.mark.slow  # two tiny runs and their figures: ~20 s on JAX
def test_the_complexity_recipe_runs_both_settings_and_writes_one_figure(tmp_path):
    from pathlib import Path

    from keras_grok.experiments.recipe import load_recipe

    recipe = load_recipe(Path(__file__).parents[2] / "recipes" / "complexity.py")
    config = {
        **recipe.defaults,
        "p": 11,
        "train_fraction": 0.5,
        "embed_dim": 8,
        "hidden": 16,
        "batch_size": 32,
        "max_steps": 8,
        "schedule": "geometric:3",
        "complexity_schedule": "geometric:3",
    }
    recipe.validate(config)
    summary = recipe.run(config, tmp_path, verbose=False)
    assert (tmp_path / "figure.png").stat().st_size > 0
    for name in ("regularized", "unregularized"):
        assert (tmp_path / "runs" / name / "metrics.csv").exists()
        assert (
            summary[f"{name}_peak_complexity_bits"]
            >= (summary[f"{name}_final_complexity_bits"])
        )
    with pytest.raises(ValueError, match="weight_noise"):
        recipe.validate({**config, "weight_noise": -1.0})
