"""One training run that records itself: monitors, metrics, checkpoint, summary, figure.

Recipes build data and a compiled model, then call ``train_and_record``; it resumes
from the run folder's checkpoint if there is one, so rerunning a killed run goes on
where it stopped, and goes on as the uninterrupted run would have.

Resuming is exact because every random state training uses is either in the
checkpoint or a function of the step: weights, optimizer variables and the
models' ``SeedGenerator`` states (dropout, weight noise) are checkpointed, and the
order of the training examples is ours, not Keras'. Keras' ``fit(shuffle=True)``
draws each epoch's permutation from NumPy's global RNG (JAX), from torch's global
generator (PyTorch) or from a stateful ``tf.random.shuffle`` inside ``tf.data``
(TensorFlow), states that no checkpoint can restore on all three backends. So
``EpochBatches`` feeds the batches itself: epoch ``e`` visits the examples in the
order ``numpy.random.default_rng([seed, e]).permutation(N)``, and the batch at
global step ``s`` is a pure function of ``(seed, s)``, whatever prefetching or
look-ahead the backend does.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable

import keras
import numpy as np

from keras_grok.analysis.refine import refine_events
from keras_grok.callbacks import (
    GrokkingMonitor,
    MetricsRecorder,
    ScheduledMonitor,
    StepProgress,
    TrainingCheckpoint,
    resolve_schedule,
)
from keras_grok.data.epoch_batches import EpochBatches
from keras_grok.runs.after_the_fact import measure_after_the_fact
from keras_grok.runs.figures import plot_metrics
from keras_grok.runs.replay import ReplayRequest, active_replay, replay_stretches
from keras_grok.runs.run_folder import (
    RunFolder,
    RunFolderError,
    merge_rows,
    read_metrics,
    truncate_metrics,
)
from keras_grok.utils.argument_validation import (
    ACCURACY_LEVEL,
    validate_float_arg,
    validate_int_arg,
)


def train_and_record(
    model: keras.Model,
    train: tuple,
    test: tuple,
    out_dir: str | os.PathLike,
    *,
    batch_size: int,
    max_steps: int,
    schedule="adaptive",
    threshold: float = 0.99,
    test_threshold: float | None = None,
    patience: int | None = None,
    checkpoint_seconds: float = 10.0,
    monitors: tuple[ScheduledMonitor, ...] = (),
    after_the_fact: tuple[ScheduledMonitor, ...] = (),
    verbose: bool = True,
    title: str = "",
    shuffle_seed: int | None = None,
    summarize: Callable[[list[dict]], dict] | None = None,
    history_ratio: float = 2.0,
    history_budget_mb: float = 256.0,
    refine: bool = True,
) -> dict:
    """Trains ``model`` on ``train`` for up to ``max_steps`` steps, recording the run.

    Writes ``metrics.csv`` (row by row), the checkpoint (every
    ``checkpoint_seconds``), then the figure and, last, ``summary.json`` into
    ``out_dir`` (see ``keras_grok.runs.run_folder``). Steps are rounded up to whole
    epochs. A ``GrokkingMonitor`` is always attached; ``monitors`` adds more. All
    of them share one measurement pass per measured step; a monitor built with
    ``schedule=None`` measures at the run's ``schedule``. The figure holds every
    monitor's ``panels()``, the progress bar their ``progress_keys``.

    Args:
        model: a compiled model.
        train: ``(x, y)`` training arrays.
        test: ``(x, y)`` test arrays.
        out_dir: the run folder; made (with its parents) if it does not
            exist. It must not hold a finished run (``summary.json``).
        batch_size: examples per step (>= 1); >= the training set size means
            full batch.
        max_steps: training length in optimizer steps (>= 1).
        schedule: the run's measurement schedule (see ``ScheduledMonitor``);
            ``"adaptive"`` watches train and test accuracy against the
            thresholds. Defaults to `"adaptive"`.
        threshold: train accuracy that counts as memorized. Defaults to `0.99`.
        test_threshold: test accuracy that counts as generalized; None takes
            ``threshold``. Defaults to `None`.
        patience: stop this many steps after generalizing; None trains to the end.
            Defaults to `None`.
        checkpoint_seconds: least time between checkpoints. Defaults to `10.0`.
        monitors: further monitors to attach. Defaults to `()`.
        after_the_fact: monitors measured after training, not while it runs:
            at the steps of the checkpoint history (a monitor with its own
            schedule: at the first checkpoint at or after each of its steps),
            restored exactly, so watching costs training nothing. Their rows go
            to ``replays/lenses.csv``; the figure, summary and events read them
            with ``metrics.csv``'s. Defaults to `()`.
        verbose: show the progress bar. Defaults to `True`.
        title: the figure's title. Defaults to `""`.
        shuffle_seed: seed of the order of the training examples (see
            ``EpochBatches``); None draws it from NumPy's global RNG, which
            ``keras.utils.set_random_seed`` seeds. Defaults to `None`.
        summarize: ``summarize(rows) -> dict``, called with the run's
            ``metrics.csv`` rows once training ends; what it returns is added to
            the summary before ``summary.json`` is written (e.g. the events of
            ``keras_grok.analysis.events.late_phase_events``). Defaults to `None`.
        history_ratio: growth of the step between the checkpoints the run keeps
            in its history, from which any step can be replayed exactly
            (``keras_grok.runs.replay``). Defaults to `2.0`.
        history_budget_mb: the most disk the checkpoint history may take.
            Defaults to `256.0`.
        refine: after training, locate every event of the run (memorized,
            generalized, and the late-phase events whose lenses were measured) to
            ``max(1% of its step, one epoch)`` by exact replay from the checkpoint
            history (``keras_grok.analysis.refine``): ``memorized_at`` and
            ``generalized_at`` are then the refined steps (the in-line ones stay
            as ``*_measured``, the resolutions as ``*_resolution``), and
            ``events`` holds every event's step and resolution. Defaults to `True`.

    Returns:
        The summary that was written to ``summary.json``.

    Raises:
        ValueError: an argument out of range, ``train`` or ``test`` not an
            ``(x, y)`` pair, or ``out_dir`` an existing file (each message names
            the argument); all checked before anything is written.
        TypeError: ``model`` not a ``keras.Model``.
        RunFolderError: ``out_dir`` already holds a finished run.
    """
    _check_arguments(
        model,
        train,
        test,
        batch_size=batch_size,
        max_steps=max_steps,
        threshold=threshold,
        test_threshold=test_threshold,
        patience=patience,
        checkpoint_seconds=checkpoint_seconds,
        shuffle_seed=shuffle_seed,
        history_ratio=history_ratio,
        history_budget_mb=history_budget_mb,
    )
    for name, given in (("monitors", monitors), ("after_the_fact", after_the_fact)):
        strays = [
            type(m).__name__ for m in given if not isinstance(m, ScheduledMonitor)
        ]
        if strays:
            raise ValueError(
                f"{name} must hold keras_grok monitors (ScheduledMonitor); pass other "
                f"Keras callbacks to a fit of your own. Received: {name} with {strays}"
            )
    folder = _run_folder(out_dir, replaying=active_replay() is not None)
    x, y = train
    steps_per_epoch = math.ceil(len(x) / batch_size)
    epochs = math.ceil(max_steps / steps_per_epoch)
    if shuffle_seed is None:  # drawn before anything is restored: same on resume
        shuffle_seed = int(np.random.randint(2**31 - 1))

    levels = GrokkingMonitor.levels(threshold, test_threshold, test is not None)
    shared = resolve_schedule(schedule, epochs * steps_per_epoch, levels)
    grokking = GrokkingMonitor(
        train,
        test,
        shared,
        threshold=threshold,
        test_threshold=test_threshold,
        patience=patience,
    )
    all_monitors = [grokking, *monitors]
    for monitor in monitors:  # schedule=None: "the run's schedule"
        if monitor.schedule_spec is None:
            monitor.schedule_spec = shared
    # What a replay of this run needs (keras_grok.runs.replay).
    run = dict(
        folder=folder,
        model=model,
        train=train,
        test=test,
        grokking=grokking,
        monitors=(*monitors, *after_the_fact),
        batch_size=batch_size,
        shuffle_seed=shuffle_seed,
    )
    replay = active_replay()
    if replay is not None:  # measure after the fact, from the history
        return replay_stretches(replay, verbose=verbose, **run)
    state = TrainingCheckpoint.restore(folder.checkpoint, model)
    rows = truncate_metrics(folder.metrics, state.step if state else 0)
    for monitor in all_monitors:
        monitor.restore(rows)
    offset = state.elapsed if state else 0.0
    recorder = MetricsRecorder(folder.metrics, all_monitors, offset)
    callbacks = [
        *all_monitors,
        recorder,
        _RunCheckpoint(
            folder.checkpoint,
            checkpoint_seconds,
            offset,
            history=folder,
            history_ratio=history_ratio,
            history_budget_mb=history_budget_mb,
        ),
    ]
    if verbose:
        callbacks.append(StepProgress(all_monitors))

    initial_epoch = state.epoch if state else 0
    model.fit(
        EpochBatches(x, y, batch_size, shuffle_seed, initial_epoch),
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        initial_epoch=initial_epoch,
        shuffle=False,  # EpochBatches owns the order
        verbose=0,
        callbacks=callbacks,
    )
    if initial_epoch >= epochs and grokking.diverged_at is None:
        # Training had ended (a rerun after a kill in what follows it): a run
        # that diverged stopped at its first non-finite training loss.
        grokking.diverged_at = next(
            (r["step"] for r in rows if not math.isfinite(r.get("train_loss", 0))),
            None,
        )

    summary = {
        **grokking.summary(),
        "measurements": len(grokking.records),
        "wall_time_s": recorder.elapsed(),
        "steps_per_epoch": steps_per_epoch,
        "resumed_from_step": state.step if state else None,
    }
    rows = [r for r in folder.read_metrics() if _is_finite_row(r)]
    started = time.perf_counter()
    if after_the_fact and summary.get("diverged_at") is None:
        rows = merge_rows(rows, measure_after_the_fact(folder, model, after_the_fact))
        summary["after_the_fact_time_s"] = time.perf_counter() - started
        started = time.perf_counter()
    for monitor in (*monitors, *after_the_fact):
        summary.update(monitor.summary())
    panels = tuple(p for m in (*all_monitors, *after_the_fact) for p in m.panels())
    refined = refine and summary.get("diverged_at") is None
    table, measured_rows = _refine(
        rows,
        run,
        threshold=threshold,
        test_threshold=test_threshold,
        max_rounds=6 if refined else 0,
    )
    summary["events"] = table
    summary["refine_time_s"] = time.perf_counter() - started
    for name in ("memorized", "generalized"):
        event = table[name] or {}
        summary[f"{name}_at_measured"] = summary[f"{name}_at"]
        summary[f"{name}_at"] = event.get("step")
        summary[f"{name}_at_resolution"] = event.get("resolution")
    marks = {
        "memorized": summary["memorized_at"],
        "generalized": summary["generalized_at"],
    }
    if summarize is not None:
        summary.update(summarize(measured_rows))
    with warnings.catch_warnings():  # a diverged run's panels may be empty
        warnings.filterwarnings("ignore", message="No artists with labels")
        plot_metrics(rows, folder.figure, panels, title, marks)
    folder.write_summary(summary)
    return summary


def _check_arguments(model, train, test, **numbers) -> None:
    """Refuses, before anything is written, arguments a run cannot use."""
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"model must be a keras.Model. Received: model of type "
            f"{type(model).__name__}"
        )
    if not getattr(model, "compiled", False) or model.optimizer is None:
        raise ValueError(
            "model must be compiled (model.compile(optimizer=..., loss=...)) "
            f"before it trains. Received: model={model.name!r}, not compiled"
        )
    for name, data in (("train", train), ("test", test)):
        if data is None and name == "test":
            continue
        if not (
            isinstance(data, (tuple, list))
            and len(data) == 2
            and all(hasattr(part, "__len__") for part in data)
            and len(data[0]) == len(data[1])
            and len(data[0]) > 0
        ):
            raise ValueError(
                f"{name} must be an (x, y) pair of arrays of the same length, at "
                f"least one example. Received: {name} of type {type(data).__name__}"
            )
    validate_int_arg(numbers["batch_size"], "batch_size")
    validate_int_arg(numbers["max_steps"], "max_steps")
    ACCURACY_LEVEL.validate(numbers["threshold"], "threshold")
    if numbers["test_threshold"] is not None:
        ACCURACY_LEVEL.validate(numbers["test_threshold"], "test_threshold")
    if numbers["patience"] is not None:
        validate_int_arg(numbers["patience"], "patience", minimum=0)
    validate_float_arg(numbers["checkpoint_seconds"], "checkpoint_seconds")
    if numbers["shuffle_seed"] is not None:
        validate_int_arg(numbers["shuffle_seed"], "shuffle_seed", minimum=0)
    validate_float_arg(
        numbers["history_ratio"], "history_ratio", minimum=1.0, allow_minimum=False
    )
    validate_float_arg(
        numbers["history_budget_mb"], "history_budget_mb", allow_minimum=False
    )


def _run_folder(out_dir, replaying: bool) -> RunFolder:
    """The run folder, made if it does not exist; refused if it is a file or
    holds a finished run (a replay measures in a finished one)."""
    if not isinstance(out_dir, (str, os.PathLike)) or not str(out_dir).strip():
        raise ValueError(
            f"out_dir must be the path of a folder. Received: out_dir={out_dir!r}"
        )
    folder = RunFolder(out_dir)
    if folder.path.exists() and not folder.path.is_dir():
        raise ValueError(
            "out_dir must be a folder, and is an existing file. "
            f"Received: out_dir={str(out_dir)!r}"
        )
    if not replaying and folder.is_finished():
        raise RunFolderError(
            f"{folder.path} already holds a finished run; choose another out_dir "
            "or remove its files (the command line's --overwrite)"
        )
    folder.path.mkdir(parents=True, exist_ok=True)
    return folder


def _refine(
    rows: list[dict],
    run: dict,
    *,
    threshold: float,
    test_threshold: float | None,
    max_rounds: int,
):
    """Refines the run's events by replay in this process (see ``refine_events``).

    ``run`` holds what ``replay_stretches`` takes of the run. The replays go
    through the run's own model and monitors; their records and schedules, and
    the model's final state, are put back afterwards.
    """
    grokking, monitors = run["grokking"], run["monitors"]
    kept = [
        (m, m.records, m.schedule_spec, getattr(m, "patience", None))
        for m in (grokking, *monitors)
    ]

    def measure(wanted: dict[str, list[int]]) -> list[dict]:
        lenses = ("accuracy", *sorted(set(wanted) - {"accuracy"}))
        steps = sorted({s for group in wanted.values() for s in group})
        request = ReplayRequest(
            lenses,
            tuple(steps),
            key_frequencies="recorded",  # the run's Fourier lens as it measured
            lens_steps=tuple((lens, tuple(wanted[lens])) for lens in sorted(wanted)),
        )
        replay_stretches(request, verbose=False, **run)
        path = run["folder"].replay_metrics(request.name)
        return [r for r in read_metrics(path) if r["step"] in set(steps)]

    try:
        return refine_events(
            rows,
            measure,
            steps_per_epoch=math.ceil(len(run["train"][0]) / run["batch_size"]),
            threshold=threshold,
            test_threshold=test_threshold,
            max_rounds=max_rounds,
        )
    finally:
        for monitor, records, spec, patience in kept:
            monitor.records, monitor.schedule_spec = records, spec
            if hasattr(monitor, "patience"):
                monitor.patience = patience
        if max_rounds:  # replays moved the model: back to its final state
            TrainingCheckpoint.restore(run["folder"].checkpoint, run["model"])


class _RunCheckpoint(TrainingCheckpoint):
    """The run's checkpoint: its last save says that no epoch is left to train.

    A run that a monitor stops early (patience, a forecast, divergence) saves
    its last checkpoint with the epoch it stopped in, so a rerun after a kill
    in what follows training (after-the-fact lenses, refinement, figure) would
    train on where the uninterrupted run had stopped. Its last save therefore
    says ``epoch = epochs``, and a rerun goes straight to what follows. The
    history keeps the true epoch (replays train on from it), and is written
    first: a kill between the two leaves the previous checkpoint, and the rerun
    trains the last stretch again and writes both.
    """

    def save(self, next_epoch: int, history_only: bool = False) -> None:
        epochs = self.params.get("epochs", 0)
        final = next_epoch >= epochs or bool(self._trained_model.stop_training)
        if history_only or not final:
            super().save(next_epoch, history_only)
            return
        super().save(next_epoch, history_only=True)
        history, self.history = self.history, None
        try:
            super().save(max(next_epoch, epochs))
        finally:
            self.history = history


RUN_SETTINGS = (
    "batch_size",
    "max_steps",
    "schedule",
    "threshold",
    "test_threshold",
    "patience",
    "checkpoint_seconds",
    "refine",
)


def run_settings(config: dict) -> dict:
    """The ``train_and_record`` keywords a recipe's config sets, by the same names.

    Takes the keys of ``RUN_SETTINGS`` that ``config`` has; a negative
    ``patience`` (a recipe's "train on") becomes None.

    Example:
    ```python
    train_and_record(model, train, test, out_dir, **run_settings(config))
    ```
    """
    settings = {key: config[key] for key in RUN_SETTINGS if key in config}
    if settings.get("patience") is not None and settings["patience"] < 0:
        settings["patience"] = None
    return settings


def _is_finite_row(row: dict) -> bool:
    # A diverged step's row is all NaN or inf: there is nothing to draw.
    return any(math.isfinite(v) for k, v in row.items() if k not in ("step", "elapsed"))
