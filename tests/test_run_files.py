"""Run-folder files: metrics CSV, atomic JSON, checkpoints."""

import json
import math

import keras
import numpy as np
import pytest

from keras_grok.callbacks import TrainingCheckpoint
from keras_grok.models import modular_mlp
from keras_grok.runs.run_folder import (
    read_metrics,
    truncate_metrics,
    write_json_atomic,
)
from tests.testing import to_numpy


def test_a_torn_last_line_is_ignored(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("step,elapsed,acc\n1,0.5,0.1\n2,0.7,0.2\n3,0.9,0.")
    rows = read_metrics(path)
    assert [r["step"] for r in rows] == [1, 2]
    assert rows[1]["acc"] == 0.2


def test_truncation_keeps_rows_up_to_the_checkpoint_step(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("step,elapsed,acc\n1,0.5,0.1\n4,0.7,nan\n9,0.9,0.3\n12,1.0,0.")
    kept = truncate_metrics(path, 4)
    assert [r["step"] for r in kept] == [1, 4]
    assert path.read_text().splitlines()[0] == "step,elapsed,acc"
    assert [r["step"] for r in read_metrics(path)] == [1, 4]
    assert math.isnan(read_metrics(path)[1]["acc"])


def test_json_is_written_whole_with_nan_as_null(tmp_path):
    path = tmp_path / "summary.json"
    write_json_atomic(path, {"a": float("nan"), "b": [1.5, float("inf")], "c": None})
    assert json.loads(path.read_text()) == {"a": None, "b": [1.5, None], "c": None}
    assert not [p for p in tmp_path.iterdir() if p.name != "summary.json"]


def compiled_model(seed):
    keras.utils.set_random_seed(seed)
    model = modular_mlp(7, embed_dim=4, hidden=8)
    model.compile(keras.optimizers.AdamW(1e-2), "sparse_categorical_crossentropy")
    return model


def test_checkpoint_restores_weights_and_optimizer_state(tmp_path):
    x = np.array([[1, 2], [3, 4], [5, 6]], dtype="int32")
    y = np.array([3, 0, 4], dtype="int32")
    model = compiled_model(0)
    checkpoint = TrainingCheckpoint(tmp_path / "checkpoint.npz", every_seconds=0)
    model.fit(x, y, epochs=3, verbose=0, callbacks=[checkpoint])

    other = compiled_model(1)
    state = TrainingCheckpoint.restore(tmp_path / "checkpoint.npz", other)
    assert (state.epoch, state.step) == (3, 3)
    for a, b in zip(model.weights, other.weights):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
    for a, b in zip(model.optimizer.variables, other.optimizer.variables):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))


def test_checkpoint_of_another_model_is_refused(tmp_path):
    model = compiled_model(0)
    model.fit(
        np.zeros((2, 2), "int32"),
        np.zeros(2, "int32"),
        verbose=0,
        callbacks=[TrainingCheckpoint(tmp_path / "c.npz", every_seconds=0)],
    )
    bigger = modular_mlp(7, embed_dim=4, hidden=16)
    bigger.compile(keras.optimizers.AdamW(1e-2), "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="does not match this model"):
        TrainingCheckpoint.restore(tmp_path / "c.npz", bigger)
    assert TrainingCheckpoint.restore(tmp_path / "absent.npz", bigger) is None
