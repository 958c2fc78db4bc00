"""A finished run's events refined with its replays fanned out over an executor."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import pytest
from click.testing import CliRunner

from keras_grok import cli
from keras_grok.runs.run_folder import RunFolder, RunFolderError
from keras_grok.sweeps.executors import ProcessExecutor
from keras_grok.sweeps.fan_out import refine_run

ROOT = Path(__file__).resolve().parents[2]
RECIPE = str(ROOT / "recipes" / "modadd.py")
TINY = [
    "p=11",
    "train_fraction=0.5",
    "batch_size=16",
    "embed_dim=16",
    "hidden=32",
    "learning_rate=0.01",
    "max_steps=300",
    "patience=-1",
]

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "jax",
    reason="the fan-out runs `keras-grok measure` processes, the same on every "
    "backend; replay itself is tested per backend in tests/runs/test_replay.py",
)


def record(out: Path, refine: bool) -> dict:
    args = ["run", RECIPE, "--backend", "jax", "--out", str(out), *TINY]
    result = CliRunner().invoke(cli.main, [*args, f"refine={str(refine).lower()}"])
    assert result.exit_code == 0, result.output + str(result.exception)
    return RunFolder(out).read_summary()


def test_fanned_out_refinement_gives_the_in_process_events(tmp_path):
    in_process = record(tmp_path / "in_process", refine=True)["events"]
    record(tmp_path / "fanned", refine=False)
    lines = []
    table = refine_run(
        tmp_path / "fanned", ProcessExecutor(parallel=2), log=lines.append
    )
    assert any(line.startswith("start ") for line in lines)  # jobs did run
    assert table == in_process
    assert table["memorized"] is not None
    jobs = sorted(p.name for p in (tmp_path / "fanned" / "replays" / "jobs").iterdir())
    assert "accuracy" in jobs
    # --overwrite clears what the jobs left.
    RunFolder(tmp_path / "fanned").clear()
    assert not (tmp_path / "fanned" / "replays").exists()


def test_the_refine_command_prints_the_table(tmp_path):
    record(tmp_path / "run", refine=False)
    result = CliRunner().invoke(cli.main, ["refine", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output + str(result.exception)
    table = json.loads(result.output[result.output.index("{") :])
    assert set(table["memorized"]) == {"step", "resolution", "measured_step", "lens"}


def test_an_unfinished_run_is_refused(tmp_path):
    folder = RunFolder(tmp_path)
    folder.config.write_text("{}")
    with pytest.raises(RunFolderError, match="no finished run"):
        refine_run(tmp_path)
