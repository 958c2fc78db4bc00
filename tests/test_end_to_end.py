"""A short run through the command line on this backend, and resuming a killed run."""

import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import pytest
from click.testing import CliRunner

from keras_grok import cli
from keras_grok.callbacks.schedule import resolve_schedule
from keras_grok.runs.run_folder import read_metrics

ROOT = Path(__file__).parents[1]
RECIPE = str(ROOT / "recipes" / "modadd.py")
BACKEND = keras.backend.backend()
TINY = ["p=23", "train_fraction=0.5", "batch_size=64", "learning_rate=0.003"]


def test_tiny_run_memorizes_and_writes_its_folder(tmp_path):
    out = tmp_path / "run"
    args = ["run", RECIPE, "--backend", BACKEND, "--out", str(out), "--seed", "1"]
    result = CliRunner().invoke(
        cli.main, [*args, *TINY, "max_steps=300", "patience=-1"]
    )
    assert result.exit_code == 0, result.output + str(result.exception)

    summary = json.loads((out / "summary.json").read_text())
    assert summary["final_train_accuracy"] == 1.0
    assert summary["memorized_at"] is not None and summary["final_step"] == 300
    config = json.loads((out / "config.json").read_text())
    assert config["backend"] == BACKEND and config["seed"] == 1
    assert config["config"]["p"] == 23 and "keras" in config["versions"]
    with (out / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert rows[-1]["step"] == "300" and float(rows[-1]["train_accuracy"]) == 1.0
    assert (out / "figure.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    again = CliRunner().invoke(cli.main, [*args, *TINY, "max_steps=300", "patience=-1"])
    assert again.exit_code == 2 and "--overwrite" in again.stderr


def launch(out: Path) -> subprocess.Popen:
    settings = [
        *TINY,
        "max_steps=1200",
        "patience=-1",
        "checkpoint_seconds=1.0",
        "schedule=geometric:1.1",
    ]
    command = [
        sys.executable,
        "-m",
        "keras_grok.cli",
        "run",
        RECIPE,
        "--backend",
        BACKEND,
    ]
    return subprocess.Popen(
        [*command, "--out", str(out), *settings],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "KERAS_BACKEND": BACKEND},
    )


@pytest.mark.skipif(
    BACKEND != "jax",
    reason="the CLI's kill-and-resume path is the same on every backend (a minute "
    "of subprocesses); exact resume per backend: tests/runs/test_resume_exact.py",
)
def test_a_run_killed_midway_resumes_without_lost_or_repeated_steps(tmp_path):
    out = tmp_path / "run"
    process = launch(out)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        # Kill midway, once a checkpoint exists and some rows are written.
        if (out / "checkpoint.npz").exists() and len(
            read_metrics(out / "metrics.csv")
        ) >= 45:
            break
        time.sleep(0.05)
    assert process.poll() is None, process.stderr.read().decode()[-2000:]
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_rows = read_metrics(out / "metrics.csv")
    assert not (out / "summary.json").exists()

    resumed = launch(out)
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read().decode()[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    resumed_from = summary["resumed_from_step"]
    assert 0 < resumed_from < summary["final_step"]

    steps = [r["step"] for r in read_metrics(out / "metrics.csv")]
    steps_per_epoch = math.ceil(round(0.5 * 23 * 23) / 64)
    total = math.ceil(1200 / steps_per_epoch) * steps_per_epoch
    # Accuracy and collapse at the run's x1.1 steps, one row per step.
    expected = set(resolve_schedule("geometric:1.1", total).steps)
    # The checkpoint can be newer than the last row (it is saved at epoch ends,
    # rows at scheduled steps), never older than a row it needs: every scheduled
    # step up to it was on disk when the run was killed.
    killed_steps = [r["step"] for r in killed_rows]
    assert killed_steps == sorted(s for s in expected if s <= killed_steps[-1])
    assert {s for s in expected if s <= resumed_from} <= set(killed_steps)
    assert steps == sorted(expected)
    elapsed = [r["elapsed"] for r in read_metrics(out / "metrics.csv")]
    assert elapsed == sorted(elapsed)
