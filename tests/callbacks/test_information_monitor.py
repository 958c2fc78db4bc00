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
        test_data=(x, y), encoder_epochs=1, cache_dir=str(tmp_path), schedule=[1]
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
        assert math.isfinite(history[f"test_{name}"][-1]), name
    z = to_numpy(keras.Model(model.input, model.get_layer("features").output)(x))
    np.testing.assert_allclose(
        monitor.latest["test_nhsic_zx"], information.normalized_hsic(z, x), rtol=1e-4
    )
    kde = information.kde_mutual_information(z, y, num_references=60)
    np.testing.assert_allclose(monitor.latest["test_kde_zy"], kde["zy"], rtol=1e-4)
    assert len(list(tmp_path.iterdir())) == 1  # the cached autoencoder


def test_a_subset_of_estimators_logs_only_its_figures():
    model, x, y = _setup(1)
    monitor = InformationPlaneMonitor(
        test_data=(x, y), estimators=("kde",), schedule=[1]
    )
    assert monitor.metric_names == ("test_kde_zx", "test_kde_zy", "test_kde_zx_given_y")
    model.fit(x, y, epochs=1, callbacks=[monitor], verbose=0)
    assert set(monitor.latest) == {"step", *monitor.metric_names}


def test_one_estimator_may_be_named_by_a_plain_string():
    _, x, y = _setup()
    monitor = InformationPlaneMonitor(train_data=(x, y), estimators="nhsic")
    assert monitor.metric_names == ("train_nhsic_zx", "train_nhsic_zy")


def test_bad_arguments_raise():
    model, x, y = _setup()
    with pytest.raises(ValueError, match="estimators must be one or more of"):
        InformationPlaneMonitor((x, y), estimators=("mine",))
    with pytest.raises(ValueError, match="labels must lie in"):
        InformationPlaneMonitor((x, y), num_classes=2)
    with pytest.raises(ValueError, match="needs train_data, test_data or both"):
        InformationPlaneMonitor()
    monitor = InformationPlaneMonitor((x, y), layer="nope", estimators=("kde",))
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        model.fit(x, y, epochs=1, callbacks=[monitor], verbose=0)
