"""The shared measurement pass: one forward pass per chunk for all monitors."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from keras_grok.callbacks import (
    AdaptiveSchedule,
    CollapseMonitor,
    GrokkingMonitor,
    InformationPlaneMonitor,
)
from keras_grok.callbacks.measurement_pass import MeasurementPass
from keras_grok.measures import collapse
from keras_grok.measures import information as hsic
from tests.testing import to_numpy

K = 4


def _data(seed, n):
    rng = np.random.default_rng(seed)
    y = np.concatenate([np.arange(K), rng.integers(0, K, n - K)]).astype("int32")
    x = ((rng.normal(size=(K, 5)) * 2)[y] + rng.normal(size=(n, 5))).astype("float32")
    return x, y


def _model(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((5,))
    h = keras.layers.Dense(6, activation="relu", name="features")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(K, name="logits")(h))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


@pytest.fixture
def counted_calls(monkeypatch):
    calls = []
    original = MeasurementPass.predict_on_batch

    def counting(self, inputs):
        calls.append(len(inputs["x"]))
        return original(self, inputs)

    monkeypatch.setattr(MeasurementPass, "predict_on_batch", counting)
    return calls


def test_two_monitors_on_the_same_data_share_one_forward_pass_per_chunk(
    counted_calls,
):
    train, test = _data(0, 64), _data(1, 40)
    model = _model()
    grokking = GrokkingMonitor(train, test, schedule=[1, 2, 3], batch_size=48)
    collapsing = CollapseMonitor(train, test, schedule=[1, 2, 3], batch_size=48)
    model.fit(*train, batch_size=16, epochs=1, callbacks=[grokking, collapsing])
    measured = [r["step"] for r in grokking.records]
    assert measured == [r["step"] for r in collapsing.records] == [1, 2, 3, 4]
    # 104 rows in chunks of 48: 3 calls per measured step, for both monitors.
    assert counted_calls == [48, 48, 8] * len(measured)


def test_monitors_due_at_different_steps_each_get_a_pass(counted_calls):
    train = _data(0, 64)
    model = _model()
    grokking = GrokkingMonitor(train, schedule=[1, 3])
    collapsing = CollapseMonitor(train, schedule=[2, 3])
    model.fit(*train, batch_size=16, epochs=1, callbacks=[grokking, collapsing])
    assert [r["step"] for r in grokking.records] == [1, 3, 4]
    assert [r["step"] for r in collapsing.records] == [2, 3, 4]
    assert len(counted_calls) == 4  # steps 1, 2, 3 and the end


def test_shared_pass_metrics_equal_float64_references():
    train, test = _data(0, 64), _data(1, 40)
    model = _model()
    grokking = GrokkingMonitor(train, test, schedule=[2])
    collapsing = CollapseMonitor(train, test, schedule=[2])
    information = InformationPlaneMonitor(test_data=test, estimators="nhsic")
    information.schedule_spec = [2]
    model.fit(
        *train, batch_size=32, epochs=1, callbacks=[grokking, collapsing, information]
    )
    extractor = keras.Model(model.input, model.get_layer("features").output)
    for split, (x, y) in (("train", train), ("test", test)):
        logits = to_numpy(model(x)).astype(np.float64)
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        loss = -np.mean(log_probs[np.arange(len(y)), y])
        accuracy = np.mean(logits.argmax(axis=1) == y)
        latest = grokking.latest
        np.testing.assert_allclose(latest[f"{split}_loss"], loss, rtol=1e-5)
        assert latest[f"{split}_accuracy"] == pytest.approx(accuracy, abs=1e-12)
        features = to_numpy(extractor(x)).astype(np.float64)
        means = np.stack([features[y == c].mean(axis=0) for c in range(K)])
        within = sum(((features[y == c] - means[c]) ** 2).sum() for c in range(K))
        within /= len(y)
        scale = np.linalg.norm(features, axis=1).mean()
        np.testing.assert_allclose(
            collapsing.latest[f"{split}_rnc1"], within / scale**2, rtol=1e-4
        )
    z = to_numpy(extractor(test[0]))
    np.testing.assert_allclose(
        information.latest["test_nhsic_zx"], hsic.normalized_hsic(z, test[0]), rtol=1e-4
    )
    stats = collapse.collapse_statistics((z, test[1]), K)
    np.testing.assert_allclose(
        collapsing.latest["test_nc1"], collapse.nc1(stats), rtol=1e-4
    )


def test_adaptive_schedule_is_dense_while_accuracy_moves_and_sparse_when_flat():
    schedule = AdaptiveSchedule(100_000, levels={"test_accuracy": 0.99})
    flat = [{"step": 100, "test_accuracy": 0.1}, {"step": 120, "test_accuracy": 0.1}]
    assert schedule.next_after(120, flat) == 180  # x1.5, the sparsest
    moving = [{"step": 100, "test_accuracy": 0.1}, {"step": 120, "test_accuracy": 0.5}]
    assert schedule.next_after(120, moving) == 126  # x1.05, the densest
    near = [{"step": 100, "test_accuracy": 0.95}, {"step": 120, "test_accuracy": 0.95}]
    assert schedule.next_after(120, near) == 126  # just below the level
    reached = [{"step": 100, "test_accuracy": 1.0}, {"step": 120, "test_accuracy": 1.0}]
    assert schedule.next_after(120, reached) == 180
    assert schedule.next_after(0, []) == 1
    assert schedule.next_after(4, []) == 5  # x1.25 before two measurements
    assert schedule.next_after(100_000, flat) > 100_000


def test_adaptive_schedule_ratio_follows_the_rate_of_change():
    schedule = AdaptiveSchedule(10_000, tolerance=0.1)
    history = [
        {"step": 1000, "train_accuracy": 0.2},
        {"step": 1100, "train_accuracy": 0.3},
    ]
    # A change of 0.1 over log(1.1): the next gap keeps the same ratio.
    assert schedule.next_after(1100, history) == math.ceil(1100 * 1.1)


def test_adaptive_schedule_rejects_bad_ratios():
    with pytest.raises(ValueError, match="min_ratio"):
        AdaptiveSchedule(100, min_ratio=1.0)
