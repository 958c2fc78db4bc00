"""Fitting the forecaster on a corpus and measuring it on runs held out of the fit.

Each corpus run gives examples at cutoff steps ``t``: its signals read from the
rows with ``step <= t`` (``read_signals``), its true ``generalized_at`` (None if
not within its budget) and its budget. The fit cuts every run at the same steps,
a geometric grid (``FIT_GRID``) below its generalization step (or its budget),
never at a fraction of the answer: a cutoff placed at 50% of the true step would
hand the regression the answer through ``log_step``. Which cutoffs a run can
have (t < G) is the truncation the likelihood conditions on. Evaluation cuts
each held-out run once, at ``EVALUATION_CUTOFF`` (50%) of its true step, as a
user who asks half-way would.

Two baselines, fitted on the same runs: a constant multiple of the memorized step
(the median ratio generalized / memorized) and paper A's time-scale law
``generalized_at = k / (learning_rate * weight_decay)`` (k the geometric mean of
generalized * eta * lambda). Both are told G > t as the forecast is (a
prediction below ``t`` is raised to ``t``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from keras_grok.forecast.model import Forecaster, fit_forecaster
from keras_grok.forecast.signals import memorized_step, read_signals

FIT_GRID = (100, 1.2)  # cutoffs 100, 120, 144, ... below G (or the budget)
EVALUATION_CUTOFF = 0.5


@dataclass(frozen=True)
class RunRecord:
    """A corpus run: its outcome, settings and measured rows."""

    name: str
    family: str
    task: str
    seed: int
    learning_rate: float
    weight_decay: float
    budget: int
    generalized_at: int | None
    rows: list[dict]
    threshold: float = 0.99
    test_threshold: float = 0.99

    def cutoff(self, fraction: float) -> int:
        end = self.generalized_at if self.generalized_at is not None else self.budget
        return max(int(fraction * end), 1)

    def signals(self, step: int) -> np.ndarray:
        return read_signals(
            self.rows,
            step,
            self.learning_rate,
            self.weight_decay,
            self.threshold,
            self.test_threshold,
        )

    def memorized_by(self, step: int) -> int | None:
        seen = [r for r in self.rows if r["step"] <= step]
        return memorized_step(seen, self.threshold)


def fit_cutoffs(run: RunRecord) -> list[int]:
    """The steps ``run`` is cut at for the fit: ``FIT_GRID`` below G or budget."""
    first, ratio = FIT_GRID
    end = run.generalized_at if run.generalized_at is not None else run.budget
    steps, step = [], float(first)
    while step < end:
        steps.append(int(step))
        step *= ratio
    return steps


def fit_on(runs: Sequence[RunRecord], info: dict | None = None) -> Forecaster:
    """Fits the forecaster on ``runs``, each cut at ``fit_cutoffs(run)``."""
    signals, steps, outcomes, budgets, weights = [], [], [], [], []
    for run in runs:
        cutoffs = fit_cutoffs(run)
        for step in cutoffs:
            signals.append(run.signals(step))
            steps.append(step)
            outcomes.append(run.generalized_at)
            budgets.append(run.budget)
            weights.append(1.0 / len(cutoffs))  # every run counts once
    return fit_forecaster(
        np.array(signals), steps, outcomes, budgets, info=info, weights=weights
    )


def memorized_multiple(runs: Sequence[RunRecord]) -> Callable[[RunRecord, int], float]:
    """Baseline: generalized_at = c x memorized_at (c fitted on ``runs``)."""
    ratios = [
        run.generalized_at / m
        for run in runs
        if run.generalized_at is not None
        and (m := run.memorized_by(run.budget)) is not None
    ]
    c = float(np.median(ratios)) if ratios else 1.0

    def predict(run: RunRecord, step: int) -> float:
        m = run.memorized_by(step)
        return max(c * (m if m is not None else step), step)

    return predict


def time_scale_law(runs: Sequence[RunRecord]) -> Callable[[RunRecord, int], float]:
    """Baseline: paper A's law, generalized_at = k / (eta lambda), k fitted."""
    logs = [
        math.log(run.generalized_at * run.learning_rate * run.weight_decay)
        for run in runs
        if run.generalized_at is not None
    ]
    k = math.exp(float(np.mean(logs))) if logs else 1.0

    def predict(run: RunRecord, step: int) -> float:
        return max(k / (run.learning_rate * run.weight_decay), step)

    return predict


def evaluate(train: Sequence[RunRecord], test: Sequence[RunRecord], name: str) -> dict:
    """Fits on ``train`` and scores ``test`` at ``EVALUATION_CUTOFF``.

    Returns a dict of the split's figures: for the forecast and both baselines,
    the median relative error |predicted / actual - 1| and median
    |log(predicted / actual)| over the held-out runs that generalized, and the
    accuracy of "generalizes within the budget" over all held-out runs; for the
    forecast also the coverage of its 80% intervals. ``rows`` lists every
    held-out run's forecast.
    """
    forecaster = fit_on(train)
    baselines = {
        "memorized multiple": memorized_multiple(train),
        "1/(eta lambda) law": time_scale_law(train),
    }
    rows = []
    for run in test:
        step = run.cutoff(EVALUATION_CUTOFF)
        forecast = forecaster.predict(run.signals(step), step, run.budget)
        row = {
            "name": run.name,
            "step": step,
            "actual": run.generalized_at,
            "forecast": forecast.generalized_at,
            "low": forecast.low,
            "high": forecast.high,
            "probability": forecast.probability,
        }
        for label, predict in baselines.items():
            row[label] = predict(run, step)
        rows.append(row)
    methods = ["forecast", *baselines]
    result = {"split": name, "train_runs": len(train), "test_runs": len(test)}
    reached = [r for r in rows if r["actual"] is not None]
    result["test_generalized"] = len(reached)
    for method in methods:
        logs = [abs(math.log(r[method] / r["actual"])) for r in reached]
        relative = [abs(r[method] / r["actual"] - 1.0) for r in reached]
        result[f"{method}: median relative error"] = (
            float(np.median(relative)) if reached else None
        )
        result[f"{method}: median |log ratio|"] = (
            float(np.median(logs)) if reached else None
        )
        calls = [
            (r["probability"] >= 0.5 if method == "forecast" else r[method] <= b)
            == (r["actual"] is not None)
            for r, b in ((r, _budget(test, r["name"])) for r in rows)
        ]
        result[f"{method}: budget accuracy"] = float(np.mean(calls)) if rows else None
    inside = [r["low"] <= r["actual"] <= r["high"] for r in reached]
    result["forecast: interval coverage"] = float(np.mean(inside)) if reached else None
    result["rows"] = rows
    return result


def _budget(runs: Sequence[RunRecord], name: str) -> int:
    return next(run.budget for run in runs if run.name == name)


def held_out_splits(
    runs: Sequence[RunRecord],
) -> list[tuple[str, list[RunRecord], list[RunRecord]]]:
    """The corpus's held-out splits: by seed, by operation, by data set."""
    splits = []
    seeds = sorted({run.seed for run in runs})
    if len(seeds) > 1:
        last = seeds[-1]
        splits.append(
            (
                f"held-out seed ({last})",
                [r for r in runs if r.seed != last],
                [r for r in runs if r.seed == last],
            )
        )
    tasks = sorted({run.task for run in runs if run.family == "modular"})
    if "a*b" in tasks and len(tasks) > 1:
        splits.append(
            (
                "held-out operation (a*b)",
                [r for r in runs if r.task != "a*b"],
                [r for r in runs if r.task == "a*b"],
            )
        )
    families = {run.family for run in runs}
    if {"modular", "digits"} <= families:
        splits.append(
            (
                "held-out data set (digits)",
                [r for r in runs if r.family != "digits"],
                [r for r in runs if r.family == "digits"],
            )
        )
    return splits


def evaluation_markdown(results: Sequence[dict]) -> str:
    """The held-out figures as a Markdown table, one row per split and method."""
    lines = [
        "| split | method | median relative error | median abs log ratio "
        "| 80% interval coverage | within-budget accuracy |",
        "|---|---|---:|---:|---:|---:|",
    ]

    def cell(value, percent=True):
        if value is None:
            return "—"
        return f"{value:.0%}" if percent else f"{value:.3f}"

    for result in results:
        for method in ("forecast", "memorized multiple", "1/(eta lambda) law"):
            coverage = (
                cell(result["forecast: interval coverage"])
                if method == "forecast"
                else "—"
            )
            lines.append(
                f"| {result['split']} ({result['test_generalized']}/"
                f"{result['test_runs']} generalized) | {method} "
                f"| {cell(result[f'{method}: median relative error'])} "
                f"| {cell(result[f'{method}: median |log ratio|'], False)} "
                f"| {coverage} | {cell(result[f'{method}: budget accuracy'])} |"
            )
    return "\n".join(lines) + "\n"
