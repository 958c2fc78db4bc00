"""The forecast's corpus: runs of known outcome, the fitted forecaster, its evaluation.

Runs every run of ``keras_grok.forecast.corpus`` (modular a+b, a-b and a*b with the
embedding MLP over train fractions, weight decays, learning rates and seeds, some
of which never generalize within their 12,000-step budget; scikit-learn's digits
over four weight decays and seeds), ``parallel`` at a time, each a ``keras-grok
run`` process in ``runs/NAME`` (finished runs are skipped, so an interrupted
corpus resumes). Then it writes:

- ``corpus.csv``: one row per run (settings, memorized_at, generalized_at, budget);
- ``forecaster.json``: the forecaster fitted on the whole corpus (the package
  ships a copy as ``keras_grok/forecast/forecaster.json``);
- ``evaluation.md``: the forecast against two baselines on runs held out of the
  fit (by seed, by operation, by data set), from 50% of the true step.

    keras-grok run recipes/forecast_corpus.py --backend jax

Needs ``pip install scikit-learn`` for the digits runs (``digits=false`` leaves
them out). 44 runs; about 40 minutes on a 2-core CPU shared with other work.
"""

from __future__ import annotations

import csv
import io
import os
import time
from pathlib import Path

import keras

from keras_grok.experiments.config_checks import check_executor, check_ints
from keras_grok.experiments.image_grokking import IMAGE_CONFIG, prepare_image_data
from keras_grok.experiments.recipe import RecipeError, RecipeFault
from keras_grok.forecast.corpus import (
    corpus_runs,
    finished_records,
    outcome,
    sweep_runs,
)
from keras_grok.forecast.evaluation import (
    evaluate,
    evaluation_markdown,
    fit_on,
    held_out_splits,
)
from keras_grok.runs.run_folder import RunFolder, write_atomic
from keras_grok.sweeps.executors import executor_from_config
from keras_grok.sweeps.sweep import check_reusable, run_all, run_failure

CONFIG = {
    "digits": True,  # include the digits runs (needs scikit-learn)
    "parallel": 2,  # runs at a time, each its own process
    "executor": "process",  # "process" (local) or "ray"
    "ray_address": "",  # "" starts a local Ray; "auto" or "host:port" joins one
    "cpus_per_run": 1.0,
    "gpus_per_run": 0.0,
}


def validate(config: dict) -> None:
    """Raises ValueError for a config this recipe cannot run."""
    check_ints(config, ("parallel",))
    check_executor(config, CONFIG)


def prepare(config: dict) -> None:
    """Checks that the digits data can be read before any run starts."""
    if config["digits"]:
        prepare_image_data({**IMAGE_CONFIG, "dataset": "digits"})


def run(config: dict, out_dir: Path, verbose: bool = True) -> dict:
    """Runs the corpus's unfinished runs, fits the forecaster and evaluates it."""
    started = time.perf_counter()
    backend = os.environ.get("KERAS_BACKEND") or keras.backend.backend()
    runs = [r for r in corpus_runs() if config["digits"] or r.family != "digits"]
    planned = sweep_runs(runs, out_dir, backend)
    try:
        check_reusable(planned)
    except ValueError as error:
        raise RecipeError(str(error)) from None
    log = print if verbose else lambda _: None
    codes = run_all(
        planned, config["parallel"], log, executor=executor_from_config(config)
    )
    failed = [folder for folder, code in codes.items() if code != 0]
    if failed:
        raise RecipeFault(
            f"{len(failed)} of {len(runs)} runs failed (see their log.txt, e.g. "
            f"{failed[0]}; the first: "
            f"{run_failure(codes[failed[0]], RunFolder(failed[0]).log)}); rerun the "
            "same command to retry them"
        )
    records = finished_records(runs, out_dir)
    folder = RunFolder(out_dir)
    table = [outcome(run, folder.child(run.name).path) for run in runs]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(table[0]))
    writer.writeheader()
    writer.writerows(table)
    write_atomic(Path(out_dir) / "corpus.csv", buffer.getvalue().encode())

    results = [
        evaluate(train, test, name) for name, train, test in held_out_splits(records)
    ]
    markdown = evaluation_markdown(results)
    write_atomic(Path(out_dir) / "evaluation.md", markdown.encode())
    corpus_time = time.perf_counter() - started
    forecaster = fit_on(
        records,
        info={
            "runs": len(records),
            "generalized": sum(r.generalized_at is not None for r in records),
            "corpus": "recipes/forecast_corpus.py",
        },
    )
    forecaster.save(Path(out_dir) / "forecaster.json")
    if verbose:
        print(markdown)
    summary = {
        "runs": len(records),
        "generalized": sum(r.generalized_at is not None for r in records),
        "evaluation": [{k: v for k, v in r.items() if k != "rows"} for r in results],
        "wall_time_s": corpus_time,
    }
    folder.write_summary(summary)
    return summary
