"""The command line refuses bad input with exit code 2 and one line, no traceback."""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import pytest
from click.testing import CliRunner

from keras_grok import cli, process_setup

RECIPE = str(Path(__file__).parents[1] / "recipes" / "modadd.py")
BACKEND = keras.backend.backend()


def invoke(*args):
    return CliRunner().invoke(cli.main, ["run", *args])


def assert_refused(result, message):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ") and message in lines[0], lines[0]


def test_missing_recipe_file(tmp_path):
    assert_refused(invoke(str(tmp_path / "nope.py"), "--backend", BACKEND), "not found")


def test_file_that_is_not_a_recipe(tmp_path):
    path = tmp_path / "plain.py"
    path.write_text("print('hello')\n")
    assert_refused(invoke(str(path), "--backend", BACKEND), "is not a recipe")
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    assert_refused(invoke(str(text), "--backend", BACKEND), "is not a recipe")


def test_unknown_backend():
    assert_refused(
        invoke(RECIPE, "--backend", "theano"),
        "unknown backend 'theano' (from --backend); choose one of jax, tensorflow, "
        "torch",
    )


def test_backend_that_is_not_installed_names_what_to_install(monkeypatch):
    real = process_setup.importlib.util.find_spec
    monkeypatch.setattr(
        process_setup.importlib.util,
        "find_spec",
        lambda name: None if name == "torch" else real(name),
    )
    assert_refused(invoke(RECIPE, "--backend", "torch"), "keras-grok[torch]")


def test_another_backend_than_the_loaded_one_needs_a_new_process():
    other = "jax" if BACKEND != "jax" else "torch"
    result = invoke(RECIPE, "--backend", other)
    assert result.exit_code == 2
    assert "already imported" in result.stderr or "not installed" in result.stderr


def test_unknown_set_key_lists_the_valid_ones(tmp_path):
    result = invoke(
        RECIPE, "--backend", BACKEND, "--set", "colour=red", "--out", str(tmp_path)
    )
    assert_refused(result, "unknown --set key 'colour'; valid keys: ")
    assert "weight_decay" in result.stderr


def test_set_value_of_the_wrong_type(tmp_path):
    result = invoke(
        RECIPE, "--backend", BACKEND, "--set", "p=ninety", "--out", str(tmp_path)
    )
    assert_refused(result, "--set p=ninety: expected an integer")


def test_config_the_recipe_cannot_run(tmp_path):
    result = invoke(
        RECIPE, "--backend", BACKEND, "--set", "op=a%b", "--out", str(tmp_path)
    )
    assert_refused(result, "invalid config: Unknown operation")
    result = invoke(
        RECIPE, "--backend", BACKEND, "p=12", "op=a/b", "--out", str(tmp_path)
    )
    assert_refused(result, "needs a prime modulus")


def test_unwritable_out(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = invoke(RECIPE, "--backend", BACKEND, "--out", str(blocker / "run"))
    assert_refused(result, f"cannot write to --out {blocker / 'run'}")


def test_finished_run_is_not_overwritten_silently(tmp_path):
    (tmp_path / "summary.json").write_text("{}")
    result = invoke(RECIPE, "--backend", BACKEND, "--out", str(tmp_path))
    assert_refused(result, "already holds a finished run; pass --overwrite")
    assert (tmp_path / "summary.json").read_text() == "{}"


def test_unfinished_run_with_other_settings_is_not_mixed_up(tmp_path):
    (tmp_path / "config.json").write_text(
        json.dumps({"recipe": "x", "backend": BACKEND, "seed": 0, "config": {}})
    )
    result = invoke(RECIPE, "--backend", BACKEND, "--out", str(tmp_path))
    assert_refused(result, "holds an unfinished run with another recipe, config")


def test_bad_seed(tmp_path):
    result = invoke(
        RECIPE, "--backend", BACKEND, "--seed", "x1", "--out", str(tmp_path)
    )
    assert_refused(result, "--seed x1: expected an integer")


def test_threads_default_to_one_openblas_thread_and_leave_the_rest(monkeypatch):
    for name in process_setup.THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "2")
    process_setup.limit_threads(None)
    assert os.environ["OPENBLAS_NUM_THREADS"] == "1"
    assert "OMP_NUM_THREADS" not in os.environ  # torch keeps its own pool
    assert os.environ["MKL_NUM_THREADS"] == "2"  # the user's setting stays
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "4")
    process_setup.limit_threads(None)
    assert os.environ["OPENBLAS_NUM_THREADS"] == "4"
    process_setup.limit_threads(3)
    assert all(os.environ[name] == "3" for name in process_setup.THREAD_VARIABLES)


def test_bad_thread_counts_are_refused(tmp_path, monkeypatch):
    for name in process_setup.THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for bad in ("0", "two"):
        result = invoke(RECIPE, "--backend", BACKEND, "--threads", bad)
        assert result.exit_code == 2 and "--threads" in result.stderr, result.stderr
    assert not any(name in os.environ for name in process_setup.THREAD_VARIABLES)


def test_a_stop_signal_inside_a_gc_callback_is_sent_again_not_dropped(monkeypatch):
    # Raised inside a garbage-collection callback (JAX has one), the exception
    # would be printed and dropped, and the run would train on.
    import gc
    import signal
    import sys
    import time

    from keras_grok import stop_signals

    sent = []
    monkeypatch.setattr(stop_signals.os, "kill", lambda pid, sig: sent.append(sig))

    def callback(phase, info):
        stop_signals.raise_terminated(signal.SIGINT, sys._getframe())

    gc.callbacks.append(callback)
    try:
        gc.collect()
    finally:
        gc.callbacks.remove(callback)
    time.sleep(0.5)
    assert sent and set(sent) == {signal.SIGINT}


def test_a_stop_signal_during_an_import_is_sent_again_after_it(tmp_path, monkeypatch):
    # Raised inside a native module's initialization (jaxlib's, while Keras
    # loads), the exception aborted the process (SIGSEGV, SIGABRT) instead of
    # unwinding it with exit 143.
    import signal
    import time

    from keras_grok import stop_signals

    sent = []
    monkeypatch.setattr(stop_signals.os, "kill", lambda pid, sig: sent.append(sig))
    monkeypatch.setattr(stop_signals, "_stop_raised_at", [])
    (tmp_path / "signalled_module.py").write_text(
        "import sys\n"
        "from keras_grok import stop_signals\n"
        "stop_signals.raise_terminated(15, sys._getframe())\n"
        "FINISHED = True\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import signalled_module  # the handler defers: no Terminated inside the import

    assert signalled_module.FINISHED
    time.sleep(0.5)
    assert sent == [signal.SIGTERM]
    with pytest.raises(stop_signals.Terminated):  # outside an import it raises
        stop_signals.raise_terminated(signal.SIGTERM, sys._getframe())


@pytest.mark.skipif(BACKEND != "jax", reason="a fresh JAX process; once is enough")
def test_a_jax_platform_that_cannot_start_is_refused_before_the_folder(tmp_path):
    env = {**os.environ, "JAX_PLATFORMS": "cuda", "KERAS_BACKEND": "jax"}
    out = tmp_path / "run"
    cli_module = [sys.executable, "-m", "keras_grok.cli"]
    args = ["run", RECIPE, "--backend", "jax", "--out", str(out), "max_steps=20"]
    result = subprocess.run(
        cli_module + args, capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    error = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(error) == 1 and "JAX_PLATFORMS='cuda'" in error[0], result.stderr
    assert not out.exists()


TINY = ["p=7", "train_fraction=0.6", "max_steps=8", "batch_size=8", "refine=false"]
TINY += ["embed_dim=8", "hidden=16", "checkpoint_seconds=0"]


def _close_stdout() -> None:
    os.close(1)  # as a daemon, or `keras-grok run ... >&-`


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("stdout", ["closed", "/dev/full"])
def test_a_closed_or_full_standard_output_does_not_stop_the_run(tmp_path, stdout):
    out = tmp_path / "run"
    args = [sys.executable, "-m", "keras_grok.cli", "run", RECIPE, "--out", str(out)]
    args += ["--backend", BACKEND, *TINY]
    with open("/dev/full", "w") as full:
        result = subprocess.run(
            args,
            stdout=full if stdout == "/dev/full" else None,
            stderr=subprocess.PIPE,
            text=True,
            timeout=300,
            preexec_fn=_close_stdout if stdout == "closed" else None,
        )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["final_step"] == 8
    if stdout == "/dev/full":
        assert "writing to the standard output failed" in result.stderr


def test_an_unknown_mplbackend_is_named_not_blamed_on_the_recipe(tmp_path):
    # Keras imports matplotlib, which refuses an unknown MPLBACKEND on import.
    env = {**os.environ, "MPLBACKEND": "nonsense"}
    out = tmp_path / "run"
    args = [sys.executable, "-m", "keras_grok.cli", "run", RECIPE, "--out", str(out)]
    result = subprocess.run(
        [*args, "--backend", BACKEND, *TINY],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: MPLBACKEND='nonsense'")
    assert "is not a recipe" not in result.stderr
    assert not out.exists()


def test_an_out_path_with_dotdot_after_a_symlink_is_one_folder(tmp_path, monkeypatch):
    # Made at the lexical path and written through the physical one, the run
    # failed with "No such file or directory" for its config.json.
    (tmp_path / "deep" / "inner").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "deep" / "inner")
    monkeypatch.chdir(tmp_path)
    result = invoke(RECIPE, "--backend", BACKEND, "--out", "link/../out", *TINY)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "deep" / "out" / "summary.json").exists()
    assert not (tmp_path / "out").exists()
