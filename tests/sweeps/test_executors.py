"""Sweep executors: local processes and Ray tasks give the same run folders and table.

The Ray tests start a local Ray instance inside the test (2 CPUs, no dashboard,
loopback only) and are skipped where Ray is not installed
(``pip install 'keras-grok[ray]'``). The sweep's runs are ``keras-grok run``
commands of a tiny NumPy-only recipe written into the test's folder, so four runs
take seconds; a slow test runs four short modadd runs (JAX only).
"""

from __future__ import annotations

import importlib.util
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from keras_grok.runs.run_folder import RunFolder
from keras_grok.sweeps.executors import (
    ProcessExecutor,
    RayExecutor,
    import_ray,
    make_executor,
)
from keras_grok.sweeps.sweep import SweepRun, cli_command, run_all
from keras_grok.sweeps.sweep_results import (
    read_groups,
    summarize,
    table_csv,
    table_markdown,
)

ROOT = Path(__file__).parents[2]
BACKEND = os.environ.get("KERAS_BACKEND") or "jax"

# Softmax regression with weight decay on a fixed 3-class problem, trained by
# full-batch gradient descent in NumPy: deterministic given (seed, weight decay),
# a second of work, and no Keras import in the run's process.
TINY_RECIPE = textwrap.dedent(
    '''
    """A tiny NumPy-only recipe for the executor tests."""

    import numpy as np

    from keras_grok.experiments.recipe import RecipeError
    from keras_grok.runs.run_folder import MetricsFile, RunFolder

    CONFIG = {"weight_decay": 0.01, "steps": 60, "fail": False, "seed": 0}


    def run(config, out_dir, verbose=True):
        if config["fail"]:
            raise RecipeError("the tiny recipe was told to fail")
        rng = np.random.default_rng(config["seed"])
        centers = rng.normal(size=(3, 5)) * 2.0
        labels = rng.integers(0, 3, size=120)
        x = centers[labels] + rng.normal(size=(120, 5))
        x_train, y_train, x_test, y_test = x[:60], labels[:60], x[60:], labels[60:]
        w = np.zeros((5, 3))
        folder = RunFolder(out_dir)
        columns = ["step", "elapsed", "train_accuracy", "test_accuracy"]
        metrics = MetricsFile(folder.metrics, columns)
        def accuracy(x, y):
            return float(np.mean((x @ w).argmax(1) == y))

        for step in range(1, config["steps"] + 1):
            logits = x_train @ w
            p = np.exp(logits - logits.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            p[np.arange(60), y_train] -= 1.0
            w -= 0.1 * (x_train.T @ p / 60 + config["weight_decay"] * w)
            metrics.append(
                {
                    "step": step,
                    "elapsed": 0.0,
                    "train_accuracy": accuracy(x_train, y_train),
                    "test_accuracy": accuracy(x_test, y_test),
                }
            )
        metrics.close()
        rows = folder.read_metrics()
        summary = {
            "memorized_at": None,
            "generalized_at": None,
            "final_test_accuracy": rows[-1]["test_accuracy"],
            "wall_time_s": 0.0,
        }
        folder.write_summary(summary)
        return summary
    '''
)

WEIGHT_DECAYS = (0.1, 0.001)
SEEDS = (0, 1)


@pytest.fixture(scope="module")
def ray_instance():
    """A local Ray instance for the module's tests: 2 CPUs, loopback, no dashboard."""
    ray = pytest.importorskip(
        "ray", reason="Ray is not installed: pip install 'keras-grok[ray]'"
    )
    sigterm_handler = signal.getsignal(signal.SIGTERM)
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        _node_ip_address="127.0.0.1",
    )
    yield ray
    ray.shutdown()
    signal.signal(signal.SIGTERM, sigterm_handler)  # ray.init replaced it


def plan(recipe: Path, out: Path, settings=None) -> list[SweepRun]:
    """The sweep's runs: one per (weight decay, seed), each its own folder."""
    runs = []
    for weight_decay in WEIGHT_DECAYS:
        for seed in SEEDS:
            folder = RunFolder(out).child(f"wd={weight_decay:g}-seed={seed}").path
            command = cli_command(
                recipe,
                folder,
                BACKEND,
                seed,
                {**(settings or {}), "weight_decay": weight_decay},
            )
            runs.append(SweepRun(weight_decay, seed, folder, command))
    return runs


def table_of(runs: list[SweepRun]) -> tuple[str, str]:
    table = summarize(read_groups(runs), 0.9, 0.8)
    return table_markdown(table), table_csv(table)


def tiny_recipe(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.py"
    path.write_text(TINY_RECIPE)
    return path


def test_a_sweep_gives_the_same_run_folders_and_table_through_processes_and_ray(
    tmp_path, ray_instance
):
    recipe = tiny_recipe(tmp_path)
    by_process = plan(recipe, tmp_path / "process")
    by_ray = plan(recipe, tmp_path / "ray")
    lines = []

    codes = run_all(by_process, log=lines.append, executor=ProcessExecutor(2))
    assert sorted(codes.values()) == [0, 0, 0, 0]
    codes = run_all(by_ray, log=lines.append, executor=RayExecutor())
    assert codes == {run.folder: 0 for run in by_ray}
    assert sum(line.startswith("done ") for line in lines) == 8

    for a, b in zip(by_process, by_ray):
        assert RunFolder(b.folder).read_summary() == RunFolder(a.folder).read_summary()
        assert RunFolder(b.folder).read_metrics() == RunFolder(a.folder).read_metrics()
    markdown, csv = table_of(by_ray)
    assert (markdown, csv) == table_of(by_process)
    table = summarize(read_groups(by_ray), 0.9, 0.8)
    assert [row["value"] for row in table] == [0.1, 0.001]
    assert [row["runs"] for row in table] == [2, 2]
    # Every run fits this easy problem: both values have grokking times.
    assert all(row["memorized_at_runs"] == 2 for row in table)
    assert all(row["final_test_accuracy"] > 0.8 for row in table)


def test_ray_skips_finished_runs_and_resumes_the_rest(tmp_path, ray_instance):
    recipe = tiny_recipe(tmp_path)
    runs = plan(recipe, tmp_path / "sweep")
    first = run_all(runs[:1], log=lambda _: None, executor=RayExecutor())
    assert first == {runs[0].folder: 0}
    lines = []
    rest = run_all(runs, log=lines.append, executor=RayExecutor())
    assert sorted(rest) == sorted(run.folder for run in runs[1:])
    assert lines[0] == f"skip {runs[0].folder.name} (finished)"
    assert all(RunFolder(run.folder).is_finished() for run in runs)


def test_a_run_that_fails_on_a_ray_worker_reports_its_own_error_line(
    tmp_path, ray_instance
):
    recipe = tiny_recipe(tmp_path)
    runs = plan(recipe, tmp_path / "sweep", {"fail": True})[:1]
    lines = []
    codes = run_all(runs, log=lines.append, executor=RayExecutor())
    assert codes == {runs[0].folder: 2}
    assert lines[-1] == (
        f"FAILED {runs[0].folder.name} (exit 2): "
        "Error: the tiny recipe was told to fail"
    )
    assert not RunFolder(runs[0].folder).is_finished()


def test_ray_executor_uses_the_cluster_it_finds_and_leaves_it_running(
    tmp_path, ray_instance
):
    recipe = tiny_recipe(tmp_path)
    runs = plan(recipe, tmp_path / "sweep")[:1]
    RayExecutor(num_cpus_per_run=0.5).run(runs, log=lambda _: None)
    assert ray_instance.is_initialized()
    assert RunFolder(runs[0].folder).is_finished()


def test_a_missing_ray_is_an_import_error_that_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    with pytest.raises(ImportError, match=r"pip install 'keras-grok\[ray\]'"):
        import_ray()
    with pytest.raises(ImportError, match="keras-grok"):
        RayExecutor().run([], log=lambda _: None)


def test_make_executor_builds_what_the_sweep_config_names():
    assert isinstance(make_executor("process", parallel=3), ProcessExecutor)
    assert make_executor("process", parallel=3).parallel == 3
    local = make_executor("ray", parallel=3, cpus_per_run=2.0, gpus_per_run=0.5)
    assert (local.address, local.num_cpus) == (None, 6)
    assert (local.num_cpus_per_run, local.num_gpus_per_run) == (2.0, 0.5)
    cluster = make_executor("ray", address="auto")
    assert (cluster.address, cluster.num_cpus) == ("auto", None)
    with pytest.raises(ValueError, match="executor must be one of"):
        make_executor("slurm")
    assert make_executor("ray", address="10.0.0.1:6379").address == "10.0.0.1:6379"
    assert (
        make_executor("ray", address="ray://head:10001").address == "ray://head:10001"
    )
    for bad in ("head", "no-such-thing:abc", "head:0", "http://head:6379"):
        with pytest.raises(ValueError, match="ray_address must be"):
            make_executor("ray", address=bad)
    for bad in (0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="cpus_per_run must be a finite number"):
            make_executor("ray", cpus_per_run=bad)
    for bad in (-1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="gpus_per_run must be a finite number"):
            make_executor("ray", gpus_per_run=bad)
    with pytest.raises(ValueError, match="parallel must be"):
        make_executor("process", parallel=0)
    with pytest.raises(ValueError, match="num_gpus_per_run must be"):
        RayExecutor(num_gpus_per_run=-1)


def test_the_weight_decay_sweep_checks_its_executor_keys():
    spec = importlib.util.spec_from_file_location(
        "weight_decay_sweep_under_test", ROOT / "recipes" / "weight_decay_sweep.py"
    )
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    assert recipe.CONFIG["executor"] == "process"
    recipe.validate({**recipe.CONFIG, "executor": "ray", "ray_address": "auto"})
    with pytest.raises(ValueError, match="executor must be one of"):
        recipe.validate({**recipe.CONFIG, "executor": "slurm"})
    for key, value in (
        ("gpus_per_run", -1.0),
        ("cpus_per_run", math.inf),
        ("ray_address", "no-such-thing:abc"),
    ):
        with pytest.raises(ValueError, match=key):
            recipe.validate({**recipe.CONFIG, "executor": "ray", key: value})


@pytest.mark.slow
@pytest.mark.skipif(
    BACKEND != "jax",
    reason="trains 8 short modadd runs; one backend is enough (JAX)",
)
def test_four_modadd_runs_give_the_same_table_through_processes_and_ray(
    tmp_path, ray_instance
):
    settings = {
        "p": 11,
        "train_fraction": 0.5,
        "max_steps": 40,
        "batch_size": 32,
        "collapse": False,
    }
    recipe = ROOT / "recipes" / "modadd.py"
    by_process = plan(recipe, tmp_path / "process", settings)
    by_ray = plan(recipe, tmp_path / "ray", settings)
    started = time.perf_counter()
    assert set(run_all(by_process, executor=ProcessExecutor(2)).values()) == {0}
    process_seconds = time.perf_counter() - started
    started = time.perf_counter()
    assert set(run_all(by_ray, executor=RayExecutor()).values()) == {0}
    ray_seconds = time.perf_counter() - started
    print(f"4 modadd runs: processes {process_seconds:.1f} s, Ray {ray_seconds:.1f} s")
    assert table_of(by_ray) == table_of(by_process)
    for a, b in zip(by_process, by_ray):
        summary_a = RunFolder(a.folder).read_summary()
        summary_b = RunFolder(b.folder).read_summary()
        for key in ("final_train_accuracy", "final_test_accuracy", "final_step"):
            assert summary_a[key] == summary_b[key]


def test_runs_asking_more_than_the_whole_cluster_are_refused_not_queued_forever(
    tmp_path, ray_instance
):
    run = SweepRun(1.0, 0, tmp_path / "run", (sys.executable, "-c", "pass"))
    with pytest.raises(ValueError, match="asks for 1 GPUs.*has 0 in all"):
        RayExecutor(num_gpus_per_run=1).run([run], log=lambda _: None)
    with pytest.raises(ValueError, match="num_cpus_per_run=64"):
        RayExecutor(num_cpus_per_run=64).run([run], log=lambda _: None)
    assert ray_instance.is_initialized()  # the cluster it found is left running


def test_an_address_where_nothing_listens_is_refused_in_seconds():
    import socket

    from keras_grok.sweeps.executors import _check_reachable

    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ValueError, match=f"no Ray cluster answers at 127.0.0.1:{port}"):
        _check_reachable(f"127.0.0.1:{port}", seconds=2.0)


def test_a_local_ray_run_cannot_ask_more_cpus_than_the_machine_has(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    with pytest.raises(ValueError, match="at most this machine's 2 CPUs"):
        make_executor("ray", cpus_per_run=64)
    assert make_executor("ray", address="auto", cpus_per_run=64).num_cpus_per_run == 64


@pytest.mark.parametrize("poll_seconds", [-1, 0, "fast", math.inf, None])
def test_the_process_executor_refuses_a_poll_interval_that_is_not_positive(
    poll_seconds,
):
    with pytest.raises(ValueError, match=f"Received: poll_seconds={poll_seconds!r}"):
        ProcessExecutor(2, poll_seconds=poll_seconds)
    assert ProcessExecutor(2, poll_seconds=0.05).poll_seconds == 0.05


def test_the_process_executor_refuses_a_parallel_given_as_a_string():
    with pytest.raises(ValueError, match="Received: parallel='2'"):
        ProcessExecutor("2")


def test_a_ray_task_whose_program_does_not_exist_fails_with_exit_127(tmp_path):
    from keras_grok.sweeps.executors import _run_command

    code, error = _run_command(("/nonexistent/binary",), str(tmp_path))
    assert code == 127 and error.startswith("cannot start: ")
    assert "cannot start" in (tmp_path / "log.txt").read_text()


RAY_STARTED_BY_THE_EXECUTOR = """
import signal, sys
from pathlib import Path
from keras_grok.sweeps.executors import RayExecutor
from keras_grok.sweeps.sweep import SweepRun

def own(signum, frame):
    pass

signal.signal(signal.SIGTERM, own)
run = SweepRun(1.0, 0, Path(sys.argv[1]), (sys.executable, "-c", "pass"))
codes = RayExecutor(num_cpus=1).run([run], log=lambda _: None)
assert list(codes.values()) == [0], codes
assert signal.getsignal(signal.SIGTERM) is own, signal.getsignal(signal.SIGTERM)
"""


def test_a_ray_the_executor_started_gives_back_the_callers_sigterm_handler(tmp_path):
    # ray.init installs its own SIGTERM handler (sys.exit) and ray.shutdown leaves
    # it in place, so a user's script would change how it ends after one sweep.
    pytest.importorskip("ray", reason="Ray is not installed")
    script = tmp_path / "script.py"
    script.write_text(RAY_STARTED_BY_THE_EXECUTOR)
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
