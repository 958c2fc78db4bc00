"""One training run that records itself: monitors, metrics, checkpoint, summary, figure.

Recipes build data and a compiled model, then call ``train_and_record``; it resumes
from the run folder's checkpoint if there is one, so rerunning a killed run goes on
where it stopped.
"""

from __future__ import annotations

import math
import os

import keras

from keras_grok.callbacks import (
    GrokkingMonitor,
    MetricsRecorder,
    ScheduledMonitor,
    StepProgress,
    TrainingCheckpoint,
    resolve_schedule,
)
from keras_grok.plots import plot_metrics
from keras_grok.run_folder import RunFolder, truncate_metrics


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
    verbose: bool = True,
    title: str = "",
) -> dict:
    """Trains ``model`` on ``train`` for up to ``max_steps`` steps, recording the run.

    Writes ``metrics.csv`` (row by row), the checkpoint (every
    ``checkpoint_seconds``), then the figure and, last, ``summary.json`` into
    ``out_dir`` (see ``keras_grok.run_folder``). Steps are rounded up to whole
    epochs. A ``GrokkingMonitor`` is always attached; ``monitors`` adds more. All
    of them share one measurement pass per measured step; a monitor built with
    ``schedule=None`` measures at the run's ``schedule``. The figure holds every
    monitor's ``panels()``, the progress bar their ``progress_keys``.

    Args:
        model: a compiled model.
        train: ``(x, y)`` training arrays.
        test: ``(x, y)`` test arrays.
        out_dir: the run folder (must exist).
        batch_size: examples per step; >= the training set size means full batch.
        max_steps: training length in optimizer steps.
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
        verbose: show the progress bar. Defaults to `True`.
        title: the figure's title. Defaults to `""`.

    Returns:
        The summary that was written to ``summary.json``.
    """
    folder = RunFolder(out_dir)
    x, y = train
    steps_per_epoch = math.ceil(len(x) / batch_size)
    epochs = math.ceil(max_steps / steps_per_epoch)

    grokking = GrokkingMonitor(
        train,
        test,
        "geometric",
        threshold=threshold,
        test_threshold=test_threshold,
        patience=patience,
    )
    shared = resolve_schedule(
        schedule, epochs * steps_per_epoch, grokking.schedule_levels()
    )
    all_monitors = [grokking, *monitors]
    for monitor in all_monitors:
        if monitor is grokking or monitor.schedule_spec is None:
            monitor.schedule_spec = shared
    state = TrainingCheckpoint.restore(folder.checkpoint, model)
    rows = truncate_metrics(folder.metrics, state.step if state else 0)
    for monitor in all_monitors:
        monitor.restore(rows)
    offset = state.elapsed if state else 0.0
    recorder = MetricsRecorder(folder.metrics, all_monitors, offset)
    callbacks = [
        *all_monitors,
        recorder,
        TrainingCheckpoint(folder.checkpoint, checkpoint_seconds, offset),
    ]
    if verbose:
        callbacks.append(StepProgress(all_monitors))

    model.fit(
        x,
        y,
        batch_size=batch_size,
        epochs=epochs,
        initial_epoch=state.epoch if state else 0,
        shuffle=True,
        verbose=0,
        callbacks=callbacks,
    )

    summary = {
        **grokking.summary(),
        "measurements": len(grokking.records),
        "wall_time_s": recorder.elapsed(),
        "steps_per_epoch": steps_per_epoch,
        "resumed_from_step": state.step if state else None,
    }
    for monitor in monitors:
        summary.update(monitor.summary())
    marks = {
        "memorized": summary["memorized_at"],
        "generalized": summary["generalized_at"],
    }
    panels = tuple(p for m in all_monitors for p in m.panels())
    plot_metrics(folder.read_metrics(), folder.figure, panels, title, marks)
    folder.write_summary(summary)
    return summary
