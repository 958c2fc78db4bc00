"""Paper A's weight-decay sweep: larger weight decay groks earlier.

Runs ``recipes/mnist.py`` for every weight decay lambda in ``weight_decays`` and
every seed in ``seeds``, up to ``parallel`` runs at a time, each in its own process
and run folder (``runs/wd=LAMBDA-seed=SEED`` inside ``--out``). Runs already finished
are skipped, so rerunning an interrupted sweep resumes it (unfinished runs resume
from their checkpoints). Then it writes:

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

from keras_grok.image_experiment import IMAGE_CONFIG, validate_image_config
from keras_grok.recipe import RecipeError
from keras_grok.run_folder import RunFolder, write_atomic
from keras_grok.sweep import (
    SweepRun,
    cli_command,
    plot_sweep,
    read_groups,
    run_all,
    summarize,
    table_csv,
    table_markdown,
)

RUN_RECIPE = Path(__file__).with_name("mnist.py")
PASSED_ON = [key for key in IMAGE_CONFIG if key not in ("weight_decay", "seed")]

CONFIG = {
    "weight_decays": [0.3, 0.1, 0.03, 0.01, 0.003, 0.001],
    "seeds": [0, 1, 2],
    "parallel": 2,  # runs at a time, each its own process
    **{key: IMAGE_CONFIG[key] for key in PASSED_ON},
}


def run_config(config: dict, weight_decay: float, seed: int) -> dict:
    """The config of one run of the sweep."""
    return {
        **{key: config[key] for key in PASSED_ON},
        "weight_decay": weight_decay,
        "seed": seed,
    }


def validate(config: dict) -> None:
    """Raises ValueError for a config this sweep cannot run (data checked at once)."""
    if not config["weight_decays"] or not config["seeds"]:
        raise ValueError("weight_decays and seeds must each list at least one value")
    if any(wd < 0 for wd in config["weight_decays"]):
        raise ValueError(
            f"weight decays must be >= 0. Received: {config['weight_decays']}"
        )
    if config["parallel"] < 1:
        raise ValueError(f"parallel must be >= 1. Received: {config['parallel']}")
    validate_image_config(
        run_config(config, config["weight_decays"][0], config["seeds"][0])
    )


def plan(config: dict, out_dir: Path, backend: str) -> list[SweepRun]:
    """The sweep's runs, one per (weight decay, seed)."""
    runs = []
    for weight_decay in config["weight_decays"]:
        for seed in config["seeds"]:
            folder = Path(out_dir) / "runs" / f"wd={weight_decay:g}-seed={seed}"
            settings = run_config(config, weight_decay, seed)
            settings.pop("seed")
            command = cli_command(RUN_RECIPE, folder, backend, seed, settings)
            runs.append(SweepRun(weight_decay, seed, folder, command))
    return runs


def run(config: dict, out_dir: Path, verbose: bool = True) -> dict:
    """Runs the sweep's unfinished runs, then aggregates all of them in ``out_dir``."""
    started = time.perf_counter()
    backend = os.environ.get("KERAS_BACKEND") or keras.backend.backend()
    runs = plan(config, out_dir, backend)
    codes = run_all(runs, config["parallel"], print if verbose else lambda _: None)
    failed = [folder for folder, code in codes.items() if code != 0]

    groups = read_groups(runs)
    table = summarize(groups, config["threshold"], config["test_threshold"])
    folder = RunFolder(out_dir)
    if groups:
        markdown = table_markdown(table)
        write_atomic(Path(out_dir) / "table.md", markdown)
        write_atomic(Path(out_dir) / "table.csv", table_csv(table))
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
        logs = ", ".join(str(path / "log.txt") for path in failed)
        raise RecipeError(
            f"{len(failed)} of {len(runs)} runs failed (see {logs}); rerun the same "
            "command to retry them (finished runs are skipped)"
        )
    summary = {
        "memorized_at": {f"{r['value']:g}": r["memorized_at"] for r in table},
        "generalized_at": {f"{r['value']:g}": r["generalized_at"] for r in table},
        "final_test_accuracy": {
            f"{r['value']:g}": r["final_test_accuracy"] for r in table
        },
        "table": table,
        "runs": len(runs),
        "wall_time_s": time.perf_counter() - started,
    }
    folder.write_summary(summary)
    return summary
