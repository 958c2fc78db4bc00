"""Data-parallel training: the same seed on 1 and 2 devices gives the same metrics.

JAX is given two CPU devices (``XLA_FLAGS=--xla_force_host_platform_device_count=2``),
which must be set before JAX is first imported, so the two runs happen in a
subprocess. Tolerances: train and test accuracy equal; losses within 1e-5 and
the collapse metrics (RNC1, NC1, ...) within 1e-4, relative. The only difference
between the runs is the order in which the gradient's per-example terms are
summed (per device, then across devices), a float32 rounding effect.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import pytest

from keras_grok.runs.distribution import (
    check_devices,
    check_even_batches,
    parse_devices,
    set_data_parallel,
)

ROOT = Path(__file__).parents[2]
JAX_ONLY = pytest.mark.skipif(
    keras.backend.backend() != "jax",
    reason="keras.distribution's DataParallel is supported on JAX only",
)

# Trains a tiny modadd run on one device, then the same seed on two, and prints
# both runs' metrics rows and the 2-device run's placement as one JSON line.
TWO_RUNS = textwrap.dedent(
    """
    import importlib.util, json, os, sys

    import keras

    from keras_grok.runs.run_folder import RunFolder

    spec = importlib.util.spec_from_file_location("modadd", sys.argv[1])
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    config = {
        **recipe.CONFIG,
        "p": 11, "train_fraction": 0.5, "embed_dim": 16, "hidden": 32,
        "batch_size": 32, "max_steps": 30, "schedule": "every:10",
        "patience": -1, "checkpoint_seconds": 1e9,
    }
    result = {}
    for devices in ("", "2"):
        keras.distribution.set_distribution(None)
        out = os.path.join(sys.argv[2], devices or "1")
        os.makedirs(out)
        recipe.run({**config, "devices": devices}, out, verbose=False)
        result[devices or "1"] = RunFolder(out).read_metrics()
    distribution = keras.distribution.distribution()
    result["mesh"] = list(distribution.device_mesh.shape)
    print("RESULT " + json.dumps(result))
    """
)


@JAX_ONLY
def test_the_same_seed_on_one_and_two_devices_gives_the_same_metrics(tmp_path):
    env = {
        **os.environ,
        "KERAS_BACKEND": "jax",
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        "JAX_PLATFORMS": "cpu",
    }
    script = tmp_path / "two_runs.py"
    script.write_text(TWO_RUNS)
    done = subprocess.run(
        [
            sys.executable,
            str(script),
            str(ROOT / "recipes" / "modadd.py"),
            str(tmp_path),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    result = json.loads(lines[-1][len("RESULT ") :])
    assert result["mesh"] == [2]
    one, two = result["1"], result["2"]
    assert [r["step"] for r in one] == [r["step"] for r in two]
    assert len(one) >= 3
    for a, b in zip(one, two):
        for key in ("train_accuracy", "test_accuracy"):
            assert a[key] == b[key], (a["step"], key)
        for key, tolerance in (
            ("train_loss", 1e-5),
            ("test_loss", 1e-5),
            ("train_rnc1", 1e-4),
            ("test_rnc1", 1e-4),
            ("train_nc1", 1e-4),
            ("test_nc1", 1e-4),
            ("test_nc2", 1e-4),
        ):
            assert math.isfinite(a[key]), (a["step"], key)
            assert b[key] == pytest.approx(a[key], rel=tolerance), (a["step"], key)
    # It trained: the loss fell (not a run that stood still on both).
    assert two[-1]["train_loss"] < two[0]["train_loss"]


def test_devices_settings_parse_to_off_all_or_a_count():
    assert parse_devices("") is None
    assert parse_devices("all") == "all"
    assert parse_devices("2") == 2
    assert parse_devices(4) == 4
    for bad in ("0", "-1", "two", 0, 1.5, True):
        with pytest.raises(ValueError, match="devices must be"):
            parse_devices(bad)


def test_devices_off_leaves_the_distribution_alone():
    assert set_data_parallel("") is None
    assert keras.distribution.distribution() is None


@pytest.mark.skipif(
    keras.backend.backend() == "jax", reason="the message of the other backends"
)
def test_data_parallel_off_jax_is_a_clear_error():
    with pytest.raises(ValueError, match="JAX backend only"):
        set_data_parallel("all")
    with pytest.raises(ValueError, match="JAX backend only"):
        check_devices("2")
    assert check_devices("") is None


@JAX_ONLY
def test_more_devices_than_there_are_is_a_clear_error():
    assert check_devices("all") == "all"  # checks only, sets nothing
    count = len(keras.distribution.list_devices())
    with pytest.raises(ValueError, match=f"only {count} device"):
        set_data_parallel(count + 1)
    assert keras.distribution.distribution() is None


def test_a_batch_that_does_not_split_evenly_is_refused_before_training():
    check_even_batches(2, 32, 60)  # 32 and 28: both even
    check_even_batches(2, 100, 60)  # one full batch of 60
    with pytest.raises(ValueError, match=r"gives batches of \[32, 29\]"):
        check_even_batches(2, 32, 61)
    with pytest.raises(ValueError, match=r"batch_size=25 on 60 .* \[25, 10\]"):
        check_even_batches(2, 25, 60)
    with pytest.raises(ValueError, match="choose a batch_size that is a multiple of 2"):
        check_even_batches(2, 25, 60)
    # 29 examples on 2 devices: every epoch ends in an odd batch, whatever the size.
    with pytest.raises(ValueError, match="no batch_size can do that"):
        check_even_batches(2, 8, 29)
