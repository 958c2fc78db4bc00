"""Corpus, fit cutoffs, baselines and held-out scoring on constructed runs."""

import math

import pytest

from keras_grok.forecast.corpus import SEEDS, corpus_runs, sweep_runs
from keras_grok.forecast.evaluation import (
    RunRecord,
    evaluate,
    fit_cutoffs,
    held_out_splits,
    memorized_multiple,
    time_scale_law,
)


def record(name, fit, generalized, seed=0, task="a+b", rate=1e-3, decay=1.0):
    rows = [
        {
            "step": s,
            "train_accuracy": min(1.0, s / fit),
            "test_accuracy": 1.0 if generalized and s >= generalized else 0.0,
            "test_rnc1": 0.3 * math.exp(-s / (generalized or 20000)),
        }
        for s in range(50, 12001, 50)
    ]
    family = "digits" if task == "digits" else "modular"
    return RunRecord(name, family, task, seed, rate, decay, 12000, generalized, rows)


def test_fit_cutoffs_are_one_grid_below_the_answer():
    early, late = record("a", 500, 1500), record("b", 500, 6000)
    assert fit_cutoffs(early) == [s for s in fit_cutoffs(late) if s < 1500]
    assert max(fit_cutoffs(late)) < 6000
    assert max(fit_cutoffs(record("c", 500, None))) < 12000


def test_baselines_fitted_in_closed_form():
    runs = [record("a", 1000, 3000), record("b", 2000, 4000), record("c", 500, 2500)]
    multiple = memorized_multiple(runs)  # median of 3, 2, 5
    assert multiple(runs[0], 1500) == pytest.approx(3 * 1000)  # rows every 50
    law = time_scale_law(runs)  # k = geometric mean of G * eta * lambda
    k = (3000 * 4000 * 2500) ** (1 / 3) * 1e-3
    assert law(runs[0], 10) == pytest.approx(k / 1e-3)
    assert law(runs[0], 10**6) == 10**6  # never below what is known (G > t)


def test_evaluation_scores_every_method_on_held_out_runs():
    runs = [
        record(f"{task}-{seed}-{fit}", fit, 3 * fit, seed, task)
        for task in ("a+b", "a-b", "a*b")
        for seed in (0, 1)
        for fit in (400, 600, 900, 1300)
    ] + [record("never", 800, None, 1, "a+b", decay=0.1)]
    splits = held_out_splits(runs)
    assert [name for name, _, _ in splits] == [
        "held-out seed (1)",
        "held-out operation (a*b)",
    ]
    result = evaluate(*splits[0][1:], splits[0][0])
    assert result["test_runs"] == 13 and result["test_generalized"] == 12
    # generalized = 3 x memorized exactly: the multiple baseline is exact
    assert result["memorized multiple: median relative error"] < 0.02
    for key, value in result.items():
        if "accuracy" in key or "coverage" in key:
            assert 0.0 <= value <= 1.0


def test_the_corpus_definition():
    runs = corpus_runs()
    names = [r.name for r in runs]
    assert len(names) == len(set(names))
    assert {r.task for r in runs} == {"a+b", "a-b", "a*b", "digits"}
    assert {r.seed for r in runs} == set(SEEDS)
    assert {r.settings["max_steps"] for r in runs if r.family == "modular"} == {12000}
    planned = sweep_runs(runs[:2], "/tmp/corpus", "jax", {"modular": {"p": 97}})
    assert planned[0].config["p"] == 97 and planned[0].config["seed"] == runs[0].seed
    assert "--seed" in planned[0].command
