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
)
from keras_grok.callbacks.results import (
    read_metrics,
    truncate_metrics,
    write_json_atomic,
)
from keras_grok.plots import ACCURACY, Panel, plot_metrics
from keras_grok.run_folder import RunFolder


def train_and_record(
    model: keras.Model,
    train: tuple,
    test: tuple,
    out_dir: str | os.PathLike,
    *,
    batch_size: int,
    max_steps: int,
    schedule="geometric",
    threshold: float = 0.99,
    patience: int | None = None,
    checkpoint_seconds: float = 10.0,
    monitors: tuple[ScheduledMonitor, ...] = (),
    progress_keys: tuple[str, ...] = ("train_accuracy", "test_accuracy"),
    panels: tuple[Panel, ...] = (ACCURACY,),
    verbose: bool = True,
    title: str = "",
) -> dict:
    """Trains ``model`` on ``train`` for up to ``max_steps`` steps, recording the run.

    Writes ``metrics.csv`` (row by row), ``checkpoint.npz`` (every
    ``checkpoint_seconds``), then ``summary.json`` and ``figure.png`` into
    ``out_dir``. Steps are rounded up to whole epochs. A ``GrokkingMonitor`` is
    always attached; ``monitors`` adds more (they share the metrics file).

    Args:
        model: a compiled model.
        train: ``(x, y)`` training arrays.
        test: ``(x, y)`` test arrays.
        out_dir: the run folder (must exist).
        batch_size: examples per step; >= the training set size means full batch.
        max_steps: training length in optimizer steps.
        schedule: measurement schedule (see ``ScheduledMonitor``).
            Defaults to `"geometric"`.
        threshold: accuracy that counts as memorized / generalized.
            Defaults to `0.99`.
        patience: stop this many steps after generalizing; None trains to the end.
            Defaults to `None`.
        checkpoint_seconds: least time between checkpoints. Defaults to `10.0`.
        monitors: further monitors to attach. Defaults to `()`.
        progress_keys: figures shown on the progress bar.
            Defaults to `("train_accuracy", "test_accuracy")`.
        panels: the figure's panels, drawn from ``metrics.csv``.
            Defaults to `(ACCURACY,)`.
        verbose: show the progress bar. Defaults to `True`.
        title: the figure's title. Defaults to `""`.

    Returns:
        The summary that was written to ``summary.json``.
    """
    folder = RunFolder(out_dir)
    x, y = train
    steps_per_epoch = math.ceil(len(x) / batch_size)
    epochs = math.ceil(max_steps / steps_per_epoch)

    grokking = GrokkingMonitor(train, test, schedule, threshold, patience)
    all_monitors = [grokking, *monitors]
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
        callbacks.append(StepProgress(all_monitors, list(progress_keys)))

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
        "wall_time_s": recorder.elapsed(),
        "steps_per_epoch": steps_per_epoch,
        "resumed_from_step": state.step if state else None,
    }
    for monitor in monitors:
        summary.update(
            {f"final_{k}": v for k, v in monitor.latest.items() if k != "step"}
        )
    marks = {
        "memorized": summary["memorized_at"],
        "generalized": summary["generalized_at"],
    }
    plot_metrics(read_metrics(folder.metrics), folder.figure, panels, title, marks)
    write_json_atomic(folder.summary, summary)
    return summary
