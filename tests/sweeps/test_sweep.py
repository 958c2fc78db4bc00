"""The weight-decay sweep: aggregation, skipping finished runs, a tiny real sweep."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from keras_grok import cli
from keras_grok.analysis.events import first_step_at
from keras_grok.sweeps.sweep import SweepRun, cli_command, run_all, run_failure
from keras_grok.sweeps.sweep_results import mean_curve, summarize, table_markdown

ROOT = Path(__file__).parents[2]


def rows(steps, train, test):
    return [
        {"step": s, "train_accuracy": float(a), "test_accuracy": float(b)}
        for s, a, b in zip(steps, train, test)
    ]


def test_mean_curve_is_the_mean_and_std_over_runs_on_shared_steps():
    a = rows([1, 10, 100], [0.1, 0.5, 1.0], [0.1, 0.2, 0.3])
    b = rows([1, 10, 100], [0.3, 0.7, 1.0], [0.1, 0.4, 0.9])
    curve = mean_curve([a, b], "test_accuracy")
    np.testing.assert_array_equal(curve.steps, [1, 10, 100])
    np.testing.assert_allclose(curve.mean, [0.1, 0.3, 0.6], atol=1e-12)
    np.testing.assert_allclose(curve.std, [0.0, 0.1, 0.3], atol=1e-12)
    assert mean_curve([a, b], "rnc1") is None


def test_runs_measured_at_other_steps_are_interpolated_in_log_step():
    a = rows([1, 100], [0.0, 1.0], [0.0, 1.0])
    b = rows([1, 10], [0.5, 0.5], [0.5, 0.5])
    curve = mean_curve([a, b], "test_accuracy")
    np.testing.assert_array_equal(curve.steps, [1, 10, 100])
    # a at step 10 is halfway in log(step); b has no value at 100.
    np.testing.assert_allclose(curve.mean, [0.25, 0.5, 1.0], atol=1e-12)
    np.testing.assert_array_equal(curve.count, [2, 2, 1])


def test_summary_table_averages_grokking_times_over_the_runs_that_reached_them():
    groups = {
        0.1: [
            rows([1, 10, 100, 1000], [0.5, 1.0, 1.0, 1.0], [0.1, 0.1, 0.9, 0.9]),
            rows([1, 10, 100, 1000], [0.5, 0.9, 1.0, 1.0], [0.1, 0.1, 0.1, 0.95]),
        ],
        0.01: [rows([1, 10, 100, 1000], [0.5, 1.0, 1.0, 1.0], [0.1, 0.1, 0.2, 0.3])],
    }
    table = summarize(groups, train_threshold=0.99, test_threshold=0.85)
    assert [row["value"] for row in table] == [0.1, 0.01]
    big, small = table
    assert big["memorized_at"] == 55.0 and big["memorized_at_std"] == 45.0
    assert big["generalized_at"] == 550.0 and big["generalized_at_runs"] == 2
    assert big["best_test_accuracy"] == pytest.approx(0.925)
    assert small["generalized_at"] is None and small["generalized_at_runs"] == 0
    assert small["final_test_accuracy"] == pytest.approx(0.3)
    markdown = table_markdown(table)
    assert "| 0.1 | 55 ± 45 (2/2) | 550 ± 450 (2/2) | 0.925 | 0.925 |" in markdown
    assert "not reached (0/1)" in markdown
    assert first_step_at(groups[0.01][0], "test_accuracy", 0.25) == 1000


def test_nan_values_never_count_as_reached():
    nan_rows = [{"step": 5, "test_accuracy": math.nan}]
    assert first_step_at(nan_rows, "test_accuracy", 0.0) is None


def fake_run(folder: Path, value: float) -> SweepRun:
    # A "run" that records that it ran and finishes by writing summary.json.
    script = (
        "import pathlib, sys; p = pathlib.Path(sys.argv[1]); "
        "(p / 'ran').write_text('x'); (p / 'summary.json').write_text('{}')"
    )
    return SweepRun(value, 0, folder, (sys.executable, "-c", script, str(folder)))


def test_finished_runs_are_skipped_and_the_others_run(tmp_path):
    done, todo = tmp_path / "done", tmp_path / "todo"
    done.mkdir()
    (done / "summary.json").write_text("{}")
    lines = []
    codes = run_all([fake_run(done, 1.0), fake_run(todo, 2.0)], 2, lines.append)
    assert codes == {todo: 0}
    assert (todo / "ran").exists() and not (done / "ran").exists()
    assert "skip done (finished)" in lines
    again = run_all([fake_run(done, 1.0), fake_run(todo, 2.0)], 2, lines.append)
    assert again == {}


def test_a_failing_run_reports_its_exit_code_and_keeps_its_log(tmp_path):
    failing = SweepRun(
        1.0, 0, tmp_path / "bad", (sys.executable, "-c", "print('boom'); exit(3)")
    )
    assert run_all([failing], 1, lambda _: None) == {tmp_path / "bad": 3}
    assert "boom" in (tmp_path / "bad" / "log.txt").read_text()
    with pytest.raises(ValueError, match="parallel must be an integer >= 1"):
        run_all([failing], 0)


def test_cli_command_forwards_settings_as_typed_words():
    command = cli_command(
        "r.py", "out", "jax", 3, {"a": None, "b": True, "c": [0.3, 0.1], "d": 2.5}
    )
    assert command[:3] == (sys.executable, "-m", "keras_grok.cli")
    assert command[3:] == (
        "run", "r.py", "--backend", "jax", "--out", "out", "--seed", "3",
        "--set", "a=none", "--set", "b=true", "--set", "c=0.3,0.1", "--set", "d=2.5",
    )  # fmt: skip


@pytest.mark.skipif(
    importlib.util.find_spec("sklearn") is None, reason="needs scikit-learn (digits)"
)
def test_a_tiny_digits_sweep_aggregates_and_never_reruns_finished_runs(tmp_path):
    out = tmp_path / "sweep"
    args = [
        "run",
        str(ROOT / "recipes" / "weight_decay_sweep.py"),
        "--backend",
        keras.backend.backend(),
        "--out",
        str(out),
        "--set",
        "dataset=digits",
        "weight_decays=0.3,0.03",
        "seeds=0",
        "max_steps=30",
        "train_size=50",
        "hidden=16",
        "schedule=geometric:2",
        "checkpoint_seconds=1000",
    ]
    result = CliRunner().invoke(cli.main, args)
    assert result.exit_code == 0, result.output + str(result.exception)
    for name in ("figure.png", "table.md", "table.csv", "summary.json"):
        assert (out / name).exists(), name
    summary = json.loads((out / "summary.json").read_text())
    assert [row["value"] for row in summary["table"]] == [0.3, 0.03]
    assert all(row["runs"] == 1 for row in summary["table"])
    runs = sorted(p.name for p in (out / "runs").iterdir())
    assert runs == ["wd=0.03-seed=0", "wd=0.3-seed=0"]
    child = json.loads((out / "runs" / "wd=0.3-seed=0" / "config.json").read_text())
    assert child["config"]["weight_decay"] == 0.3 and child["config"]["hidden"] == 16
    assert child["backend"] == keras.backend.backend()

    # Interrupted after its runs: nothing is rerun, the aggregate is written again.
    (out / "summary.json").unlink()
    kept = out / "runs" / "wd=0.3-seed=0" / "metrics.csv"
    before = kept.read_bytes(), kept.stat().st_mtime_ns
    again = CliRunner().invoke(cli.main, args)
    assert again.exit_code == 0, again.output + str(again.exception)
    assert "skip wd=0.3-seed=0 (finished)" in again.output
    assert "skip wd=0.03-seed=0 (finished)" in again.output
    assert "start" not in again.output
    assert (kept.read_bytes(), kept.stat().st_mtime_ns) == before
    assert (out / "summary.json").exists()


SLEEPING_SWEEP = """
import sys
from pathlib import Path

from keras_grok.sweeps.sweep import SweepRun, run_all

CONFIG = {"seed": 0}
SCRIPT = (
    "import os, sys, time; "
    "open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(120)"
)


def run(config, out_dir, verbose=True):
    child = Path(out_dir) / "runs" / "child"
    command = (sys.executable, "-c", SCRIPT, str(child / "pid"))
    run_all([SweepRun(1.0, 0, child, command)], 1, print)
    return {}
"""


def _default_stop_signals() -> None:
    # In the child: Ctrl-C and SIGHUP act as in a terminal, even where the test
    # runs with them ignored (a background job, nohup).
    for name in ("SIGINT", "SIGHUP"):
        signal.signal(getattr(signal, name), signal.SIG_DFL)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize(
    "name, words",
    [("SIGTERM", "SIGTERM"), ("SIGINT", "interrupted (Ctrl-C)"), ("SIGHUP", "SIGHUP")],
)
def test_a_stop_signal_to_a_sweep_ends_its_runs_and_exits_with_one_line(
    tmp_path, name, words
):
    recipe = tmp_path / "sleeping_sweep.py"
    recipe.write_text(SLEEPING_SWEEP)
    out = tmp_path / "sweep"
    sweep = subprocess.Popen(
        [sys.executable, "-m", "keras_grok.cli", "run", str(recipe)]
        + ["--backend", keras.backend.backend(), "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_stop_signals,
    )
    pid_file = out / "runs" / "child" / "pid"
    deadline = time.monotonic() + 60
    while not (pid_file.exists() and pid_file.read_text()):
        assert time.monotonic() < deadline and sweep.poll() is None, sweep.stderr
        time.sleep(0.1)
    child = int(pid_file.read_text())
    sweep.send_signal(getattr(signal, name))
    _, stderr = sweep.communicate(timeout=60)
    errors = [line for line in stderr.splitlines() if line.startswith("Error")]
    assert sweep.returncode == 128 + getattr(signal, name), stderr
    assert len(errors) == 1 and words in errors[0], stderr
    assert "Traceback" not in stderr
    with pytest.raises(ProcessLookupError):  # ended and reaped, not orphaned
        os.kill(child, 0)
    assert not (out / ".lock").exists()


PLAIN_SCRIPT_SWEEP = """
import sys
from pathlib import Path

from keras_grok.sweeps.sweep import SweepRun, run_all

child = Path(sys.argv[1])
script = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); " \\
    "time.sleep(120)"
run_all([SweepRun(1.0, 0, child, (sys.executable, "-c", script, str(child / "pid")))])
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_to_a_plain_script_running_a_sweep_ends_its_runs(tmp_path):
    # No handler of the script's own: SIGTERM's default would kill the script at
    # once and leave its run training as an orphan.
    script = tmp_path / "sweep_script.py"
    script.write_text(PLAIN_SCRIPT_SWEEP)
    child_folder = tmp_path / "child"
    sweep = subprocess.Popen(
        [sys.executable, str(script), str(child_folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    pid_file = child_folder / "pid"
    deadline = time.monotonic() + 60
    while not (pid_file.exists() and pid_file.read_text()):
        assert time.monotonic() < deadline and sweep.poll() is None, sweep.stderr
        time.sleep(0.1)
    child = int(pid_file.read_text())
    sweep.send_signal(signal.SIGTERM)
    _, stderr = sweep.communicate(timeout=60)
    assert sweep.returncode == 128 + signal.SIGTERM, stderr
    assert "Traceback" not in stderr
    with pytest.raises(ProcessLookupError):  # ended and reaped, not orphaned
        os.kill(child, 0)


@pytest.mark.parametrize("parallel", ["2", 1.5, True, 0])
def test_run_all_refuses_a_parallel_that_is_not_a_whole_number_of_at_least_one(
    parallel,
):
    with pytest.raises(ValueError, match=f"Received: parallel={parallel!r}"):
        run_all([], parallel=parallel)


@pytest.mark.parametrize("poll_seconds", [-1, 0, "fast", math.nan])
def test_run_all_refuses_a_poll_interval_that_is_not_a_positive_number(
    poll_seconds,
):
    with pytest.raises(ValueError, match="Received: poll_seconds="):
        run_all([], poll_seconds=poll_seconds)


def test_run_all_refuses_two_runs_sharing_one_folder_before_running_either(
    tmp_path,
):
    a, b = fake_run(tmp_path / "same", 1.0), fake_run(tmp_path / "x/../same", 2.0)
    with pytest.raises(ValueError, match="two runs of the sweep share the folder"):
        run_all([a, b], 1, lambda _: None)
    assert not (tmp_path / "same").exists()


def test_a_run_whose_program_does_not_exist_fails_alone_with_exit_127(tmp_path):
    missing = SweepRun(1.0, 0, tmp_path / "missing", ("/nonexistent/binary",))
    lines = []
    codes = run_all([missing, fake_run(tmp_path / "ok", 2.0)], 1, lines.append)
    assert codes == {tmp_path / "missing": 127, tmp_path / "ok": 0}
    assert lines[0].startswith("FAILED missing (exit 127): cannot start: ")
    assert "/nonexistent/binary" in lines[0]
    assert "done ok" in lines
    log = (tmp_path / "missing" / "log.txt").read_text()
    assert log.startswith("Error: cannot start: ")


def test_a_sweep_run_refuses_a_command_given_as_one_string(tmp_path):
    with pytest.raises(TypeError, match="Received: command='python -c pass'"):
        SweepRun(1.0, 0, tmp_path, "python -c pass")
    with pytest.raises(TypeError, match="Received: folder=3"):
        SweepRun(1.0, 0, 3, ("python",))
    assert SweepRun(1.0, 0, str(tmp_path), ["python"]).folder == tmp_path


@pytest.mark.parametrize(
    "train, test, fragment",
    [
        (2.0, 0.9, "Received: train_threshold=2.0"),
        (0.9, 0.0, "Received: test_threshold=0.0"),
        ("0.9", 0.9, "Received: train_threshold='0.9'"),
        (0.9, math.nan, "Received: test_threshold=nan"),
    ],
)
def test_summarize_refuses_thresholds_outside_zero_to_one(train, test, fragment):
    groups = {0.1: [rows([1], [1.0], [1.0])]}
    with pytest.raises(ValueError, match=fragment):
        summarize(groups, train, test)


def test_summarize_and_mean_curve_read_rows_in_step_order():
    ordered = rows([10, 20, 40], [0.5, 1.0, 1.0], [0.1, 0.2, 0.9])
    shuffled = [ordered[2], ordered[0], ordered[1]]
    assert summarize({0.1: [shuffled]}, 0.9, 0.9) == summarize(
        {0.1: [ordered]}, 0.9, 0.9
    )
    assert summarize({0.1: [shuffled]}, 0.9, 0.9)[0]["final_test_accuracy"] == 0.9
    a, b = (
        mean_curve([shuffled], "test_accuracy"),
        mean_curve([ordered], "test_accuracy"),
    )
    np.testing.assert_array_equal(a.mean, b.mean)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_run_killed_by_a_signal_is_reported_as_such(tmp_path):
    # Its log's last line (a progress bar) used to be quoted as its error.
    script = "import os, signal; print('1/40 ━━ step'); os.kill(os.getpid(), 9)"
    folder = tmp_path / "run"
    lines = []
    codes = run_all(
        [SweepRun(1.0, 0, folder, (sys.executable, "-c", script))], log=lines.append
    )
    assert codes == {folder: -9}
    assert run_failure(-9, folder / "log.txt").startswith("killed by SIGKILL")
    assert any("FAILED run (exit -9): killed by SIGKILL" in line for line in lines)
