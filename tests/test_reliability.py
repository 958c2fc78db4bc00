"""Divergence never crashes; an unreadable run folder is a clear error."""

import json
import math
from pathlib import Path

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from keras_grok import cli
from keras_grok.measures import collapse
from keras_grok.runs.run_folder import RunFolder, RunFolderError, read_metrics

ROOT = Path(__file__).parents[1]
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
    summary = json.loads((tmp_path / "regularized" / "summary.json").read_text())
    assert summary["diverged_at"] is not None and summary["diverged_at"] < 40
    rows = read_metrics(tmp_path / "regularized" / "metrics.csv")
    assert not math.isfinite(rows[-1]["train_loss"])
    assert (tmp_path / "unregularized" / "summary.json").exists()
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
    files = {p.name: p.read_bytes() for p in out.iterdir()}
    result = invoke(
        "modadd.py", out, "p=5", "max_steps=4", "batch_size=8", "collapse=false"
    )
    assert {p.name: p.read_bytes() for p in out.iterdir()} == files  # kept
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
