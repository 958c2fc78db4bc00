"""Lenses measured after the fact by exact replay from a run's checkpoint history."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from keras_grok import cli
from keras_grok.callbacks import TrainingCheckpoint
from keras_grok.runs import replay
from keras_grok.runs.replay import measure_run
from keras_grok.runs.run_folder import (
    CheckpointState,
    RunFolder,
    RunFolderError,
    checkpoint_bytes,
    read_metrics,
)
from keras_grok.runs.step_spec import parse_steps

ROOT = Path(__file__).resolve().parents[2]
RECIPE = str(ROOT / "recipes" / "modadd.py")
TINY = [
    "p=11",
    "train_fraction=0.5",
    "batch_size=16",
    "embed_dim=16",
    "hidden=32",
    "learning_rate=0.01",
    "max_steps=80",
    "patience=-1",
    "schedule=geometric:1.2",
]


def record_run(out: Path, *extra: str) -> None:
    backend = keras.backend.backend()
    args = ["run", RECIPE, "--backend", backend, "--out", str(out), *TINY, *extra]
    result = CliRunner().invoke(cli.main, args)
    assert result.exit_code == 0, result.output + str(result.exception)


def raw_rows(path: Path) -> dict[str, dict[str, str]]:
    """The CSV's rows as text, by step: a bitwise comparison of the floats."""
    with path.open() as f:
        return {row["step"]: row for row in csv.DictReader(f)}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("replay") / "run"
    record_run(out)
    return out


def test_a_run_keeps_a_sparse_checkpoint_history(run_dir):
    steps = [s for s, _ in RunFolder(run_dir).history_checkpoints()]
    # 61 training pairs, batches of 16: 4 steps an epoch, 80 steps in all.
    assert steps == [0, 4, 8, 16, 32, 64, 80]


def test_replayed_values_equal_the_in_line_rows_bit_for_bit(run_dir):
    inline = raw_rows(run_dir / "metrics.csv")
    # Mid-epoch steps and epoch ends (4 steps an epoch), from every checkpoint.
    steps = [int(s) for s in inline if int(s) >= 5]
    assert {8, 12, 15, 22, 46, 79, 80} <= set(steps)
    rows = measure_run(run_dir, ["collapse"], steps)
    assert [r["step"] for r in rows] == steps
    replayed = raw_rows(RunFolder(run_dir).replay_metrics("accuracy+collapse"))
    for step in map(str, steps):
        columns = [k for k in replayed[step] if k != "step"]
        assert "train_rnc1" in columns and "test_accuracy" in columns
        assert {k: replayed[step][k] for k in columns} == {
            k: inline[step][k] for k in columns
        }


def test_a_killed_replay_resumes_with_the_missing_steps(run_dir, monkeypatch):
    steps = (3, 9, 20, 40, 70)
    whole = measure_run(run_dir, ["collapse"], steps, key_frequencies="per_step")
    path = RunFolder(run_dir).replay_metrics("accuracy+collapse")
    path.unlink()
    written = []
    original = replay.write_metrics_atomic

    def die_after_two(*args):
        original(*args)
        written.append(1)
        if len(written) == 2:
            raise KeyboardInterrupt  # as a kill between two stretches

    monkeypatch.setattr(replay, "write_metrics_atomic", die_after_two)
    with pytest.raises(KeyboardInterrupt):
        measure_run(run_dir, ["collapse"], steps)
    partial = [r["step"] for r in raw_rows(path).values()]
    assert 0 < len(partial) < len(steps)
    monkeypatch.setattr(replay, "write_metrics_atomic", original)
    resumed = measure_run(run_dir, ["collapse"], steps)
    assert resumed == whole


def test_measure_applies_a_lens_the_run_never_had(run_dir):
    result = CliRunner().invoke(
        cli.main, ["measure", str(run_dir), "--lens", "fourier", "--steps", "10:80:35"]
    )
    assert result.exit_code == 0, result.output + str(result.exception)
    rows = raw_rows(RunFolder(run_dir).replay_metrics("accuracy+fourier"))
    assert list(rows) == ["10", "45", "80"]
    assert "fourier_sparsity" not in raw_rows(run_dir / "metrics.csv")["80"]
    for row in rows.values():
        assert 0.0 <= float(row["fourier_sparsity"]) <= 1.0
        assert float(row["train_restricted_loss"]) > 0.0


def test_nothing_but_the_replay_file_changes_in_the_run_folder(run_dir):
    before = {p: p.stat().st_mtime_ns for p in run_dir.iterdir() if p.is_file()}
    measure_run(run_dir, ["collapse"], [33])
    after = {p: p.stat().st_mtime_ns for p in run_dir.iterdir() if p.is_file()}
    assert after == before


@pytest.mark.parametrize(
    "args, message",
    [
        (["--lens", "colapse", "--steps", "10"], "Unknown lens 'colapse'"),
        (["--steps", "10:5"], "steps must be START:STOP:STRIDE"),
        (["--steps", "0"], "steps must be >= 1"),
        (["--steps", "81"], "steps must lie in [1, 80]"),
        (["--steps", "10", "--name", "n" * 300], "at most 200 bytes"),
        (
            ["--steps", "10", "--lens", "fourier", "--key-frequencies", "recorded"],
            "this run had none: use 'final'",
        ),
    ],
)
def test_bad_measure_requests_end_in_one_line(run_dir, args, message):
    result = CliRunner().invoke(cli.main, ["measure", str(run_dir), *args])
    assert result.exit_code == 2
    assert message in result.stderr and result.stderr.count("\n") == 1


def test_measure_refuses_a_folder_that_is_not_a_run(tmp_path):
    result = CliRunner().invoke(cli.main, ["measure", str(tmp_path), "--steps", "5"])
    assert result.exit_code == 2 and "not a run folder" in result.stderr


def test_measure_refuses_a_run_without_history(tmp_path, run_dir):
    folder = RunFolder(tmp_path / "old")
    folder.path.mkdir()
    folder.config.write_text((run_dir / "config.json").read_text())
    with pytest.raises(RunFolderError, match="keeps no checkpoint history"):
        measure_run(folder.path, ["collapse"], [5])


def test_step_specs_parse_as_documented():
    assert parse_steps("2000:2040:10") == (2000, 2010, 2020, 2030, 2040)
    assert parse_steps("5,3,5") == (3, 5)
    assert parse_steps("7") == (7,)


def test_the_history_stays_within_its_budget(tmp_path):
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(64), keras.layers.Dense(2)]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    x = np.random.default_rng(0).random((32, 4)).astype("float32")
    y = np.arange(32) % 2
    model.optimizer.build(model.trainable_variables)
    arrays = [
        [v.numpy() for v in vs] for vs in (model.weights, model.optimizer.variables)
    ]
    size = len(checkpoint_bytes(CheckpointState(0, 0, 0.0), *arrays))
    folder = RunFolder(tmp_path)
    saver = TrainingCheckpoint(
        folder.checkpoint,
        every_seconds=1e9,
        history=folder,
        history_budget_mb=2.5 * size / 1e6,
    )
    with pytest.warns(UserWarning, match="would pass its budget"):
        model.fit(x, y, batch_size=4, epochs=8, verbose=0, callbacks=[saver])
    # 8 steps an epoch: 0, 8, 16, 32 and 64 are due; the budget holds two, and
    # the last state is always kept.
    assert [s for s, _ in folder.history_checkpoints()] == [0, 8, 64]


def test_a_replay_name_ending_in_csv_is_not_doubled(run_dir):
    measure_run(run_dir, ["collapse"], [10], name="named.csv")
    assert (run_dir / "replays" / "named.csv").exists()
    assert not (run_dir / "replays" / "named.csv.csv").exists()


def test_a_second_measure_into_one_name_keeps_the_first_lens_columns(run_dir):
    # Accuracy alone into a file that held collapse columns used to rewrite it
    # with the accuracy columns only: the collapse values of step 8 were lost.
    first = measure_run(run_dir, ["collapse"], [8], name="both")
    measure_run(run_dir, ["accuracy"], [16], name="both")
    rows = read_metrics(run_dir / "replays" / "both.csv")
    assert [r["step"] for r in rows] == [8, 16]
    assert rows[0]["train_rnc1"] == first[0]["train_rnc1"]
    assert math.isnan(rows[1]["train_rnc1"]) and math.isfinite(rows[1]["test_accuracy"])


def test_refine_and_measure_name_the_runs_of_a_parent_folder(tmp_path, run_dir):
    import shutil

    parent = tmp_path / "sweep"
    shutil.copytree(run_dir, parent / "runs" / "wd=1-seed=0")
    (parent / "summary.json").write_text("{}")  # a sweep's, finished
    (parent / "config.json").write_text((run_dir / "config.json").read_text())
    for verb in (["refine"], ["measure", "--steps", "5"]):
        result = CliRunner().invoke(cli.main, [verb[0], str(parent), *verb[1:]])
        assert result.exit_code == 2, (verb, result.output, result.exception)
        assert "holds the runs runs/wd=1-seed=0" in result.stderr, result.stderr


def test_refine_refuses_a_run_whose_history_was_deleted(tmp_path, run_dir):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    shutil.rmtree(copy / "checkpoints")
    result = CliRunner().invoke(cli.main, ["refine", str(copy)])
    assert result.exit_code == 2 and "keeps no checkpoint history" in result.stderr


def test_measure_refuses_a_replays_file_where_the_folder_belongs(tmp_path, run_dir):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    shutil.rmtree(copy / "replays", ignore_errors=True)
    (copy / "replays").write_text("x")
    result = CliRunner().invoke(cli.main, ["measure", str(copy), "--steps", "5"])
    assert result.exit_code == 2 and "replays is a file" in result.stderr


def test_the_fourier_lens_of_a_small_modulus_uses_the_frequencies_there_are(run_dir):
    # p = 11 has 5 frequencies: the default of 5 key frequencies fits, and a
    # smaller p takes (p - 1) / 2 rather than refusing.
    rows = measure_run(run_dir, ["fourier"], [10], name="fourier-small")
    assert np.isfinite(rows[0]["fourier_gini"])


def test_step_specs_may_be_an_int_or_a_sequence_of_ints():
    assert parse_steps(5) == (5,)
    assert parse_steps(np.int64(7)) == (7,)
    assert parse_steps([30, 10, 30]) == (10, 30)
    assert parse_steps((2, 1)) == (1, 2)
    assert parse_steps(np.array([4, 2])) == (2, 4)
    assert parse_steps(range(1, 4)) == (1, 2, 3)
    assert parse_steps([10.0]) == (10,)


@pytest.mark.parametrize("spec", [None, True, 2.5j, {"a": 1}, ["1"], [1, None]])
def test_step_specs_of_another_type_are_a_type_error_naming_steps(spec):
    with pytest.raises(TypeError, match="Received: steps="):
        parse_steps(spec)


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ([], "steps must list at least one step. Received: steps=[]"),
        ("", "steps must list at least one step"),
        ([0, 3], "steps must be >= 1. Received: steps=[0, 3]"),
        (-2, "steps must be >= 1"),
        ([2.5], "steps must be whole numbers"),
        ("1:1000000", "more than the 100,000"),
    ],
)
def test_step_specs_without_a_valid_step_are_refused(spec, fragment):
    with pytest.raises(ValueError) as error:
        parse_steps(spec)
    assert fragment in str(error.value)


def test_measure_refuses_a_run_dir_that_is_not_a_path():
    with pytest.raises(TypeError, match="Received: run_dir=5"):
        measure_run(5, ["collapse"], [1])


def test_measure_says_an_empty_list_of_steps_is_empty(tmp_path):
    with pytest.raises(ValueError, match=r"at least one step. Received: steps=\[\]"):
        measure_run(tmp_path, ["collapse"], [])


def test_measure_refuses_one_lens_name_given_as_a_string(tmp_path):
    with pytest.raises(TypeError, match="Received: lenses='collapse'"):
        measure_run(tmp_path, "collapse", [1])


def test_measure_names_what_config_json_lacks(tmp_path, run_dir):
    import json
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    record = json.loads((copy / "config.json").read_text())
    del record["backend"]
    (copy / "config.json").write_text(json.dumps(record))
    with pytest.raises(RunFolderError, match="config.json records no backend"):
        measure_run(copy, ["collapse"], [5])


def test_measure_refuses_a_history_that_another_run_saved(tmp_path, run_dir):
    import json
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    record = json.loads((copy / "config.json").read_text())
    record["seed"] = 5  # now the history's checkpoints are another seed's
    (copy / "config.json").write_text(json.dumps(record))
    with pytest.raises(RunFolderError, match="does not belong to this run"):
        measure_run(copy, ["collapse"], [10])


def test_measure_refuses_a_history_checkpoint_renamed_to_another_step(
    tmp_path, run_dir
):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    folder = RunFolder(copy)
    folder.history_checkpoint(16).rename(folder.history_checkpoint(20))
    with pytest.raises(RunFolderError, match="holds step 16, not 20"):
        measure_run(copy, ["collapse"], [25])


def test_measure_run_of_a_folder_without_a_recipe_says_what_replay_needs(tmp_path):
    # A folder train_and_record wrote for a user's model has metrics and
    # checkpoints but no config.json: "not a run folder" confused its author.
    from keras_grok.runs.replay import measure_run
    from keras_grok.runs.run_folder import RunFolderError

    (tmp_path / "metrics.csv").write_text("step,train_accuracy\n1,0.5\n")
    with pytest.raises(
        RunFolderError, match="pass after_the_fact= to train_and_record"
    ):
        measure_run(tmp_path, ["accuracy"], [1])
