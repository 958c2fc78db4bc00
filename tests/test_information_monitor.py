"""InformationPlaneMonitor: figures in History, equal to the measures, errors."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from keras_grok.callbacks import InformationPlaneMonitor
from keras_grok.measures import information
from tests.testing import to_numpy


def _setup(seed=0, n=120):
    rng = np.random.default_rng(seed)
    y = np.concatenate([np.arange(3), rng.integers(0, 3, n - 3)]).astype("int32")
    x = ((rng.normal(size=(3, 5)) * 2)[y] + rng.normal(size=(n, 5))).astype("float32")
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((5,))
    h = keras.layers.Dense(6, activation="tanh", name="features")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3)(h))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model, x, y


def test_figures_reach_history_and_match_the_measures(tmp_path):
    model, x, y = _setup()
    monitor = InformationPlaneMonitor(
        (x, y), encoder_epochs=1, cache_dir=str(tmp_path), schedule=[1]
    )
    history = model.fit(x, y, epochs=1, callbacks=[monitor], verbose=0).history
    for name in (
        "nhsic_zx",
        "nhsic_zy",
        "mi_zx",
        "mi_zy",
        "kde_zx",
        "kde_zy",
        "kde_zx_given_y",
    ):
        assert math.isfinite(history[name][-1]), name
    z = to_numpy(keras.Model(model.input, model.get_layer("features").output)(x))
    np.testing.assert_allclose(
        monitor.latest["nhsic_zx"], information.normalized_hsic(z, x), rtol=1e-4
    )
    kde = information.kde_mutual_information(z, y, num_references=60)
    np.testing.assert_allclose(monitor.latest["kde_zy"], kde["zy"], rtol=1e-4)
    assert len(list(tmp_path.iterdir())) == 1  # the cached autoencoder


def test_a_subset_of_estimators_logs_only_its_figures():
    model, x, y = _setup(1)
    monitor = InformationPlaneMonitor((x, y), estimators=("kde",), schedule=[1])
    assert monitor.metric_names == ("kde_zx", "kde_zy", "kde_zx_given_y")
    model.fit(x, y, epochs=1, callbacks=[monitor], verbose=0)
    assert set(monitor.latest) == {"step", *monitor.metric_names}


def test_bad_arguments_raise():
    model, x, y = _setup()
    with pytest.raises(ValueError, match="estimators must be a non-empty subset"):
        InformationPlaneMonitor((x, y), estimators=("mine",))
    with pytest.raises(ValueError, match="labels must lie in"):
        InformationPlaneMonitor((x, y), num_classes=2)
    monitor = InformationPlaneMonitor((x, y), layer="nope", estimators=("kde",))
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        model.fit(x, y, epochs=1, callbacks=[monitor], verbose=0)
