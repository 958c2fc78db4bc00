"""Divergence never crashes; an unreadable run folder is a clear error."""

import errno
import json
import math
import os
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from keras_grok import cli
from keras_grok.measures import collapse
from keras_grok.runs.run_folder import RunFolder, RunFolderError, read_metrics

ROOT = Path(__file__).parents[2]
BACKEND = keras.backend.backend()
TINY = ["p=23", "train_fraction=0.5", "batch_size=64", "max_steps=300"]


def invoke(recipe, out, *settings):
    return CliRunner().invoke(
        cli.main,
        ["run", str(ROOT / "recipes" / recipe), "--backend", BACKEND, "--out", str(out)]
        + list(settings),
    )


@pytest.mark.parametrize(
    "recipe, settings",
    [
        ("modadd.py", [*TINY, "collapse=true"]),
        ("mnist.py", ["dataset=digits", "train_size=100", "batch_size=50"]),
    ],
    ids=["modadd", "mnist-digits"],
)
def test_a_diverging_run_stops_with_one_warning_and_a_summary(
    tmp_path, recipe, settings
):
    result = invoke(recipe, tmp_path, *settings, "learning_rate=1e6", "max_steps=300")
    assert result.exit_code == 0, result.output + repr(result.exception)
    warnings = [line for line in result.stderr.splitlines() if "Warning" in line]
    assert len(warnings) == 1 and "non-finite" in warnings[0], result.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    diverged = summary["diverged_at"]
    assert diverged is not None and diverged < 300
    rows = read_metrics(tmp_path / "metrics.csv")
    assert rows[-1]["step"] < 300
    for row in rows:
        if not math.isfinite(row["train_loss"]):  # not presented as a measurement
            assert math.isnan(row["train_accuracy"]) and row["step"] >= diverged
    assert (tmp_path / "figure.png").exists()


def test_a_diverging_complexity_recipe_records_both_runs_and_draws_its_figure(
    tmp_path,
):
    # At this learning rate the regularized run's loss overflows within a few
    # steps; the unregularized one's (no weight decay) stays huge but finite.
    settings = ["p=11", "embed_dim=8", "hidden=16", "batch_size=32", "max_steps=40"]
    result = invoke("complexity.py", tmp_path, *settings, "learning_rate=1e6")
    assert result.exit_code == 0, result.output + repr(result.exception)
    regularized = RunFolder(tmp_path).child("regularized")
    summary = regularized.read_summary()
    assert summary["diverged_at"] is not None and summary["diverged_at"] < 40
    rows = regularized.read_metrics()
    assert not math.isfinite(rows[-1]["train_loss"])
    assert RunFolder(tmp_path).child("unregularized").is_finished()
    assert (tmp_path / "summary.json").exists()
    assert (tmp_path / "figure.png").stat().st_size > 0


def test_nc2_of_non_finite_means_is_nan():
    means = np.full((3, 5), np.nan)
    assert math.isnan(collapse.nc2_of_means(means))


def test_nc1_of_one_class_is_refused_not_rounding_noise():
    features = np.random.default_rng(0).normal(size=(20, 4)).astype("float32")
    stats = collapse.collapse_statistics((features, np.zeros(20, "int32")), 1)
    with pytest.raises(ValueError, match="two or more classes"):
        collapse.nc1(stats)
    figures = collapse.collapse_figures(stats, include_nc2=False)
    assert math.isnan(float(keras.ops.convert_to_numpy(figures["nc1"])))


def finished_looking_run(folder: Path) -> RunFolder:
    run = RunFolder(folder)
    folder.mkdir(exist_ok=True)
    run.metrics.write_text("step,elapsed,acc\n1,0.1,0.5\n2,0.2,0.6\n")
    return run


@pytest.mark.parametrize(
    "damage, words",
    [
        (lambda r: r.metrics.write_text("step,elapsed\n1,0.1\nbanana\n"), "line 3"),
        (lambda r: r.metrics.write_text("step,e\n1,0.1\n3,0.2\n2,0.3\n"), "step 2"),
        (lambda r: r.metrics.write_text("epoch,loss\n1,0.1\n"), "not a metrics"),
    ],
    ids=["garbage-line", "out-of-order", "other-run"],
)
def test_a_damaged_metrics_file_names_the_file_and_the_fix(tmp_path, damage, words):
    run = finished_looking_run(tmp_path)
    damage(run)
    before = run.metrics.read_text()
    with pytest.raises(RunFolderError, match=words) as info:
        read_metrics(run.metrics)
    assert "metrics.csv" in str(info.value) and "--overwrite" in str(info.value)
    assert run.metrics.read_text() == before


SMALL = ["p=5", "max_steps=4", "batch_size=8", "collapse=false"]


def cli_on_damaged_folder(tmp_path, damage):
    out = tmp_path / "run"
    first = invoke(
        "modadd.py", out, "p=5", "max_steps=4", "batch_size=8", "collapse=false"
    )
    assert first.exit_code == 0, first.output
    RunFolder(out).summary.unlink()  # unfinished: the next command resumes it
    damage(RunFolder(out))
    files = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    result = invoke(
        "modadd.py", out, "p=5", "max_steps=4", "batch_size=8", "collapse=false"
    )
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == files
    return result


@pytest.mark.parametrize(
    "damage, name",
    [
        (lambda r: r.config.write_text("{not json"), "config.json"),
        (lambda r: r.checkpoint.write_bytes(r.checkpoint.read_bytes()[:100]), "npz"),
        (lambda r: r.metrics.write_text("epoch,loss\n1,2\n"), "metrics.csv"),
        (lambda r: r.metrics.write_text(r.metrics.read_text() + "x,y\n"), "csv"),
    ],
    ids=["config-not-json", "truncated-checkpoint", "foreign-metrics", "garbage"],
)
def test_the_cli_refuses_a_damaged_run_folder_in_one_line(tmp_path, damage, name):
    result = cli_on_damaged_folder(tmp_path, damage)
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, result.output + repr(result.exception)
    assert len(lines) == 1 and name in lines[0] and "--overwrite" in lines[0]


def test_a_checkpoint_of_another_shape_is_refused(tmp_path):
    from keras_grok.callbacks import TrainingCheckpoint
    from keras_grok.models import modular_mlp

    model = modular_mlp(7, embed_dim=4, hidden=8)
    model.compile("adamw", "sparse_categorical_crossentropy")
    model.fit(
        np.zeros((2, 2), "int32"),
        np.zeros(2, "int32"),
        verbose=0,
        callbacks=[TrainingCheckpoint(tmp_path / "c.npz", every_seconds=0)],
    )
    wider = modular_mlp(7, embed_dim=4, hidden=16)
    wider.compile("adamw", "sparse_categorical_crossentropy")
    with pytest.raises(RunFolderError, match="does not match this model"):
        TrainingCheckpoint.restore(tmp_path / "c.npz", wider)
    (tmp_path / "c.npz").write_bytes(b"PK\x03\x04 torn")
    with pytest.raises(RunFolderError, match="damaged"):
        TrainingCheckpoint.restore(tmp_path / "c.npz", model)


def test_a_folder_is_locked_by_one_live_process(tmp_path):
    folder = RunFolder(tmp_path)
    with folder.lock(), pytest.raises(RunFolderError, match="in use by process"):
        RunFolder(tmp_path).lock().__enter__()
    (tmp_path / ".lock").write_text("999999999")  # a killed process's lock
    with folder.lock():
        assert (tmp_path / ".lock").exists()
    assert not (tmp_path / ".lock").exists()


# A folder's contents always belong to its config (issue 18, item 1).
RESUMABLE = ["p=11", "max_steps=30", "batch_size=16", "collapse=false"]
RESUMABLE += ["checkpoint_seconds=0"]


@pytest.fixture(scope="module")
def interrupted_runs(tmp_path_factory):
    """Two finished tiny runs (seeds 0 and 1) whose summary is removed."""
    root = tmp_path_factory.mktemp("interrupted")
    for seed in ("0", "1"):
        out = root / f"seed{seed}"
        result = invoke("modadd.py", out, *RESUMABLE, "--seed", seed)
        assert result.exit_code == 0, result.output + repr(result.exception)
        RunFolder(out).summary.unlink()
    return root


def keep_rows(folder: RunFolder, count: int) -> None:
    lines = folder.metrics.read_text().splitlines(keepends=True)
    folder.metrics.write_text("".join(lines[: count + 1]))


@pytest.mark.parametrize(
    "change, settings, words",
    [
        (lambda f, o: f.config.unlink(), ["learning_rate=0.01"], "no config.json"),
        (lambda f, o: f.metrics.unlink(), [], "metrics.csv is missing"),
        (lambda f, o: keep_rows(f, 0), [], "metrics.csv has no rows"),
        (lambda f, o: keep_rows(f, 2), [], "metrics.csv ends at step 2"),
        (
            lambda f, o: f.checkpoint.write_bytes(o.checkpoint.read_bytes()),
            [],
            "checkpoint.npz was saved by a run of another config or seed",
        ),
    ],
    ids=["config-deleted", "metrics-deleted", "metrics-header", "metrics-cut", "seed"],
)
def test_a_folder_whose_files_disagree_is_refused_before_training(
    tmp_path, interrupted_runs, change, settings, words
):
    out = tmp_path / "run"
    shutil.copytree(interrupted_runs / "seed0", out)
    change(RunFolder(out), RunFolder(interrupted_runs / "seed1"))
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    result = invoke("modadd.py", out, *RESUMABLE, *settings, "--seed", "0")
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, result.output + repr(result.exception)
    assert len(lines) == 1 and words in lines[0] and "--overwrite" in lines[0]
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_the_same_recipe_named_by_another_path_resumes(
    tmp_path, interrupted_runs, monkeypatch
):
    out = tmp_path / "run"
    shutil.copytree(interrupted_runs / "seed0", out)
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(
        cli.main,
        ["run", "recipes/modadd.py", "--backend", BACKEND, "--out", str(out)]
        + [*RESUMABLE, "--seed", "0"],
    )
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert RunFolder(out).read_summary()["resumed_from_step"] == 30


# Faults end in one line, and the run resumes after them (issue 18, item 4).
@pytest.mark.parametrize("name", ["figure.png", "summary.json", ".lock"])
def test_a_directory_where_a_run_writes_a_file_is_refused_before_training(
    tmp_path, name
):
    (tmp_path / name).mkdir()
    for overwrite in ([], ["--overwrite"]):
        result = invoke("modadd.py", tmp_path, *RESUMABLE, *overwrite)
        lines = result.stderr.strip().splitlines()
        assert result.exit_code == 2, result.output + repr(result.exception)
        assert len(lines) == 1 and name in lines[0] and "directory" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_a_full_disk_ends_in_one_line_and_the_rerun_resumes(tmp_path, monkeypatch):
    real_fsync, calls = os.fsync, []

    def full_after_three(fd):
        calls.append(fd)
        if len(calls) > 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full_after_three)
    result = invoke("modadd.py", tmp_path, *RESUMABLE)
    errors = [line for line in result.stderr.splitlines() if "Error" in line]
    assert result.exit_code == 1, result.output + repr(result.exception)
    assert len(errors) == 1 and "No space left on device" in errors[0], errors
    assert str(tmp_path) in errors[0] and "rerun" in errors[0]
    assert "Traceback" not in result.output
    assert not list(tmp_path.rglob("*.tmp")) and not (tmp_path / ".lock").exists()

    monkeypatch.setattr(os, "fsync", real_fsync)
    again = invoke("modadd.py", tmp_path, *RESUMABLE)
    assert again.exit_code == 0, again.output + repr(again.exception)
    assert RunFolder(tmp_path).is_finished()


def test_overwrite_clears_the_complexity_recipes_nested_runs(tmp_path):
    settings = ["p=11", "embed_dim=8", "hidden=16", "batch_size=32", "max_steps=8"]
    first = invoke("complexity.py", tmp_path, *settings)
    assert first.exit_code == 0, first.output + repr(first.exception)
    again = invoke("complexity.py", tmp_path, *settings, "learning_rate=0.01")
    assert again.exit_code == 2 and "--overwrite" in again.stderr
    result = invoke(
        "complexity.py", tmp_path, *settings, "learning_rate=0.01", "--overwrite"
    )
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "--overwrite" not in result.output
    for name in ("regularized", "unregularized"):
        child = RunFolder(tmp_path).child(name)
        assert child.saved_config()["config"]["learning_rate"] == 0.01
        assert child.read_summary()["resumed_from_step"] is None
