"""FourierMonitor and the Outputs request of the shared measurement pass."""

from __future__ import annotations

import math
import warnings

import keras
import numpy as np
import pytest

from keras_grok.callbacks import (
    FourierMonitor,
    GrokkingMonitor,
    MeasurementCoordinator,
    Outputs,
)
from keras_grok.callbacks.measurement_pass import MeasurementPass
from keras_grok.data.modular import modular_dataset
from keras_grok.models.modular_mlp import modular_mlp
from keras_grok.models.modular_transformer import modular_transformer
from keras_grok.utils.labelled_data import validate_labelled_pair
from tests.measures.test_fourier_measures import _reference_component, _reference_loss
from tests.testing import to_numpy

P = 11


def _compiled(model):
    model.compile(
        keras.optimizers.AdamW(1e-3, weight_decay=1.0),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def _mlp(seed=0):
    keras.utils.set_random_seed(seed)
    return _compiled(modular_mlp(P, P, embed_dim=12, hidden=16, depth=2))


def _sets(split):
    return (split.x_train, split.y_train), (split.x_test, split.y_test)


def test_outputs_request_returns_the_models_outputs_in_data_order():
    split = modular_dataset(P, "a+b", 0.5, layout="pairs")
    model = _mlp()
    data = validate_labelled_pair((split.x_test, split.y_test), "test")
    coordinator = MeasurementCoordinator(model)
    results = coordinator.run_pass([(Outputs(), data)], chunk_size=7)
    np.testing.assert_allclose(
        results.get(Outputs(), data),
        to_numpy(model(split.x_test)),
        rtol=1e-5,
        atol=1e-6,
    )


def test_mlp_measures_equal_float64_references_of_the_trained_model():
    split = modular_dataset(P, "a+b", 0.5, layout="pairs")
    train, test = _sets(split)
    model = _mlp()
    monitor = FourierMonitor(train, test, p=P, num_key_frequencies=2, schedule=[3])
    model.fit(*train, batch_size=16, epochs=1, verbose=0, callbacks=[monitor])
    latest = monitor.latest
    table = to_numpy(model.get_layer("embedding").embeddings).astype(np.float64)
    basis = np.stack(
        [np.ones(P) / np.sqrt(P)]
        + [
            trig(2 * np.pi * k * np.arange(P) / P) * np.sqrt(2 / P)
            for k in range(1, P // 2 + 1)
            for trig in (np.cos, np.sin)
        ]
    )
    c = basis @ table
    norms = np.sqrt((c[1::2] ** 2).sum(axis=1) + (c[2::2] ** 2).sum(axis=1))
    keys = np.argsort(norms)[::-1][:2] + 1
    assert sorted(monitor.key_frequencies_now) == sorted(keys.tolist())
    energy = np.sort(norms**2)[::-1]
    np.testing.assert_allclose(
        latest["fourier_sparsity"], energy[:2].sum() / energy.sum(), rtol=1e-5
    )
    assert latest["fourier_top_frequency"] == keys[0]
    weights = sum((to_numpy(w).astype(np.float64) ** 2).sum() for w in model.weights)
    np.testing.assert_allclose(latest["squared_weight_norm"], weights, rtol=1e-5)

    a, b = np.repeat(np.arange(P), P), np.tile(np.arange(P), P)
    logits = to_numpy(model(np.stack([a, b], axis=1).astype("int32")))
    labels = (a + b) % P
    component = _reference_component(logits, P, "a+b", keys, "paper")
    rows = split.x_train[:, 0] * P + split.x_train[:, 1]
    mean = logits.astype(np.float64).mean(axis=0, keepdims=True)
    np.testing.assert_allclose(
        latest["train_restricted_loss"],
        _reference_loss(component + mean, labels, rows),
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        latest["train_excluded_loss"],
        _reference_loss(logits - component, labels, rows),
        rtol=1e-5,
    )
    assert monitor.summary()["fourier_key_frequencies"] == list(
        monitor.key_frequencies_now
    )


def test_it_reads_the_grokking_monitors_pass_without_another_forward_pass(
    monkeypatch,
):
    calls = []
    original = MeasurementPass.predict_on_batch

    def counting(self, inputs):
        calls.append(len(inputs["x"]))
        return original(self, inputs)

    monkeypatch.setattr(MeasurementPass, "predict_on_batch", counting)
    split = modular_dataset(P, "a-b", 0.5, layout="pairs")
    train, test = _sets(split)
    model = _mlp()
    grokking = GrokkingMonitor(train, test, schedule=[2])
    fourier = FourierMonitor(train, test, p=P, op="a-b", schedule=[2])
    model.fit(*train, batch_size=16, epochs=1, verbose=0, callbacks=[grokking, fourier])
    assert calls == [P * P, P * P]  # step 2 and the end: each row once per pass
    assert all(math.isfinite(v) for v in fourier.latest.values())


def test_transformer_token_embedding_is_found_and_measured():
    split = modular_dataset(P, "a+b", 0.5, layout="tokens")
    train, test = _sets(split)
    keras.utils.set_random_seed(0)
    model = _compiled(
        modular_transformer(P, split.vocab_size, d_model=8, num_heads=2, d_mlp=16)
    )
    monitor = FourierMonitor(train, test, p=P, key_frequencies=[1, 3])
    # Measured outside fit (no training needed): what on_train_begin and the
    # coordinator would do.
    monitor._trained_model = model
    monitor._layer = monitor._find_embedding(model)
    results = MeasurementCoordinator(model).run_pass(monitor.needs(), 16384)
    values = monitor.measure(0, results)
    assert monitor._layer.name == "token_embedding"
    assert monitor.key_frequencies_now == (1, 3)
    assert set(values) == set(monitor.metric_names)
    assert all(math.isfinite(v) for v in values.values())


def test_other_operations_log_nan_losses_with_one_warning():
    split = modular_dataset(P, "a*b", 0.5, layout="pairs")
    train, test = _sets(split)
    with pytest.warns(UserWarning, match="a\\+b and a-b only") as caught:
        monitor = FourierMonitor(train, test, p=P, op="a*b", schedule=[1, 2, 3])
    model = _mlp()
    with warnings.catch_warnings(record=True) as during_fit:
        warnings.simplefilter("always")
        model.fit(*train, batch_size=16, epochs=1, verbose=0, callbacks=[monitor])
    assert len(caught) == 1
    assert not [w for w in during_fit if "FourierMonitor" in str(w.message)]
    latest = monitor.latest
    assert math.isnan(latest["train_restricted_loss"])
    assert math.isnan(latest["test_excluded_loss"])
    assert 0 < latest["fourier_sparsity"] <= 1
    assert monitor.needs() == []


def test_missing_pairs_leave_the_losses_undefined_with_a_warning():
    split = modular_dataset(P, "a+b", 0.5, layout="pairs")
    with pytest.warns(UserWarning, match="every pair"):
        monitor = FourierMonitor(_sets(split)[0], p=P)
    assert monitor.metric_names[-2:] == ("train_restricted_loss", "train_excluded_loss")


def test_wrong_operation_or_layout_or_model_fail_clearly():
    split = modular_dataset(P, "a+b", 0.5, layout="pairs")
    train, test = _sets(split)
    with pytest.raises(ValueError, match="labels are not a-b mod 11"):
        FourierMonitor(train, test, p=P, op="a-b")
    with pytest.raises(ValueError, match="positions"):
        FourierMonitor((np.zeros((4, 3), "int32"), np.zeros(4, "int32")), p=P)
    with pytest.raises(ValueError, match="distinct integers"):
        FourierMonitor(train, test, p=P, key_frequencies=[6])
    inputs = keras.Input((2,), dtype="int32")
    dense = keras.layers.Dense(P)(keras.ops.cast(inputs, "float32"))
    model = _compiled(keras.Model(inputs, dense))
    monitor = FourierMonitor(train, test, p=P, schedule=[1])
    with pytest.raises(ValueError, match="no keras.layers.Embedding"):
        model.fit(*train, batch_size=64, epochs=1, verbose=0, callbacks=[monitor])
