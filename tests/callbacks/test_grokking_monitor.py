"""GrokkingMonitor: measures at scheduled steps, exactly, on every backend."""

import math

import keras
import numpy as np
import pytest

from keras_grok.callbacks import GrokkingMonitor, Schedule
from keras_grok.data.modular import modular_dataset
from keras_grok.models import modular_mlp


def make_model(seed=0, lr=1e-2):
    keras.utils.set_random_seed(seed)
    model = modular_mlp(11, embed_dim=8, hidden=32)
    model.compile(
        keras.optimizers.SGD(lr),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


@pytest.fixture(scope="module")
def split():
    return modular_dataset(11, "a+b", 0.5, seed=0)


def train_and_test(split):
    return (split.x_train, split.y_train), (split.x_test, split.y_test)


@pytest.mark.parametrize("batch_size", [16, 10_000])
def test_measures_at_exactly_the_scheduled_steps(split, batch_size):
    model = make_model()
    steps = (1, 2, 3, 5, 8, 13, 21, 34)
    monitor = GrokkingMonitor(*train_and_test(split), schedule=Schedule(steps))
    epochs = 34 if batch_size > len(split.x_train) else 9
    model.fit(
        split.x_train,
        split.y_train,
        batch_size=batch_size,
        epochs=epochs,
        verbose=0,
        callbacks=[monitor],
    )
    total = epochs * math.ceil(len(split.x_train) / batch_size)
    expected = [s for s in steps if s <= total] + (
        [total] if total not in steps else []
    )
    assert [r["step"] for r in monitor.records] == expected


def test_mid_epoch_measurement_sees_the_weights_after_that_many_steps(split):
    # Step 3 falls inside the first epoch (4 steps of 16): the measurement must see
    # exactly the weights after 3 updates, also on JAX where they live outside the
    # model during an epoch.
    x, y = split.x_train[:64], split.y_train[:64]
    monitor = GrokkingMonitor((x, y), schedule=Schedule((3,)))
    model = make_model()
    model.fit(
        x, y, batch_size=16, epochs=1, shuffle=False, verbose=0, callbacks=[monitor]
    )

    reference = make_model()
    for i in range(3):
        reference.train_on_batch(x[16 * i : 16 * (i + 1)], y[16 * i : 16 * (i + 1)])
    logits = np.asarray(reference.predict_on_batch(x))
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, logits)
    record = monitor.records[0]
    assert record["step"] == 3
    np.testing.assert_allclose(record["train_loss"], float(loss), rtol=1e-5)
    assert record["train_accuracy"] == np.mean(logits.argmax(-1) == y)


def test_figures_reach_history_and_are_nan_until_measured(split):
    model = make_model()
    monitor = GrokkingMonitor(*train_and_test(split), schedule=Schedule((10, 40)))
    history = model.fit(
        split.x_train,
        split.y_train,
        batch_size=16,
        epochs=6,
        verbose=0,
        callbacks=[monitor],
    )
    accuracy = history.history["test_accuracy"]
    assert math.isnan(accuracy[0]) and not math.isnan(accuracy[-1])
    assert set(GrokkingMonitor.metric_names) <= set(history.history)
    assert accuracy[-1] == monitor.latest["test_accuracy"]


def test_memorized_and_generalized_are_the_first_steps_over_the_threshold():
    pair = (np.zeros((2, 2)), np.zeros(2))
    monitor = GrokkingMonitor(pair, pair, threshold=0.9)
    monitor.restore(
        [
            {"step": 1, "train_accuracy": 0.5, "test_accuracy": 0.0},
            {"step": 5, "train_accuracy": 0.95, "test_accuracy": 0.1},
            {"step": 9, "train_accuracy": 0.85, "test_accuracy": 0.91},
            {"step": 20, "train_accuracy": 1.0, "test_accuracy": 1.0},
        ]
    )
    assert monitor.memorized_at == 5 and monitor.generalized_at == 9


def test_patience_stops_training_after_generalizing(split):
    x, y = split.x_train, split.y_train
    model = make_model(lr=0.5)
    monitor = GrokkingMonitor(
        (x, y), (x, y), schedule=Schedule(range(1, 2000)), patience=5
    )
    model.fit(x, y, batch_size=len(x), epochs=2000, verbose=0, callbacks=[monitor])
    generalized = monitor.generalized_at
    assert generalized is not None
    assert monitor.records[-1]["step"] <= generalized + 6


def test_one_hot_labels_are_scored_by_their_argmax(split):
    model = make_model()
    one_hot = np.eye(11)[split.y_train]
    monitor = GrokkingMonitor((split.x_train, one_hot), schedule=Schedule((1,)))
    model.compile(keras.optimizers.SGD(0.0), keras.losses.CategoricalCrossentropy(True))
    model.fit(split.x_train, one_hot, epochs=1, verbose=0, callbacks=[monitor])
    predicted = np.asarray(model.predict_on_batch(split.x_train)).argmax(-1)
    assert monitor.latest["train_accuracy"] == np.mean(predicted == split.y_train)


def test_bad_data_is_refused():
    with pytest.raises(ValueError, match="as many labels as inputs"):
        GrokkingMonitor((np.zeros((3, 2)), np.zeros(2)))
    with pytest.raises(ValueError, match=r"an \(x, y\) pair"):
        GrokkingMonitor(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="threshold"):
        GrokkingMonitor((np.zeros((3, 2)), np.zeros(3)), threshold=1.5)


@pytest.mark.parametrize(
    "loss",
    ["sparse_categorical_crossentropy", keras.losses.SparseCategoricalCrossentropy()],
)
def test_loss_matches_keras_evaluate(split, loss):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((2,)), keras.layers.Dense(11, activation="softmax")]
    )
    model.compile("sgd", loss)
    x = split.x_train.astype("float32")
    monitor = GrokkingMonitor((x, split.y_train), schedule=Schedule((1,)))
    model.fit(x, split.y_train, epochs=1, verbose=0, callbacks=[monitor])
    expected = model.evaluate(x, split.y_train, verbose=0, batch_size=len(x))
    np.testing.assert_allclose(monitor.latest["train_loss"], expected, rtol=1e-5)


def test_labels_outside_the_outputs_are_refused(split):
    model = make_model()
    bad = split.y_train.copy()
    bad[0] = 11
    monitor = GrokkingMonitor((split.x_train, bad), schedule=Schedule((1,)))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 11\)"):
        model.fit(split.x_train, split.y_train, verbose=0, callbacks=[monitor])


def test_a_diverged_run_stops_and_says_when(split):
    model = make_model(lr=1e30)
    monitor = GrokkingMonitor(
        (split.x_train, split.y_train), schedule=Schedule(range(1, 100))
    )
    model.fit(split.x_train, split.y_train, epochs=50, verbose=0, callbacks=[monitor])
    assert monitor.diverged_at is not None
    assert monitor.records[-1]["step"] <= monitor.diverged_at + 4
    assert monitor.summary()["diverged_at"] == monitor.diverged_at
