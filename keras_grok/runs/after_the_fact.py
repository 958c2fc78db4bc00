"""Lenses measured after training, at the checkpoint history, and at a restored state.

``train_and_record(after_the_fact=monitors)`` measures its monitors here once
training ends, so watching costs training nothing (``measure_after_the_fact``);
``measure_now`` measures monitors on a model as it is, with one shared pass.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

from keras_grok.callbacks import TrainingCheckpoint
from keras_grok.callbacks.measurement_coordinator import MeasurementCoordinator
from keras_grok.runs.metrics_file import with_columns_of
from keras_grok.runs.run_folder import RunFolder, read_metrics, write_metrics_atomic
from keras_grok.utils.argument_validation import validate_int_arg

AFTER_THE_FACT = "lenses"
"""The replay file of ``measure_after_the_fact`` (``replays/lenses.csv``)."""


def measure_after_the_fact(folder: RunFolder, model, monitors: Sequence) -> list[dict]:
    """Measures ``monitors`` at the run's history checkpoints, after training.

    Each checkpoint is restored exactly and measured with one shared pass, so
    the values are those the monitors would have logged in line at that step.
    A monitor whose schedule is None (the run's) is measured at every history
    step; one with its own schedule at the first history step at or after each
    of its steps, and at the last (the end of training is always measured). A
    monitor may define ``prepare_after_the_fact(model)``, called with the
    trained model first (``FourierMonitor`` takes the final model's
    key frequencies there, Nanda et al.'s protocol). The rows go to
    ``replays/lenses.csv``; steps already there are not measured again (a
    killed run resumes).

    Returns:
        The rows, one per measured step, in step order.
    """
    from keras_grok.callbacks.schedule import Schedule, resolve_schedule

    for monitor in monitors:
        prepare = getattr(monitor, "prepare_after_the_fact", None)
        if prepare is not None:
            prepare(model)
    history = [(s, p) for s, p in folder.history_checkpoints() if s >= 1]
    steps = [s for s, _ in history]
    due: dict[int, list] = {}
    for monitor in monitors:
        chosen = steps
        if monitor.schedule_spec is not None and steps:
            schedule = resolve_schedule(monitor.schedule_spec, steps[-1])
            if isinstance(schedule, Schedule):
                chosen = sorted(
                    {
                        next((h for h in steps if h >= t), steps[-1])
                        for t in schedule.steps
                    }
                    | {steps[-1]}  # the end of training, as in line: always
                )
                _warn_if_thinned(monitor, schedule, steps, len(chosen))
        for step in chosen:
            due.setdefault(step, []).append(monitor)
    path = folder.replay_metrics(AFTER_THE_FACT)
    columns = ["step", *dict.fromkeys(n for m in monitors for n in m.metric_names)]
    done = {int(r["step"]): r for r in read_metrics(path)} if path.exists() else {}
    columns = with_columns_of(columns, done.values())  # keep an earlier lens's
    for monitor in monitors:
        monitor.records = []
    for step, checkpoint in history:
        if step not in due or step in done:
            continue
        TrainingCheckpoint.restore(checkpoint, model)
        measure_now(model, due[step], step)
        row = {"step": step}
        for monitor in due[step]:
            row.update(monitor.records[-1])
        done[step] = row
        write_metrics_atomic(path, columns, [done[s] for s in sorted(done)])
    for monitor in monitors:  # their records: every measured step, as in line
        monitor.records = [
            {"step": s, **{k: done[s][k] for k in monitor.metric_names if k in done[s]}}
            for s in sorted(done)
            if any(
                k in done[s] and math.isfinite(done[s][k]) for k in monitor.metric_names
            )
        ]
    TrainingCheckpoint.restore(history[-1][1], model)
    return [done[s] for s in sorted(done)]


def _warn_if_thinned(monitor, schedule, history: list[int], measured: int) -> None:
    # A schedule denser than the history is measured at fewer steps than it
    # lists: say so, and how to measure the others.
    asked = sum(1 for t in schedule.steps if t <= history[-1])
    if asked > 2 * measured:
        warnings.warn(
            f"{type(monitor).__name__}'s schedule lists {asked:,} steps up to "
            f"step {history[-1]:,}; measured after training, it is measured at "
            f"the {measured} checkpoints of the run's history at or after them. "
            "For the other steps: keras-grok measure RUN_DIR --lens ... "
            "--steps START:STOP:STRIDE (exact replay), or a smaller history_ratio",
            stacklevel=3,
        )


def measure_now(model, monitors: Sequence, step: int) -> None:
    """Measures ``monitors`` on ``model`` as it is, recorded at ``step``.

    One shared pass, as in training (the monitors' own hooks set them up and
    attach them to the model's coordinator): a state restored from a checkpoint
    measures as it did when the checkpoint was taken.
    """
    step = validate_int_arg(step, "step", minimum=0)
    params = {"epochs": 1, "steps": max(step, 1), "verbose": 0}
    for monitor in monitors:
        monitor.set_model(model)
        monitor.set_params(params)
        monitor.on_train_begin()
    MeasurementCoordinator.of(model).measure_due(step, final=True)
    for monitor in monitors:
        monitor.on_train_end()
