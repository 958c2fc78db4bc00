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
import sys
import warnings

import keras

from keras_grok import losses as grok_losses  # a module: see utils/registration
from keras_grok.callbacks.measurement_coordinator import MeasurementCoordinator
from keras_grok.callbacks.measurement_requests import PassResults, Request
from keras_grok.callbacks.schedule import NEVER, ScheduleSpec, resolve_schedule
from keras_grok.runs.figures import Panel
from keras_grok.utils.argument_validation import validate_int_arg
from keras_grok.utils.labelled_data import LabelledData
from keras_grok.utils.variable_values import variable_numpy

_UNKNOWN_LENGTH_STEPS = 2**31 - 1


def current_step(model: keras.Model) -> int:
    """The number of optimizer steps the model has taken (0 before any training)."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return 0
    return _as_int(optimizer.iterations)


def _as_int(variable) -> int:
    return int(variable_numpy(variable).item())


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
        self.schedule_spec = schedule
        self.batch_size = validate_int_arg(batch_size, "batch_size")
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
        """Sets earlier records (e.g. read back from a run folder) before ``fit``.

        ``records`` may be rows of a metrics file, which has every monitor's
        columns: a row is this monitor's record only where it measured (see
        ``_measured_in``), so a resumed run counts and schedules from the steps
        this monitor measured, as the uninterrupted run did.
        """
        self.records = [
            {"step": int(r["step"]), **{k: r[k] for k in self.metric_names if k in r}}
            for r in records
            if _measured_in(r, self.metric_names)
        ]

    @property
    def trained_model(self) -> keras.Model:
        """The model being trained, read without a JAX state sync."""
        return self._trained_model

    def on_train_begin(self, logs=None):
        # On JAX every read of `self.model` copies the training state into the
        # model's variables (Keras' Callback.model syncs): read it once here.
        self._trained_model = self.model
        self._clash_warned = False
        self._unknown_length = not (self.params or {}).get("steps")
        self._check_model(self._trained_model)
        _check_callback_order(self)
        start = current_step(self._trained_model)
        steps_per_epoch = self.params.get("steps") if self.params else None
        epochs = self.params.get("epochs", 1) if self.params else 1
        if steps_per_epoch:
            total = epochs * steps_per_epoch
            if start >= total:  # a further `fit` call on a trained model
                total += start
        else:
            if keras.backend.backend() == "jax":
                # Keras' JAX trainer loses the model's state when a callback reads
                # it at the start of the step that then finds no data (measured:
                # "Buffer has been deleted or donated" at the epoch's end).
                raise ValueError(
                    f"{type(self).__name__} on JAX needs the epoch length: pass "
                    "steps_per_epoch to fit (a generator's length is unknown). "
                    "Received: params steps=None"
                )
            total = _UNKNOWN_LENGTH_STEPS
        spec = "geometric" if self.schedule_spec is None else self.schedule_spec
        self.schedule = resolve_schedule(spec, max(total, 1), self.schedule_levels())
        dropped = [r["step"] for r in self.records if r["step"] > start]
        if dropped:
            warnings.warn(
                f"{type(self).__name__}: the model's optimizer is at step {start}, "
                f"before this monitor's last record (step {dropped[-1]}), so its "
                f"{len(dropped)} record(s) after step {start} are dropped (compiling "
                "again makes a new optimizer, which counts from step 0). Give each "
                "compile its own monitor to keep both fits' records.",
                stacklevel=2,
            )
        self.records = [r for r in self.records if r["step"] <= start]
        self._completed = start
        self._epoch_start = start
        self._steps_per_execution = int(
            getattr(self._trained_model, "steps_per_execution", 1) or 1
        )
        if self._steps_per_execution > 1:
            warnings.warn(
                f"{type(self).__name__}: the model runs steps_per_execution="
                f"{self._steps_per_execution} steps per call, so callbacks see it "
                f"only every {self._steps_per_execution} steps: scheduled steps in "
                "between are not measured. Compile with steps_per_execution=1 to "
                "measure every scheduled step.",
                stacklevel=2,
            )
        self._coordinator = MeasurementCoordinator.of(self._trained_model)
        self._coordinator.attach(self, self.params)
        # The next step follows from the last measured one, as it did when that
        # step was measured: a resumed run (its checkpoint a few steps after the
        # last row) then measures where the uninterrupted run did.
        last = self.records[-1]["step"] if self.records else start - 1
        self.advance(last, self._coordinator.history())

    def _check_model(self, model: keras.Model) -> None:
        """Refuses a model this monitor cannot measure, before the first step."""
        name = type(self).__name__
        if not getattr(model, "compiled", False):
            raise ValueError(
                f"{name} measures a compiled model (it reads the model's loss and "
                "optimizer steps): call model.compile(optimizer, loss) first. "
                f"Received: model={getattr(model, 'name', model)!r}, not compiled"
            )
        data_sets = getattr(self, "data", None)
        names = (
            {id(d): f"{s}_data" for s, d in data_sets.items()}
            if isinstance(data_sets, dict)
            else {}
        )
        _check_inputs(model, self.needs(), names)
        if not grok_losses.is_sparse_loss(getattr(model, "loss", None)):
            return
        for _, data in self.needs():
            if data.y.ndim == 2 and data.y.shape[1] > 1:
                where = names.get(id(data), "the monitored data")
                raise ValueError(
                    f"{name}: the model's loss {_loss_name(model.loss)} takes integer "
                    f"class indices, but {where} holds one-hot rows. Pass integer "
                    "labels (y.argmax(axis=-1)) or compile with a loss for one-hot "
                    "targets (e.g. keras.losses.CategoricalCrossentropy). "
                    f"Received: {where} targets of shape {data.y.shape}"
                )

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = self._completed

    def on_train_batch_begin(self, batch, logs=None):
        # `batch` optimizer steps of this epoch are done when batch `batch` begins.
        self._completed = self._epoch_start + batch
        if self._completed >= self._next_due:
            self._coordinator.measure_due(self._completed)
        self._completed = self._epoch_start + batch + self._steps_per_execution

    def on_epoch_end(self, epoch, logs=None):
        if self._unknown_length:
            # The epoch ended when the data ran out, after a batch-begin hook
            # that counted one more step than was trained: count again.
            self._completed = current_step(self._trained_model)
        last_epoch = (
            epoch + 1 >= self.params.get("epochs", 0)
            or self._trained_model.stop_training
        )
        self._coordinator.measure_due(self._completed, final=last_epoch)
        if logs is not None:
            latest = self.latest
            clashes = [name for name in self.metric_names if name in logs]
            if clashes and not self._clash_warned:
                self._clash_warned = True
                warnings.warn(
                    f"{type(self).__name__} logs {clashes}, which logs already "
                    "held (a compiled metric or another monitor of that name): "
                    "the monitor's values replace them in History, CSVLogger and "
                    "TensorBoard. Give the compiled metric another name.",
                    stacklevel=2,
                )
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


def _measured_in(row: dict[str, float], names: tuple[str, ...]) -> bool:
    """Whether a metrics row holds a measurement of the monitor with ``names``.

    A metrics file writes NaN where a monitor did not measure (another monitor
    with its own schedule did), so a row is the monitor's when one of its cells
    holds a value, or when every cell of the row is NaN (a diverged step, which
    the monitors due there recorded as NaN).
    """
    if any(not _is_nan(row[k]) for k in names if k in row):
        return True
    return all(_is_nan(v) for k, v in row.items() if k not in ("step", "elapsed"))


def _is_nan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)


_LOG_WRITERS = (keras.callbacks.CSVLogger, keras.callbacks.TensorBoard)


def _check_callback_order(monitor: ScheduledMonitor) -> None:
    """Refuses a CSVLogger or TensorBoard placed before ``monitor`` in ``fit``,
    a callback that watches one of its metrics (``ModelCheckpoint(monitor=
    "train_loss")``, ``EarlyStopping``), or a ``SwapEMAWeights`` that swaps the
    weights at each epoch's end.

    A monitor adds its metrics to the epoch-end ``logs`` when its own
    ``on_epoch_end`` runs, and Keras calls the callbacks in list order, so a
    ``CSVLogger`` earlier in the list fixes its columns without them (and
    ``TensorBoard`` writes without them): every monitor column would be lost
    silently. Callbacks do not see the list they are in, so the list is read
    from the calling ``CallbackList``'s frame; nothing is checked when the hook
    is called some other way.
    """
    frame = sys._getframe(1)
    while frame is not None:
        owner = frame.f_locals.get("self")
        if isinstance(owner, keras.callbacks.CallbackList):
            break
        frame = frame.f_back
    else:
        return
    callbacks = list(owner.callbacks)
    if not any(c is monitor for c in callbacks):
        return
    position = next(i for i, c in enumerate(callbacks) if c is monitor)
    names = [type(c).__name__ for c in callbacks]
    for writer in callbacks[:position]:
        if isinstance(writer, _LOG_WRITERS):
            raise ValueError(
                f"{type(writer).__name__} comes before {type(monitor).__name__} in "
                "fit's callbacks, so it would write every epoch without the "
                "monitor's metrics. Put the monitors before CSVLogger and "
                "TensorBoard: callbacks=[monitor, ..., csv_logger]. Received: "
                f"callbacks={names}"
            )
        if isinstance(writer, keras.callbacks.SwapEMAWeights) and writer.swap_on_epoch:
            raise ValueError(
                f"SwapEMAWeights(swap_on_epoch=True) comes before "
                f"{type(monitor).__name__} in fit's callbacks, so the monitor would "
                "measure the EMA weights at each epoch's end and the trained ones "
                "between (and on JAX the model's buffers are lost). Put the "
                "monitors first: callbacks=[monitor, ..., SwapEMAWeights(...)]. "
                f"Received: callbacks={names}"
            )
        watched = getattr(writer, "monitor", None)  # ModelCheckpoint, EarlyStopping
        if isinstance(watched, str) and watched in monitor.metric_names:
            raise ValueError(
                f"{type(writer).__name__} watches {watched!r}, which "
                f"{type(monitor).__name__} logs, but comes before it in fit's "
                "callbacks, so it would never see the value. Put the monitors "
                f"first: callbacks=[monitor, ..., {type(writer).__name__}]. "
                f"Received: callbacks={names}"
            )


def _loss_name(loss) -> str:
    return getattr(loss, "name", None) or getattr(loss, "__name__", None) or repr(loss)


def _check_inputs(model: keras.Model, needs, names: dict) -> None:
    """Refuses monitored inputs of another shape than a functional model's input,
    or a model of several inputs or outputs, which the shared pass cannot read."""
    inputs, outputs = getattr(model, "inputs", None), getattr(model, "outputs", None)
    if not needs or not inputs or not outputs:
        return  # no pass, or a subclassed model: its shapes show once it runs
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(
            "The monitors measure a model of one input and one output. Received: "
            f"model={model.name!r} with {len(inputs)} inputs and {len(outputs)} "
            "outputs"
        )
    structure = getattr(model, "output", None)
    if isinstance(structure, (dict, list, tuple)):
        kind = (
            f"dict with keys {sorted(structure)}"
            if isinstance(structure, dict)
            else f"{type(structure).__name__} of one tensor"
        )
        raise ValueError(
            "The monitors measure a model whose output is one tensor. Received: "
            f"model={model.name!r} with its output in a {kind}; build it with "
            "keras.Model(inputs, outputs_tensor)"
        )
    expected = tuple(inputs[0].shape[1:])
    for _, data in needs:
        got = tuple(data.x.shape[1:])
        # Another rank Keras may adapt (a trailing axis of 1); equal ranks must agree.
        agree = len(got) != len(expected) or all(
            e is None or e == g for e, g in zip(expected, got, strict=True)
        )
        if not agree:
            where = names.get(id(data), "the monitored data")
            raise ValueError(
                f"{where} inputs must match the model's input shape (None, "
                f"{', '.join(map(str, expected))}). Received: {where} inputs of "
                f"shape {data.x.shape}"
            )
