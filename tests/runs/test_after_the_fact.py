"""Lenses measured after training at the checkpoint history equal in-line values."""

from __future__ import annotations

import keras
import numpy as np

from keras_grok.callbacks import CollapseMonitor, FourierMonitor
from keras_grok.data.modular import modular_dataset
from keras_grok.models import modular_mlp
from keras_grok.runs.run_folder import RunFolder
from keras_grok.runs.train_and_record import train_and_record


def record(out, *, inline=(), after=(), refine=False, op="a+b"):
    keras.utils.set_random_seed(3)
    split = modular_dataset(11, op, 0.5, 3)
    model = modular_mlp(11, embed_dim=8, hidden=16, depth=2)
    model.compile(
        keras.optimizers.AdamW(3e-3, weight_decay=0.1),
        "sparse_categorical_crossentropy",
    )
    train, test = (split.x_train, split.y_train), (split.x_test, split.y_test)
    summary = train_and_record(
        model,
        train,
        test,
        out,
        batch_size=16,
        max_steps=40,
        schedule="every:4",
        checkpoint_seconds=0.0,
        monitors=tuple(m(train, test) for m in inline),
        after_the_fact=tuple(m(train, test) for m in after),
        verbose=False,
        shuffle_seed=5,
        refine=refine,
    )
    return summary, RunFolder(out)


def collapse(train, test):
    return CollapseMonitor(train, test, schedule=None)


def test_after_the_fact_values_equal_the_in_line_values_bit_for_bit(tmp_path):
    (tmp_path / "inline").mkdir()
    (tmp_path / "after").mkdir()
    _, inline = record(tmp_path / "inline", inline=[collapse])
    summary, after = record(tmp_path / "after", after=[collapse])
    expected = {r["step"]: r for r in inline.read_metrics()}
    rows = after.read_measurements()
    history = [s for s, _ in after.history_checkpoints() if s >= 1]
    lens_rows = [r for r in rows if "train_rnc1" in r and np.isfinite(r["train_rnc1"])]
    assert [r["step"] for r in lens_rows] == history == [4, 8, 16, 32, 40]
    for row in lens_rows:
        for key in ("train_rnc1", "test_nc2", "test_within_class_variance"):
            assert row[key] == expected[row["step"]][key], (row["step"], key)
    # In line, only accuracy was measured: metrics.csv has no collapse column.
    assert "train_rnc1" not in after.read_metrics()[-1]
    assert summary["final_train_rnc1"] == expected[40]["train_rnc1"]


def test_the_fourier_lens_after_the_fact_uses_the_final_key_frequencies(tmp_path):
    def fourier(train, test):
        return FourierMonitor(train, test, p=11, num_key_frequencies=2)

    summary, folder = record(tmp_path, after=[fourier])
    keys = summary["fourier_key_frequencies"]
    assert len(keys) == 2
    # Nanda et al.'s protocol: the final model's keys at every checkpoint.
    rows = [r for r in folder.read_measurements() if "fourier_sparsity" in r]
    assert len(rows) == 5
    assert all(0.0 <= r["fourier_sparsity"] <= 1.0 for r in rows)


def test_refined_events_have_a_step_and_a_resolution(tmp_path):
    summary, _ = record(tmp_path, inline=[collapse], refine=True)
    memorized = summary["events"]["memorized"]
    if memorized is not None:  # 40 steps: it may not memorize
        assert memorized["resolution"] <= 4  # one epoch
        assert summary["memorized_at"] == memorized["step"]
        assert summary["memorized_at_measured"] == memorized["measured_step"]


def test_a_minus_b_run_refines_its_fourier_events_with_its_own_operation(tmp_path):
    def fourier(train, test):
        return FourierMonitor(train, test, p=11, op="a-b", num_key_frequencies=2)

    summary, folder = record(tmp_path, after=[fourier], refine=True, op="a-b")
    assert set(summary["events"]) >= {"circuit_formation", "circuit_cleanup"}
    rows = [r for r in folder.read_measurements() if "train_excluded_loss" in r]
    assert rows and all(np.isfinite(r["train_excluded_loss"]) for r in rows[-3:])


def test_a_schedule_denser_than_the_history_says_where_it_was_measured(tmp_path):
    import pytest

    def dense(train, test):
        return CollapseMonitor(train, test, schedule="every:1")

    with pytest.warns(UserWarning, match="lists 40 steps.*measured at the 5"):
        _, folder = record(tmp_path, after=[dense])
    measured = [r["step"] for r in folder.read_measurements() if "train_rnc1" in r]
    assert measured == [4, 8, 16, 32, 40]  # the history's steps
