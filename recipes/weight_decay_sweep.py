"""Paper A's weight-decay sweep: larger weight decay groks earlier.

Runs ``recipes/mnist.py`` for every weight decay lambda in ``weight_decays`` and
every seed in ``seeds``, up to ``parallel`` runs at a time, each in its own process
and run folder (``runs/wd=LAMBDA-seed=SEED`` inside ``--out``). Runs already finished
are skipped, so rerunning an interrupted sweep resumes it (unfinished runs resume
from their checkpoints); a run folder that holds a run of other settings is
refused (``--overwrite`` clears the sweep and all of its run folders), as are
weight decays or seeds that would share one folder. Then it writes:

- ``figure.png``: train (dashed) and test (solid) accuracy, and RNC1 when measured,
  mean +- std over seeds against the step, one colour per lambda;
- ``table.md`` and ``table.csv``: memorized_at and generalized_at (mean +- std over
  the seeds that reached them) and the best and final test accuracy per lambda.

Every key of ``recipes/mnist.py`` except ``weight_decay`` and ``seed`` is accepted
and passed on. The defaults are paper A's sweep (MNIST, lambda in {0.3, 0.1, 0.03,
0.01, 0.003, 0.001}, 100k steps) with 3 seeds (the paper: 5). A short offline sweep
on scikit-learn's digits (3 lambdas, 1 seed, 20k steps; a few minutes on 2 cores;
lambda 0.3 generalizes near step 4k, 0.1 near 11k, 0.03 not by 20k):

    keras-grok run recipes/weight_decay_sweep.py --set dataset=digits \\
        weight_decays=0.3,0.1,0.03 seeds=0 max_steps=20000
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import keras

from keras_grok.analysis.scaling import time_scale_fits
from keras_grok.experiments.config_checks import (
    check_executor,
    check_ints,
    check_list,
    validate_seed,
)
from keras_grok.experiments.image_grokking import (
    IMAGE_CONFIG,
    IMAGE_RECIPE,
    prepare_image_data,
    validate_image_config,
)
from keras_grok.experiments.recipe import RecipeError, RecipeFault
from keras_grok.runs.run_folder import RunFolder
from keras_grok.sweeps.executors import executor_from_config, import_ray
from keras_grok.sweeps.sweep import (
    SweepRun,
    check_reusable,
    cli_command,
    run_all,
    run_failure,
)
from keras_grok.sweeps.sweep_results import (
    plot_sweep,
    read_groups,
    summarize,
    table_csv,
    table_markdown,
)
from keras_grok.utils.argument_validation import validate_float_arg, validate_int_arg

PASSED_ON = [key for key in IMAGE_CONFIG if key not in ("weight_decay", "seed")]

CONFIG = {
    "weight_decays": [0.3, 0.1, 0.03, 0.01, 0.003, 0.001],
    "seeds": [0, 1, 2],
    "parallel": 2,  # runs at a time, each its own process
    "executor": "process",  # "process" (local) or "ray" (pip install keras-grok[ray])
    "ray_address": "",  # "" starts a local Ray; "auto" or "host:port" joins a cluster
    "cpus_per_run": 1.0,  # Ray: CPUs each run reserves
    "gpus_per_run": 0.0,  # Ray: GPUs each run reserves (fractions share one)
    **{key: IMAGE_CONFIG[key] for key in PASSED_ON},
}


def run_config(config: dict, weight_decay: float, seed: int) -> dict:
    """The config of one run of the sweep."""
    return {
        **{key: config[key] for key in PASSED_ON},
        "weight_decay": weight_decay,
        "seed": seed,
    }


def run_name(weight_decay: float, seed: int) -> str:
    """The name of one run's folder inside ``runs/``."""
    return f"wd={weight_decay:g}-seed={seed}"


def _validate_seed(seed, name: str) -> int:
    return validate_int_arg(seed, name, minimum=0)


def validate(config: dict) -> None:
    """Raises ValueError for a config this sweep cannot run (data checked at once)."""
    check_list(config, "weight_decays", validate_float_arg)
    check_list(config, "seeds", validate_seed)
    check_ints(config, ("parallel",))
    check_executor(config, CONFIG)
    names: dict[str, tuple] = {}
    for weight_decay in config["weight_decays"]:
        for seed in config["seeds"]:
            name = run_name(weight_decay, seed)
            if name in names:
                raise ValueError(
                    f"weight_decays and seeds must name distinct runs: "
                    f"weight_decay={names[name][0]!r}, seed={names[name][1]} and "
                    f"weight_decay={weight_decay!r}, seed={seed} are both {name}. "
                    f"Received: weight_decays={config['weight_decays']}, "
                    f"seeds={config['seeds']}"
                )
            names[name] = (weight_decay, seed)
    validate_image_config(
        run_config(config, config["weight_decays"][0], config["seeds"][0])
    )


def prepare(config: dict) -> None:
    """Raises ValueError at once if the runs' recipe or data cannot be found here."""
    if not IMAGE_RECIPE.is_file():
        raise ValueError(
            f"the sweep's runs execute {IMAGE_RECIPE}, which is missing: install "
            "keras-grok from a source checkout (pip install -e .)"
        )
    if config["executor"] == "ray":
        try:
            import_ray()
        except ImportError as error:
            raise ValueError(str(error)) from None
    prepare_image_data(
        run_config(config, config["weight_decays"][0], config["seeds"][0])
    )


def plan(config: dict, out_dir: Path, backend: str) -> list[SweepRun]:
    """The sweep's runs, one per (weight decay, seed)."""
    runs = []
    for weight_decay in config["weight_decays"]:
        for seed in config["seeds"]:
            folder = RunFolder(out_dir).child(run_name(weight_decay, seed)).path
            settings = run_config(config, weight_decay, seed)
            settings.pop("seed")
            command = cli_command(IMAGE_RECIPE, folder, backend, seed, settings)
            expected = run_config(config, weight_decay, seed)
            runs.append(
                SweepRun(weight_decay, seed, folder, command, backend, expected)
            )
    return runs


def run(config: dict, out_dir: Path, verbose: bool = True) -> dict:
    """Runs the sweep's unfinished runs, then aggregates all of them in ``out_dir``."""
    started = time.perf_counter()
    backend = os.environ.get("KERAS_BACKEND") or keras.backend.backend()
    runs = plan(config, out_dir, backend)
    try:
        check_reusable(runs)
    except ValueError as error:
        raise RecipeError(str(error)) from None
    codes = run_all(
        runs,
        config["parallel"],
        print if verbose else lambda _: None,
        executor=executor_from_config(config),
    )
    failed = [folder for folder, code in codes.items() if code != 0]

    groups = read_groups(runs)
    table = summarize(groups, config["threshold"], config["test_threshold"])
    folder = RunFolder(out_dir)
    if groups:
        markdown = table_markdown(table)
        folder.write_tables(markdown, table_csv(table))
        panels = [("accuracy", ("test_accuracy", "train_accuracy"), False)]
        if config["collapse"]:
            panels.append(("RNC1", ("test_rnc1", "train_rnc1"), True))
        plot_sweep(
            groups,
            folder.figure,
            panels,
            title=f"{config['dataset']}, {config['model']}, "
            f"alpha {config['init_scale']:g}, {config['loss']}",
        )
        if verbose:
            print(markdown)
    if failed:
        logs = [RunFolder(path).log for path in failed]
        raise RecipeFault(
            f"{len(failed)} of {len(runs)} runs failed (see "
            f"{', '.join(map(str, logs))}; the first: "
            f"{run_failure(codes[failed[0]], logs[0])}); "
            "rerun the same command to retry them (finished runs are skipped)"
        )
    summary = {
        "memorized_at": {f"{r['value']:g}": r["memorized_at"] for r in table},
        "generalized_at": {f"{r['value']:g}": r["generalized_at"] for r in table},
        "final_test_accuracy": {
            f"{r['value']:g}": r["final_test_accuracy"] for r in table
        },
        "table": table,
        # Paper A's time-scale law: slopes of log(step) against log(lambda).
        "time_scale": time_scale_fits(
            groups, config["threshold"], config["test_threshold"]
        ),
        "runs": len(runs),
        "wall_time_s": time.perf_counter() - started,
    }
    folder.write_summary(summary)
    return summary
