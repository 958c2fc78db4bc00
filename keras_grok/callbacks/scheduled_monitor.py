"""The base of every keras-grok monitor: measure at scheduled training steps.

A monitor counts optimizer steps itself (cheaply, in ``on_train_batch_begin``) and
measures when the count reaches its next scheduled step, whatever the batch size:
full-batch and mini-batch training alike. It measures *before* the next batch runs,
so it never overrides ``on_train_batch_end`` and leaves Keras' asynchronous callback
dispatch on for the other callbacks.

Measuring goes through the model's ``MeasurementCoordinator``: the first monitor
that reaches a due step runs one shared pass for every monitor due at that step
(each data set read once, whatever the number of monitors), and each records its
metrics from it.
"""

from __future__ import annotations

import math

import keras

from keras_grok.callbacks.measurement_coordinator import MeasurementCoordinator
from keras_grok.callbacks.measurement_requests import PassResults, Request
from keras_grok.callbacks.schedule import NEVER, ScheduleSpec, resolve_schedule
from keras_grok.runs.figures import Panel
from keras_grok.utils.argument_validation import LabelledData

_UNKNOWN_LENGTH_STEPS = 2**31 - 1


def current_step(model: keras.Model) -> int:
    """The number of optimizer steps the model has taken (0 before any training)."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return 0
    return int(keras.ops.convert_to_numpy(optimizer.iterations))


class ScheduledMonitor(keras.callbacks.Callback):
    """Measures something about the model at scheduled training steps.

    Subclasses set ``metric_names`` and implement ``measure(step, results)``,
    which returns a dict of Python floats; ``needs()`` lists what they read from
    the shared pass (``results.get(request, data)``), ``panels()`` their default
    figure panels and ``progress_keys`` the metrics the progress bar shows. Every
    measurement is kept in ``records`` (one dict per measured step, with its
    ``"step"``); the latest values also go into the epoch-end ``logs`` (NaN until
    first measured) so ``History``, ``CSVLogger`` and ``TensorBoard`` see them. Put
    monitors before those callbacks in the list.

    Metrics measured on a data set are named ``{set}_{metric}``, the set being
    ``train`` or ``test`` (``train_accuracy``, ``test_rnc1``, ``test_nhsic_zx``);
    metrics of the weights alone have no prefix (``complexity_bits``).

    Steps are optimizer steps counted from the model's ``optimizer.iterations`` at
    the start of ``fit``, so a resumed or continued run keeps counting. The state at
    the end of training is always measured.

    Args:
        schedule: when to measure: ``"adaptive"``, ``"geometric"`` (x1.3),
            ``"geometric:RATIO"``, ``"every:N"``, ``"omnigrok"``, a ``Schedule`` or
            ``AdaptiveSchedule``, a list of steps, or a callable
            ``total_steps -> Schedule``; None: the run's schedule under
            ``keras_grok.runs.train_and_record.train_and_record``, else ``"geometric"``.
            Defaults to `"geometric"`.
        batch_size: rows per compiled call of the shared pass (the smallest of
            the monitors measuring at a step is used). Defaults to `16384`.
    """

    metric_names: tuple[str, ...] = ()
    progress_keys: tuple[str, ...] = ()

    def __init__(
        self, schedule: ScheduleSpec | None = "geometric", batch_size: int = 16384
    ):
        super().__init__()
        if isinstance(schedule, str):
            resolve_schedule(schedule, 1)  # a bad spec fails here, not mid-fit
        if int(batch_size) < 1:
            raise ValueError(
                f"batch_size must be >= 1. Received: batch_size={batch_size}"
            )
        self.schedule_spec = schedule
        self.batch_size = int(batch_size)
        self.schedule = None
        self.records: list[dict[str, float]] = []
        self._next_due = NEVER

    def needs(self) -> list[tuple[Request, LabelledData]]:
        """What this monitor reads from the shared pass: (request, data) pairs."""
        return []

    def measure(self, step: int, results: PassResults) -> dict[str, float]:
        """Returns this monitor's metrics for the model's current state."""
        raise NotImplementedError

    def panels(self) -> tuple[Panel, ...]:
        """The figure panels this monitor's metrics are drawn in by default."""
        return ()

    def schedule_levels(self) -> dict[str, float] | None:
        """Metric levels an ``"adaptive"`` schedule watches (None: its default)."""
        return None

    @property
    def latest(self) -> dict[str, float]:
        """The most recent record, or an empty dict."""
        return self.records[-1] if self.records else {}

    def summary(self) -> dict:
        """The final value of each metric, as ``final_{name}``."""
        latest = self.latest
        return {f"final_{name}": latest.get(name) for name in self.metric_names}

    def restore(self, records: list[dict[str, float]]) -> None:
        """Sets earlier records (e.g. read back from a run folder) before ``fit``."""
        self.records = [
            {"step": int(r["step"]), **{k: r[k] for k in self.metric_names if k in r}}
            for r in records
        ]

    @property
    def trained_model(self) -> keras.Model:
        """The model being trained, read without a JAX state sync."""
        return self._trained_model

    def on_train_begin(self, logs=None):
        # On JAX every read of `self.model` copies the training state into the
        # model's variables (Keras' Callback.model syncs): read it once here.
        self._trained_model = self.model
        start = current_step(self._trained_model)
        steps_per_epoch = self.params.get("steps") if self.params else None
        epochs = self.params.get("epochs", 1) if self.params else 1
        if steps_per_epoch:
            total = epochs * steps_per_epoch
            if start >= total:  # a further `fit` call on a trained model
                total += start
        else:
            total = _UNKNOWN_LENGTH_STEPS
        spec = "geometric" if self.schedule_spec is None else self.schedule_spec
        self.schedule = resolve_schedule(spec, max(total, 1), self.schedule_levels())
        self.records = [r for r in self.records if r["step"] <= start]
        self._completed = start
        self._epoch_start = start
        self._steps_per_execution = int(
            getattr(self._trained_model, "steps_per_execution", 1) or 1
        )
        self._coordinator = MeasurementCoordinator.of(self._trained_model)
        self._coordinator.attach(self, self.params)
        self.advance(start if self.records else start - 1, self._coordinator.history())

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = self._completed

    def on_train_batch_begin(self, batch, logs=None):
        # `batch` optimizer steps of this epoch are done when batch `batch` begins.
        self._completed = self._epoch_start + batch
        if self._completed >= self._next_due:
            self._coordinator.measure_due(self._completed)
        self._completed = self._epoch_start + batch + self._steps_per_execution

    def on_epoch_end(self, epoch, logs=None):
        last_epoch = (
            epoch + 1 >= self.params.get("epochs", 0)
            or self._trained_model.stop_training
        )
        self._coordinator.measure_due(self._completed, final=last_epoch)
        if logs is not None:
            latest = self.latest
            for name in self.metric_names:
                logs[name] = float(latest.get(name, math.nan))

    def on_train_end(self, logs=None):
        self._coordinator.measure_due(self._completed, final=True)
        self._coordinator.detach(self)

    def is_due(self, step: int, final: bool = False) -> bool:
        """Whether this monitor measures at ``step`` (``final``: training ends)."""
        unmeasured = not self.records or self.records[-1]["step"] < step
        return unmeasured and (step >= self._next_due or final)

    def record(self, step: int, results: PassResults) -> None:
        """Measures from the pass's ``results`` and keeps the record."""
        self.records.append({"step": step, **self.measure(step, results)})

    def advance(self, step: int, history: list[dict]) -> None:
        """Finds the next step to measure at, after ``step``."""
        self._next_due = self.schedule.next_after(step, history)
