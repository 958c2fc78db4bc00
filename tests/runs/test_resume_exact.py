"""A run stopped after a checkpoint and resumed writes the uninterrupted run's rows."""

import csv

import keras
import numpy as np
import pytest

from keras_grok.callbacks import CollapseMonitor, ScheduledMonitor
from keras_grok.data.epoch_batches import EpochBatches
from keras_grok.data.modular import modular_dataset
from keras_grok.models import modular_mlp
from keras_grok.regularizers.weight_noise import WeightNoise
from keras_grok.runs.train_and_record import train_and_record


class Killed(Exception):
    pass


class KillAfterEpoch(ScheduledMonitor):
    """Raises out of fit at the end of one epoch, as a crash would."""

    def __init__(self, epoch):
        super().__init__("every:1000000")
        self.kill_epoch = epoch

    def measure(self, step, results):
        return {}

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.kill_epoch:
            raise Killed(epoch)
        super().on_epoch_end(epoch, logs)


def train(
    out,
    kill_at=None,
    noise=False,
    schedule="every:4",
    collapse_schedule=None,
    learning_rate=3e-3,
):
    keras.utils.set_random_seed(3)
    split = modular_dataset(11, "a+b", 0.5, 3)
    model = modular_mlp(11, embed_dim=8, hidden=16, depth=2)
    if noise:  # a seed generator in the model: its state must be restored too
        model = WeightNoise(model, 0.05, seed=1)
    model.compile(
        keras.optimizers.AdamW(learning_rate, weight_decay=0.1),
        "sparse_categorical_crossentropy",
    )
    train_data = (split.x_train, split.y_train)
    monitors = (
        () if noise else (CollapseMonitor(train_data, schedule=collapse_schedule),)
    )
    if kill_at is not None:
        monitors += (KillAfterEpoch(kill_at),)
    return train_and_record(
        model,
        train_data,
        (split.x_test, split.y_test),
        out,
        batch_size=16,
        max_steps=40,
        schedule=schedule,
        checkpoint_seconds=0.0,
        monitors=monitors,
        verbose=False,
    )


def rows_without_elapsed(path):
    with path.open() as f:
        rows = list(csv.reader(f))
    index = rows[0].index("elapsed")
    return [row[:index] + row[index + 1 :] for row in rows]


@pytest.mark.parametrize("noise", [False, True], ids=["plain", "weight_noise"])
def test_a_resumed_run_writes_the_uninterrupted_runs_metrics(tmp_path, noise):
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    whole.mkdir()
    resumed.mkdir()
    train(whole, noise=noise)
    with pytest.raises(Killed):
        train(resumed, kill_at=4, noise=noise)
    summary = train(resumed, noise=noise)
    assert summary["resumed_from_step"] == 4 * 4  # 61 examples: 4 steps an epoch
    expected = rows_without_elapsed(whole / "metrics.csv")
    assert len(expected) > 10
    # Bitwise: the same text, every digit of every float.
    assert rows_without_elapsed(resumed / "metrics.csv") == expected


@pytest.mark.parametrize("schedule, kill_at", [("adaptive", 6), ("geometric:1.3", 7)])
def test_a_resumed_run_measures_where_the_uninterrupted_run_did(
    tmp_path, schedule, kill_at
):
    # The checkpoint (the end of the last whole epoch) falls between two
    # measured steps: the resumed run must go on to the uninterrupted run's
    # next step, not re-plan from the checkpoint's.
    checkpoint = 4 * kill_at
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    whole.mkdir()
    resumed.mkdir()
    train(whole, schedule=schedule)
    with pytest.raises(Killed):
        train(resumed, kill_at=kill_at, schedule=schedule)
    steps = [int(r[0]) for r in rows_without_elapsed(resumed / "metrics.csv")[1:]]
    assert checkpoint not in steps and max(steps) > checkpoint
    summary = train(resumed, schedule=schedule)
    assert summary["resumed_from_step"] == checkpoint
    assert rows_without_elapsed(resumed / "metrics.csv") == rows_without_elapsed(
        whole / "metrics.csv"
    )


@pytest.mark.parametrize("kill_at", [5, 7])
def test_a_monitor_with_its_own_schedule_resumes_at_its_own_steps(tmp_path, kill_at):
    # Rows where only the other monitor measured hold NaN in this monitor's
    # columns: read back on resume, they are not its measurements, so they
    # neither count in the summary nor move its schedule.
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    whole.mkdir()
    resumed.mkdir()
    settings = dict(schedule="geometric:1.3", collapse_schedule="geometric:1.6")
    expected_summary = train(whole, **settings)
    with pytest.raises(Killed):
        train(resumed, kill_at=kill_at, **settings)
    summary = train(resumed, **settings)
    assert summary["resumed_from_step"] == 4 * kill_at
    assert rows_without_elapsed(resumed / "metrics.csv") == rows_without_elapsed(
        whole / "metrics.csv"
    )
    timings = {"wall_time_s", "refine_time_s", "resumed_from_step"}
    assert {k: v for k, v in summary.items() if k not in timings} == {
        k: v for k, v in expected_summary.items() if k not in timings
    }  # "measurements" counted the other monitor's rows too


def test_epoch_batches_depend_only_on_the_seed_and_the_step():
    x, y = np.arange(10)[:, None], np.arange(10)
    whole = EpochBatches(x, y, 4, seed=5)
    later = EpochBatches(x, y, 4, seed=5, start_epoch=2)
    assert whole.steps_per_epoch == 3
    for i in range(6):
        np.testing.assert_array_equal(later[i][0], whole[6 + i][0])
    epoch = np.concatenate([whole[i][1] for i in range(3)])
    assert sorted(epoch.tolist()) == list(range(10))  # each example once
    assert epoch.tolist() != list(range(10))  # shuffled
    other = np.concatenate([whole[i][1] for i in range(3, 6)])
    assert other.tolist() != epoch.tolist()  # a new order every epoch


def train_to_patience(out):
    # Full batch (one step an epoch): a memorized event between two measured
    # steps is refined by replay; generalized at step 1 (any test accuracy
    # counts), so patience stops the run early, at step 44 of 200.
    keras.utils.set_random_seed(3)
    split = modular_dataset(11, "a+b", 0.5, 3)
    model = modular_mlp(11, embed_dim=16, hidden=32, depth=2)
    model.compile(
        keras.optimizers.AdamW(1e-2, weight_decay=1.0),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return train_and_record(
        model,
        (split.x_train, split.y_train),
        (split.x_test, split.y_test),
        out,
        batch_size=64,
        max_steps=200,
        schedule="every:4",
        threshold=0.3,
        test_threshold=1e-9,
        patience=40,
        checkpoint_seconds=0.0,
        verbose=False,
    )


def test_a_run_stopped_early_and_killed_while_refining_does_not_train_on(
    tmp_path, monkeypatch
):
    # A kill after training (refining its events by replay) leaves the last
    # checkpoint of a run that patience stopped: the rerun must go straight to
    # the refinement, not train on to max_steps from where the run stopped.
    import keras_grok.runs.train_and_record as module

    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    whole.mkdir()
    resumed.mkdir()
    expected = train_to_patience(whole)
    assert expected["final_step"] < 200  # patience stopped it
    refined = expected["events"]["memorized"]
    assert refined["step"] != refined["measured_step"]  # refined by replay

    replay = module.replay_stretches

    def killed_after_one_replay(*args, **kwargs):
        replay(*args, **kwargs)
        raise Killed("refining")

    monkeypatch.setattr(module, "replay_stretches", killed_after_one_replay)
    with pytest.raises(Killed):
        train_to_patience(resumed)
    assert not (resumed / "summary.json").exists()
    monkeypatch.setattr(module, "replay_stretches", replay)
    summary = train_to_patience(resumed)
    assert summary["resumed_from_step"] == expected["final_step"]
    assert rows_without_elapsed(resumed / "metrics.csv") == rows_without_elapsed(
        whole / "metrics.csv"
    )
    replays = sorted(p.name for p in (whole / "replays").glob("*.csv"))
    assert replays and replays == sorted(
        p.name for p in (resumed / "replays").glob("*.csv")
    )
    for name in replays:
        assert (resumed / "replays" / name).read_text() == (
            whole / "replays" / name
        ).read_text()
    assert sorted(p.name for p in (resumed / "checkpoints").iterdir()) == sorted(
        p.name for p in (whole / "checkpoints").iterdir()
    )
    timings = {"wall_time_s", "refine_time_s", "resumed_from_step"}
    assert {k: v for k, v in summary.items() if k not in timings} == {
        k: v for k, v in expected.items() if k not in timings
    }


def test_a_diverged_run_killed_after_training_still_reports_its_divergence(
    tmp_path,
):
    # Killed between training and summary.json (its figure, say): the rerun
    # trains no further and reports the divergence the run had.
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    whole.mkdir()
    resumed.mkdir()
    expected = train(whole, schedule="every:1", learning_rate=1e4)
    assert expected["diverged_at"] is not None
    train(resumed, schedule="every:1", learning_rate=1e4)
    (resumed / "summary.json").unlink()
    summary = train(resumed, schedule="every:1", learning_rate=1e4)
    assert summary["diverged_at"] == expected["diverged_at"]
    assert rows_without_elapsed(resumed / "metrics.csv") == rows_without_elapsed(
        whole / "metrics.csv"
    )
