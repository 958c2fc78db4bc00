"""The base of every keras-grok monitor: measure at scheduled training steps.

A monitor counts optimizer steps itself (cheaply, in ``on_train_batch_begin``) and
measures when the count reaches the next scheduled step, whatever the batch size:
full-batch and mini-batch training alike. It measures *before* the next batch runs,
so it never overrides ``on_train_batch_end`` and leaves Keras' asynchronous callback
dispatch on for the other callbacks.
"""

from __future__ import annotations

import math
from bisect import bisect_right

import keras

from keras_grok.callbacks.schedule import Schedule, ScheduleSpec, resolve_schedule

_UNKNOWN_LENGTH_STEPS = 2**31 - 1


def current_step(model: keras.Model) -> int:
    """The number of optimizer steps the model has taken (0 before any training)."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return 0
    return int(keras.ops.convert_to_numpy(optimizer.iterations))


def sync_model_state(model: keras.Model) -> None:
    """Makes the model's variables hold the live training state.

    Only JAX needs this: during an epoch its trainer keeps the state outside the
    model's variables and re-attaches it at epoch end or on ``jax_state_sync()``.
    Each sync copies every variable, so call it only when measuring.
    """
    sync = getattr(model, "jax_state_sync", None)
    if sync is not None:
        sync()


class ScheduledMonitor(keras.callbacks.Callback):
    """Measures something about the model at log-spaced training steps.

    Subclasses set ``metric_names`` and implement ``measure(step)``, which returns a
    dict of Python floats. Every measurement is kept in ``records`` (one dict per
    measured step, with its ``"step"``); the latest values also go into the epoch-end
    ``logs`` (NaN until first measured) so ``History``, ``CSVLogger`` and
    ``TensorBoard`` see them. Put monitors before those callbacks in the list.

    Steps are optimizer steps counted from the model's ``optimizer.iterations`` at
    the start of ``fit``, so a resumed or continued run keeps counting. The state at
    the end of training is always measured.

    Args:
        schedule: when to measure: ``"geometric"`` (x1.3), ``"geometric:RATIO"``,
            ``"omnigrok"``, a ``Schedule``, a list of steps, or a callable
            ``total_steps -> Schedule``. Defaults to `"geometric"`.
    """

    metric_names: tuple[str, ...] = ()

    def __init__(self, schedule: ScheduleSpec = "geometric"):
        super().__init__()
        self.schedule_spec = schedule
        self.schedule: Schedule | None = None
        self.records: list[dict[str, float]] = []

    def measure(self, step: int) -> dict[str, float]:
        """Returns this monitor's figures for the model's current state."""
        raise NotImplementedError

    @property
    def latest(self) -> dict[str, float]:
        """The most recent record, or an empty dict."""
        return self.records[-1] if self.records else {}

    def restore(self, records: list[dict[str, float]]) -> None:
        """Sets earlier records (e.g. read back from a run folder) before ``fit``."""
        self.records = [
            {"step": int(r["step"]), **{k: r[k] for k in self.metric_names if k in r}}
            for r in records
        ]

    def on_train_begin(self, logs=None):
        start = current_step(self.model)
        steps_per_epoch = self.params.get("steps") if self.params else None
        epochs = self.params.get("epochs", 1) if self.params else 1
        if steps_per_epoch:
            total = epochs * steps_per_epoch
            if start >= total:  # a further `fit` call on a trained model
                total += start
        else:
            total = _UNKNOWN_LENGTH_STEPS
        self.schedule = resolve_schedule(self.schedule_spec, max(total, 1))
        self.records = [r for r in self.records if r["step"] <= start]
        self._completed = start
        self._epoch_start = start
        # On JAX every read of `self.model` copies the training state into the
        # model's variables (Keras' Callback.model syncs), so per-batch and
        # per-epoch code reads this reference instead.
        self._trained_model = self.model
        self._steps_per_execution = int(
            getattr(self._trained_model, "steps_per_execution", 1) or 1
        )
        self._advance(start if self.records else start - 1)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = self._completed

    def on_train_batch_begin(self, batch, logs=None):
        # `batch` optimizer steps of this epoch are done when batch `batch` begins.
        self._completed = self._epoch_start + batch
        if self._completed >= self._next_due:
            sync_model_state(self.model)
            self._record(self._completed)
        self._completed = self._epoch_start + batch + self._steps_per_execution

    def on_epoch_end(self, epoch, logs=None):
        last_epoch = (
            epoch + 1 >= self.params.get("epochs", 0)
            or self._trained_model.stop_training
        )
        measured = self.records and self.records[-1]["step"] == self._completed
        if self._completed >= self._next_due or (last_epoch and not measured):
            self._record(self._completed)
        if logs is not None:
            latest = self.latest
            for name in self.metric_names:
                logs[name] = float(latest.get(name, math.nan))

    def on_train_end(self, logs=None):
        if not self.records or self.records[-1]["step"] < self._completed:
            sync_model_state(self.model)
            self._record(self._completed)

    def _record(self, step: int) -> None:
        values = self.measure(step)
        self.records.append({"step": step, **values})
        self._advance(step)

    def _advance(self, step: int) -> None:
        steps = self.schedule.steps
        index = bisect_right(steps, step)
        self._next_due = (
            steps[index] if index < len(steps) else _UNKNOWN_LENGTH_STEPS + 1
        )


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
