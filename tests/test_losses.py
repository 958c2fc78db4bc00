"""The sum-reduced squared error against one-hot targets, against NumPy."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_grok.losses import SumSquaredError, squared_error_one_hot
from tests.testing import assert_allclose


def reference(labels: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    """Per-example sum_k (f_k - onehot_k)^2 in float64."""
    targets = np.eye(outputs.shape[-1])[labels.reshape(-1)]
    return ((outputs.astype(np.float64) - targets) ** 2).sum(axis=-1)


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    return rng.integers(0, 5, size=7), rng.normal(size=(7, 5)).astype("float32") * 3


def test_the_default_sums_over_classes_and_batch(batch):
    labels, outputs = batch
    loss = SumSquaredError()(labels, outputs)
    assert_allclose(loss, reference(labels, outputs).sum(), rtol=1e-5)


def test_labels_may_be_a_column_or_one_hot_rows(batch):
    labels, outputs = batch
    expected = reference(labels, outputs)
    assert_allclose(
        squared_error_one_hot(labels.reshape(-1, 1), outputs), expected, rtol=1e-5
    )
    one_hot = np.eye(5, dtype="float32")[labels]
    assert_allclose(
        SumSquaredError(sparse=False)(one_hot, outputs), expected.sum(), 1e-5
    )


def test_mean_reduction_and_sample_weights(batch):
    labels, outputs = batch
    expected = reference(labels, outputs)
    mean = SumSquaredError(reduction="sum_over_batch_size")(labels, outputs)
    assert_allclose(mean, expected.mean(), rtol=1e-5)
    weights = np.linspace(0.0, 1.0, 7).astype("float32")
    weighted = SumSquaredError()(labels, outputs, sample_weight=weights)
    assert_allclose(weighted, (expected * weights).sum(), rtol=1e-5)


def test_perfect_one_hot_outputs_give_zero(batch):
    labels, _ = batch
    assert float(SumSquaredError()(labels, np.eye(5, dtype="float32")[labels])) == 0.0


def test_config_and_serialization_round_trip():
    loss = SumSquaredError(sparse=False, reduction="sum_over_batch_size", name="l2")
    again = SumSquaredError.from_config(loss.get_config())
    assert again.get_config() == loss.get_config()
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(loss)
    )
    assert isinstance(restored, SumSquaredError) and restored.sparse is False
    assert restored.reduction == "sum_over_batch_size"


def test_a_model_trains_with_it_and_gradients_match_numpy(batch):
    labels, outputs = batch
    inputs = keras.Input((5,))
    model = keras.Model(inputs, keras.layers.Dense(5, use_bias=False)(inputs))
    model.compile(optimizer=keras.optimizers.SGD(1e-3), loss=SumSquaredError())
    model.layers[-1].kernel.assign(np.eye(5, dtype="float32"))
    before = model.evaluate(outputs, labels, verbose=0, batch_size=7)
    assert before == pytest.approx(reference(labels, outputs).sum(), rel=1e-5)
    model.fit(outputs, labels, epochs=1, batch_size=7, verbose=0)
    # dL/dW = X^T 2 (X W - onehot) with W = I; SGD step lr 1e-3.
    gradient = outputs.astype(np.float64).T @ (2 * (outputs - np.eye(5)[labels]))
    assert_allclose(
        model.layers[-1].kernel, np.eye(5) - 1e-3 * gradient, rtol=1e-4, atol=1e-5
    )
