"""Run-folder files: metrics CSV, atomic JSON, checkpoints."""

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from keras_grok.callbacks import TrainingCheckpoint
from keras_grok.models import modular_mlp
from keras_grok.runs.run_folder import (
    RunFolder,
    RunFolderError,
    config_fingerprint,
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


def test_columns_are_read_by_name_in_any_order(tmp_path):
    # A metrics file re-saved by another tool (pandas, a spreadsheet) with its
    # columns reordered reads as the original.
    ordered, reordered = tmp_path / "a.csv", tmp_path / "b.csv"
    ordered.write_text("step,elapsed,acc\n1,0.5,0.1\n2,0.7,0.2\n")
    reordered.write_text("acc,step,elapsed\n0.1,1,0.5\n0.2,2,0.7\n")
    assert read_metrics(reordered) == read_metrics(ordered)
    assert read_metrics(reordered)[1] == {"step": 2, "elapsed": 0.7, "acc": 0.2}
    with pytest.raises(RunFolderError, match="is not a metrics file"):
        (tmp_path / "c.csv").write_text("acc,elapsed\n0.1,0.5\n")
        read_metrics(tmp_path / "c.csv")


def test_a_byte_order_mark_is_read_past(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("step,a\n1,0.5\n", encoding="utf-8-sig")  # as Excel saves it
    assert read_metrics(path) == [{"step": 1, "a": 0.5}]


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


def record(seed=0, recipe="recipes/modadd.py"):
    return {"recipe": recipe, "backend": "jax", "seed": seed, "config": {"p": 7}}


def test_a_checkpoint_carries_its_configs_fingerprint_and_last_row(tmp_path):
    folder = RunFolder(tmp_path)
    folder.write_config(record())
    folder.metrics.write_text("step,elapsed\n1,0.1\n")
    model = compiled_model(0)
    model.fit(
        np.zeros((2, 2), "int32"),
        np.zeros(2, "int32"),
        verbose=0,
        callbacks=[TrainingCheckpoint(folder.checkpoint, every_seconds=0)],
    )
    state = TrainingCheckpoint.restore(folder.checkpoint, compiled_model(1))
    assert state.fingerprint == config_fingerprint(record())
    assert state.fingerprint != config_fingerprint(record(seed=1))
    assert state.last_row == 1
    # Named by another path, the same recipe file is the same recipe.
    absolute = str(Path("recipes/modadd.py").resolve())
    assert config_fingerprint(record(recipe=absolute)) == state.fingerprint
    folder.check_matches(record(recipe=absolute))


def test_a_checkpoint_written_before_fingerprints_still_resumes(tmp_path):
    model = compiled_model(0)
    arrays = {f"weight_{i}": to_numpy(w) for i, w in enumerate(model.weights)}
    model.optimizer.build(model.trainable_variables)
    arrays.update(
        (f"optimizer_{i}", to_numpy(v)) for i, v in enumerate(model.optimizer.variables)
    )
    np.savez(tmp_path / "old.npz", epoch=2, step=4, elapsed=1.5, **arrays)
    state = TrainingCheckpoint.restore(tmp_path / "old.npz", compiled_model(1))
    assert (state.step, state.fingerprint, state.last_row) == (4, "", None)


def test_clear_removes_everything_a_run_owns_and_nothing_else(tmp_path):
    folder = RunFolder(tmp_path)
    folder.write_config(record())
    for path in (folder.metrics, folder.figure, *folder.tables):
        path.write_text("x")
    child = folder.child("wd=0.1-seed=0")
    child.path.mkdir(parents=True)
    for path in (child.config, child.metrics, child.log):
        path.write_text("x")
    (tmp_path / ".summary.json.abc123.tmp").write_text("half")
    (tmp_path / "notes.txt").write_text("mine")
    folder.clear()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_a_locked_folder_loses_the_temporary_files_of_interrupted_writes(tmp_path):
    (tmp_path / ".metrics.csv.k2j4.tmp").write_text("half a row")
    (tmp_path / "keep.tmp").write_text("not ours")
    with RunFolder(tmp_path).lock():
        assert not (tmp_path / ".metrics.csv.k2j4.tmp").exists()
    assert (tmp_path / "keep.tmp").exists()


def _state(pid: int) -> str:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rfind(")") + 2]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_a_lock_left_by_a_killed_or_replaced_process_is_taken_over(tmp_path):
    lock = tmp_path / ".lock"
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock.write_text(str(child.pid))
        with pytest.raises(RunFolderError, match="in use by process"):
            RunFolder(tmp_path).lock().__enter__()
        child.kill()  # not reaped yet: a zombie that kill(pid, 0) still finds
        deadline = time.monotonic() + 10
        while _state(child.pid) != "Z" and time.monotonic() < deadline:
            time.sleep(0.05)
        with RunFolder(tmp_path).lock():
            assert lock.read_text().split()[0] == str(os.getpid())
    finally:
        child.kill()
        child.wait()
    lock.write_text(f"{os.getpid()} 1")  # this process id, another start time
    with RunFolder(tmp_path).lock():
        pass
    assert not lock.exists()


def test_a_metrics_file_refuses_duplicate_columns_and_a_header_without_step(
    tmp_path,
):
    from keras_grok.runs.metrics_file import MetricsFile

    with pytest.raises(ValueError, match="a is listed twice.*Received: columns="):
        MetricsFile(tmp_path / "m.csv", ["step", "a", "a"])
    with pytest.raises(
        ValueError, match='must start with "step". Received: columns=\\[\\]'
    ):
        MetricsFile(tmp_path / "m.csv", [])
    with pytest.raises(ValueError, match="without commas"):
        MetricsFile(tmp_path / "m.csv", ["step", "a,b"])
    with pytest.raises(TypeError, match="columns must be a list"):
        MetricsFile(tmp_path / "m.csv", "step")
    assert not (tmp_path / "m.csv").exists()


def test_write_metrics_atomic_makes_a_missing_folder(tmp_path):
    from keras_grok.runs.metrics_file import write_metrics_atomic

    path = tmp_path / "new" / "deeper" / "m.csv"
    write_metrics_atomic(path, ["step", "a"], [{"step": 1, "a": 0.5}])
    assert read_metrics(path) == [{"step": 1, "a": 0.5}]


def test_write_atomic_onto_a_folder_names_the_target(tmp_path):
    from keras_grok.runs.file_io import write_atomic

    target = tmp_path / "summary.json"
    target.mkdir()
    with pytest.raises(IsADirectoryError) as caught:
        write_atomic(target, "{}")
    assert caught.value.filename == str(target)
    with pytest.raises(FileNotFoundError) as caught:
        write_atomic(tmp_path / "missing" / "x.json", "{}")
    assert caught.value.filename == str(tmp_path / "missing" / "x.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


def _small_run():
    model = modular_mlp(5, embed_dim=4, hidden=8)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = np.array([[0, 1], [1, 2], [2, 3], [3, 4]], dtype="int32")
    y = np.array([1, 3, 0, 2], dtype="int32")
    return model, (x, y), (x, y)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (
            {"batch_size": 0},
            "batch_size must be an integer >= 1. Received: batch_size=0",
        ),
        ({"max_steps": 0}, "Received: max_steps=0"),
        ({"threshold": 1.5}, "Received: threshold=1.5"),
        ({"test_threshold": 0}, "Received: test_threshold=0"),
        ({"patience": -1}, "Received: patience=-1"),
        ({"checkpoint_seconds": -1}, "Received: checkpoint_seconds=-1"),
        ({"shuffle_seed": 1.5}, "Received: shuffle_seed=1.5"),
        ({"history_ratio": 1.0}, "Received: history_ratio=1.0"),
        ({"history_budget_mb": 0}, "Received: history_budget_mb=0"),
    ],
)
def test_train_and_record_refuses_bad_numbers_before_writing(tmp_path, kwargs, match):
    from keras_grok.runs.train_and_record import train_and_record

    model, train, test = _small_run()
    settings = {"batch_size": 2, "max_steps": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        train_and_record(model, train, test, tmp_path / "run", **settings)
    assert not (tmp_path / "run").exists()


def test_train_and_record_refuses_an_uncompiled_model_a_file_and_bad_data(tmp_path):
    from keras_grok.runs.train_and_record import train_and_record

    model, train, test = _small_run()
    with pytest.raises(ValueError, match="model must be compiled"):
        train_and_record(
            modular_mlp(5), train, test, tmp_path / "a", batch_size=2, max_steps=2
        )
    with pytest.raises(TypeError, match="model must be a keras.Model"):
        train_and_record("m", train, test, tmp_path / "a", batch_size=2, max_steps=2)
    with pytest.raises(ValueError, match="train must be an \\(x, y\\) pair"):
        train_and_record(
            model, train[0], test, tmp_path / "a", batch_size=2, max_steps=2
        )
    file = tmp_path / "file"
    file.write_text("")
    with pytest.raises(
        ValueError, match="out_dir must be a folder.*Received: out_dir="
    ):
        train_and_record(model, train, test, file, batch_size=2, max_steps=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_train_and_record_makes_its_folder_and_refuses_a_finished_one(tmp_path):
    from keras_grok.runs.train_and_record import train_and_record

    model, train, test = _small_run()
    out = tmp_path / "new" / "run"
    settings = {"batch_size": 4, "max_steps": 2, "verbose": False, "refine": False}
    summary = train_and_record(model, train, test, out, **settings)
    assert (out / "summary.json").is_file() and "memorized_at" in summary
    with pytest.raises(RunFolderError, match="already holds a finished run"):
        train_and_record(model, train, test, out, **settings)


def test_blank_lines_at_the_end_of_a_metrics_file_lose_nothing(tmp_path):
    from keras_grok.runs.metrics_file import read_metrics

    path = tmp_path / "metrics.csv"
    path.write_text("step,a\n1,0.5\n2,0.25\n\n\n")
    assert [r["step"] for r in read_metrics(path)] == [1, 2]


def test_train_and_record_refuses_a_callback_that_is_not_a_monitor(tmp_path):
    import keras

    from keras_grok.runs.train_and_record import train_and_record

    x, y = np.zeros((8, 2), "float32"), np.arange(8) % 2
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    with pytest.raises(ValueError, match="monitors must hold keras_grok monitors"):
        train_and_record(
            model, (x, y), (x, y), tmp_path / "run", batch_size=4, max_steps=2,
            monitors=(keras.callbacks.History(),), verbose=False,
        )  # fmt: skip
    assert not (tmp_path / "run").exists()


def test_a_metrics_file_of_other_columns_names_what_to_do_outside_the_cli(tmp_path):
    from keras_grok.runs.metrics_file import MetricsFile

    path = tmp_path / "old.csv"
    path.write_text("step,loss\n1,0.5\n")
    with pytest.raises(RunFolderError, match="record to another path, or remove"):
        MetricsFile(path, ["step", "train_loss", "test_loss"])
    assert path.read_text() == "step,loss\n1,0.5\n"
