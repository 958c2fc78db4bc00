"""MetricsRecorder: every measured step of the monitors, one CSV row each."""

from __future__ import annotations

import os
import time
from pathlib import Path

import keras

from keras_grok.callbacks.scheduled_monitor import ScheduledMonitor
from keras_grok.runs.run_folder import MetricsFile
from keras_grok.utils.argument_validation import validate_float_arg


def merged_records_after(
    monitors: list[ScheduledMonitor], step: int
) -> list[dict[str, float]]:
    """The monitors' records of steps after ``step``, merged per step, in step order."""
    merged: dict[int, dict[str, float]] = {}
    for monitor in monitors:
        for record in reversed(monitor.records):
            if record["step"] <= step:
                break
            merged.setdefault(record["step"], {}).update(record)
    return [merged[s] for s in sorted(merged)]


class MetricsRecorder(keras.callbacks.Callback):
    """Appends one CSV row per measured step of the given monitors.

    Columns are ``step``, ``elapsed`` (seconds of training, summed over resumed
    sessions) and every monitor's ``metric_names``; a monitor that did not measure
    at a step leaves NaN there. Rows are written before the next batch and at
    epoch ends, each in one flushed write (see ``keras_grok.runs.run_folder``). Place
    this callback after the monitors.

    Args:
        path: the CSV file; appended to if it exists with the same columns.
        monitors: the ``ScheduledMonitor``s whose records to write.
        elapsed_offset: seconds already spent by earlier sessions of the run.
            Defaults to `0.0`.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        monitors: list[ScheduledMonitor],
        elapsed_offset: float = 0.0,
    ):
        super().__init__()
        self.path = path
        self.monitors = monitor_list(monitors, "MetricsRecorder")
        self.elapsed_offset = validate_float_arg(elapsed_offset, "elapsed_offset")
        names = [n for m in self.monitors for n in m.metric_names]
        self.columns = ["step", "elapsed", *dict.fromkeys(names)]
        self._file: MetricsFile | None = None

    def on_train_begin(self, logs=None):
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)  # as a checkpoint's
        self._file = MetricsFile(self.path, self.columns)
        self._started = time.perf_counter()
        self._checked = False

    def on_train_batch_begin(self, batch, logs=None):
        if not self._checked:  # every callback of the fit has begun by now
            self._checked = True
            absent = [
                type(m).__name__
                for m in self.monitors
                if getattr(m, "_trained_model", None) is None
            ]
            if absent:
                raise ValueError(
                    "MetricsRecorder writes what its monitors measure, and "
                    f"{', '.join(absent)} is not among this fit's callbacks: pass "
                    "every monitor to fit(callbacks=[...]) too. Received: monitors "
                    "not in the fit"
                )
        self._flush()

    def on_epoch_end(self, epoch, logs=None):
        self._flush()

    def on_train_end(self, logs=None):
        self._flush()
        self._file.close()
        self._file = None

    def elapsed(self) -> float:
        """Seconds of training so far, earlier sessions included."""
        return self.elapsed_offset + time.perf_counter() - self._started

    def _flush(self) -> None:
        for record in merged_records_after(self.monitors, self._file.last_step):
            self._file.append({**record, "elapsed": self.elapsed()})


def monitor_list(monitors, who: str) -> list[ScheduledMonitor]:
    """``monitors`` as a list if it holds only keras-grok monitors, else ValueError."""
    if isinstance(monitors, (str, bytes)) or not hasattr(monitors, "__iter__"):
        raise ValueError(
            f"{who} needs a list of keras-grok monitors. Received: "
            f"monitors={monitors!r}"
        )
    monitors = list(monitors)
    strays = [type(m).__name__ for m in monitors if not isinstance(m, ScheduledMonitor)]
    if strays:
        raise ValueError(
            f"{who} reads keras-grok monitors (GrokkingMonitor, CollapseMonitor, "
            f"...); pass other callbacks to fit. Received: monitors holding {strays}"
        )
    return monitors
