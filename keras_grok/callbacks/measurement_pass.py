"""The shared measurement pass: one read of each data set per measured step.

Monitors declare what they need from a data set as requests (``needs()``):

- ``LossAndAccuracy()``: the mean loss and the accuracy of the model's outputs;
- ``CollapseStatisticsOf(layer, num_classes, norm)``: neural-collapse statistics
  of a layer's features and the collapse metrics that follow from them;
- ``FeaturesOf(layer)``: the features themselves, in order (for host-side
  estimators);
- ``Outputs()``: the model's outputs themselves, in order (e.g. the logit table
  of the Fourier progress measures).

At a measured step the ``MeasurementCoordinator`` of the model gathers the
requests of every monitor due at that step, concatenates the data sets they name
(each read once, whichever monitors asked), and runs one compiled call per chunk
of rows: one forward pass in inference mode that reduces the outputs and
features on the device to what was asked for (sums per data set and per class),
so only small arrays come back to the host. The call is built once per
combination of requests and compiled by Keras like any model's
``predict_on_batch`` (``jax.jit`` on JAX, ``tf.function`` on TensorFlow, eager
on torch).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np
from keras import ops

from keras_grok.callbacks.features import ForwardReader
from keras_grok.checks import LabelledData
from keras_grok.losses import per_example_loss
from keras_grok.measures import collapse

DEVICE_COLLAPSE_METRICS = (
    "nc1",
    "rnc1",
    "within_class_variance",
    "between_class_variance",
    "mean_feature_norm",
)


@dataclass(frozen=True)
class LossAndAccuracy:
    """Request: mean loss and accuracy of the model's outputs on a data set.

    Result: ``{"loss": float, "accuracy": float}``; the loss is the mean of the
    compiled loss's per-example values (``keras_grok.losses.per_example_loss``),
    NaN when the model has no loss keras-grok can evaluate.
    """


@dataclass(frozen=True)
class CollapseStatisticsOf:
    """Request: collapse statistics of ``layer``'s features on a data set.

    Result: a ``CollapseResult``.
    """

    layer: str
    num_classes: int
    norm: str = "mean"


@dataclass(frozen=True)
class FeaturesOf:
    """Request: the ``(N, d)`` flattened features of ``layer``, in data order.

    Result: a float32 NumPy array.
    """

    layer: str


@dataclass(frozen=True)
class Outputs:
    """Request: the ``(N, ...)`` outputs of the model, in data order.

    Result: a float32 NumPy array.
    """


Request = LossAndAccuracy | CollapseStatisticsOf | FeaturesOf | Outputs


@dataclass(frozen=True)
class CollapseResult:
    """The collapse statistics of one data set and its device-side metrics.

    Attributes:
        stats: a ``CollapseStatistics`` of NumPy arrays.
        metrics: ``DEVICE_COLLAPSE_METRICS`` as Python floats (NC2 is taken on
            the host from ``stats.means``).
    """

    stats: collapse.CollapseStatistics
    metrics: dict[str, float]


class PassResults:
    """What one pass measured, looked up by request and data set."""

    def __init__(self, values: dict[tuple[Request, tuple], object]):
        self._values = values

    def get(self, request: Request, data: LabelledData):
        """The result of ``request`` on ``data``."""
        return self._values[(request, data.key)]


class MeasurementPass(keras.Model):
    """One compiled forward pass over a chunk of rows of several data sets.

    ``predict_on_batch({"x", "y", "labels", "sets"})`` returns a flat tuple: per
    request, the reductions of the rows (``sets`` says which data set a row is
    from). Built once per combination of requests and data sets; shares the
    monitored model's variables.

    Args:
        model: the monitored model.
        requests: ``(request, set indices)`` pairs, the set indices in
            ``[0, num_sets)``.
        num_sets: how many data sets the rows come from.
        single_chunk: whether all rows come in one call, so the collapse
            metrics can be taken inside it.
    """

    def __init__(
        self,
        model: keras.Model,
        requests: Sequence[tuple[Request, tuple[int, ...]]],
        num_sets: int,
        single_chunk: bool,
    ):
        super().__init__(name=f"measurement_pass_{model.name}")
        layers = tuple(
            dict.fromkeys(
                r.layer
                for r, _ in requests
                if not isinstance(r, (LossAndAccuracy, Outputs))
            )
        )
        self.reader = ForwardReader(model, layers)
        self.requests = list(requests)
        self.num_sets = num_sets
        self.single_chunk = single_chunk
        self.loss_fn = per_example_loss(getattr(model, "loss", None))
        self.built = True

    def call(self, inputs):
        outputs, features = self.reader(inputs["x"])
        sets = ops.cast(inputs["sets"], "int32")
        results = []
        for request, members in self.requests:
            if isinstance(request, LossAndAccuracy):
                results.extend(self._loss_and_accuracy(outputs, inputs, sets))
            elif isinstance(request, CollapseStatisticsOf):
                results.extend(
                    self._collapse(
                        features[request.layer], inputs, sets, request, members
                    )
                )
            elif isinstance(request, Outputs):
                results.append(ops.cast(outputs, "float32"))
            else:
                flat = features[request.layer]
                results.append(ops.reshape(flat, (ops.shape(flat)[0], -1)))
        return tuple(results)

    def _loss_and_accuracy(self, outputs, inputs, sets):
        labels = ops.cast(inputs["labels"], "int32")
        correct = ops.cast(
            ops.equal(ops.cast(ops.argmax(outputs, axis=-1), "int32"), labels),
            "float32",
        )
        if self.loss_fn is None:
            losses = ops.full_like(correct, math.nan)
        else:
            losses = ops.cast(self.loss_fn(inputs["y"], outputs), "float32")
        return (
            ops.segment_sum(losses, sets, num_segments=self.num_sets),
            ops.segment_sum(correct, sets, num_segments=self.num_sets),
        )

    def _collapse(self, features, inputs, sets, request, members):
        k = request.num_classes
        position = np.full((self.num_sets,), -1, dtype="int32")
        position[list(members)] = np.arange(len(members), dtype="int32")
        slot = ops.take(ops.convert_to_tensor(position), sets)
        trash = len(members) * k  # rows of other data sets land here, then go
        classes = ops.where(
            slot >= 0, slot * k + ops.cast(inputs["labels"], "int32"), trash
        )
        stats = collapse.batch_collapse_statistics(features, classes, trash + 1)
        arrays = (
            stats.counts,
            stats.means,
            stats.deviations,
            stats.norm_sums,
            stats.max_norms,
        )
        if not self.single_chunk:
            return arrays
        rows = []
        for i in range(len(members)):
            part = stats.select(i * k, (i + 1) * k)
            figures = collapse.collapse_figures(part, request.norm, include_nc2=False)
            rows.append(ops.stack([figures[n] for n in DEVICE_COLLAPSE_METRICS]))
        return (*arrays, ops.stack(rows))


def _compatible(data: LabelledData) -> tuple:
    return (data.x.shape[1:], data.x.dtype.str, data.y.shape[1:], data.y.dtype.str)


class MeasurementCoordinator:
    """Runs one shared pass per measured step for all monitors of one model.

    Every ``ScheduledMonitor`` attaches itself to its model's coordinator in
    ``on_train_begin`` (``MeasurementCoordinator.of(model)``). When the first of
    them reaches a due step, ``measure_due`` runs the pass for every monitor due
    at that step and lets each record; the others then find themselves measured.

    Args:
        model: the model being trained.
    """

    _ATTRIBUTE = "_keras_grok_coordinator"

    def __init__(self, model: keras.Model):
        self.model = model
        self.monitors: list = []
        self.passes_run = 0
        self._passes: dict[tuple, MeasurementPass] = {}
        self._rows_cache: dict[tuple, tuple[np.ndarray, ...]] = {}
        self._fit = None

    @classmethod
    def of(cls, model: keras.Model) -> MeasurementCoordinator:
        """The coordinator of ``model`` (made on first use, kept on the model)."""
        coordinator = model.__dict__.get(cls._ATTRIBUTE)
        if coordinator is None:
            coordinator = cls(model)
            # Not a Keras attribute: bypass layer tracking (and torch's Module).
            object.__setattr__(model, cls._ATTRIBUTE, coordinator)
        return coordinator

    def attach(self, monitor, fit) -> None:
        """Adds ``monitor`` for the ``fit`` identified by ``fit`` (its params)."""
        if fit is not self._fit:  # a new fit: forget monitors of an earlier one
            self.monitors, self._fit = [], fit
            self._rows_cache = {}
        if monitor not in self.monitors:
            self.monitors.append(monitor)

    def detach(self, monitor) -> None:
        if monitor in self.monitors:
            self.monitors.remove(monitor)

    def measure_due(self, step: int, final: bool = False) -> None:
        """Measures every attached monitor due at ``step`` with one shared pass."""
        due = [m for m in self.monitors if m.is_due(step, final)]
        if not due:
            return
        sync = getattr(self.model, "jax_state_sync", None)
        if sync is not None:  # JAX keeps the live state outside the variables
            sync()
        results = self.run_pass(
            [(r, d) for m in due for r, d in m.needs()],
            min(m.batch_size for m in due),
        )
        for monitor in due:
            monitor.record(step, results)
        history = self.history()
        for monitor in due:
            monitor.advance(step, history)

    def history(self) -> list[dict]:
        """Every attached monitor's records, merged per step, in step order."""
        merged: dict[int, dict] = {}
        for monitor in self.monitors:
            for record in monitor.records:
                merged.setdefault(record["step"], {}).update(record)
        return [merged[s] for s in sorted(merged)]

    def run_pass(
        self, needs: Sequence[tuple[Request, LabelledData]], chunk_size: int
    ) -> PassResults:
        """Reads each data set in ``needs`` once and answers every request."""
        groups: dict[tuple, dict[tuple, LabelledData]] = {}
        for _, data in needs:
            groups.setdefault(_compatible(data), {})[data.key] = data
        values: dict[tuple[Request, tuple], object] = {}
        for group in groups.values():
            sets = list(group.values())
            asked = [(r, d) for r, d in needs if d.key in group]
            values.update(self._run_group(sets, asked, chunk_size))
        self.passes_run += 1
        return PassResults(values)

    def _run_group(self, sets, needs, chunk_size):
        index = {data.key: i for i, data in enumerate(sets)}
        members: dict[Request, list[int]] = {}
        for request, data in needs:
            members.setdefault(request, [])
            if index[data.key] not in members[request]:
                members[request].append(index[data.key])
        requests = [(r, tuple(sorted(m))) for r, m in members.items()]
        rows = sum(len(d) for d in sets)
        chunk = max(1, min(int(chunk_size), rows))
        key = (tuple(requests), tuple(d.key for d in sets), chunk >= rows)
        measurement = self._passes.get(key)
        if measurement is None:
            measurement = MeasurementPass(
                self.model, requests, len(sets), chunk >= rows
            )
            self._passes[key] = measurement
        x, y, labels, set_ids = self._rows(sets)
        chunks = []
        for start in range(0, rows, chunk):
            stop = start + chunk
            chunks.append(
                measurement.predict_on_batch(
                    {
                        "x": x[start:stop],
                        "y": y[start:stop],
                        "labels": labels[start:stop],
                        "sets": set_ids[start:stop],
                    }
                )
            )
        return _answers(requests, sets, chunks, set_ids, chunk >= rows)

    def _rows(self, sets: list[LabelledData]) -> tuple[np.ndarray, ...]:
        # The concatenated rows of a group of data sets, made once per group.
        key = tuple(d.key for d in sets)
        if key not in self._rows_cache:
            self._rows_cache[key] = (
                np.concatenate([d.x for d in sets]),
                np.concatenate([d.y for d in sets]),
                np.concatenate([d.labels for d in sets]),
                np.concatenate(
                    [np.full(len(d), i, dtype="int32") for i, d in enumerate(sets)]
                ),
            )
        return self._rows_cache[key]


def _answers(requests, sets, chunks, set_ids, single_chunk):
    values = {}
    position = 0
    for request, members in requests:
        if isinstance(request, LossAndAccuracy):
            loss = sum(np.asarray(c[position], np.float64) for c in chunks)
            correct = sum(np.asarray(c[position + 1], np.float64) for c in chunks)
            for i in members:
                n = len(sets[i])
                values[(request, sets[i].key)] = {
                    "loss": float(loss[i] / n),
                    "accuracy": float(correct[i] / n),
                }
            position += 2
        elif isinstance(request, CollapseStatisticsOf):
            width = 6 if single_chunk else 5
            values.update(_collapse_answers(request, members, sets, chunks, position))
            position += width
        elif isinstance(request, Outputs):
            outputs = np.concatenate([np.asarray(c[position]) for c in chunks])
            for i in members:
                values[(request, sets[i].key)] = outputs[set_ids == i]
            position += 1
        else:
            features = np.concatenate([np.asarray(c[position]) for c in chunks])
            for i in members:
                values[(request, sets[i].key)] = features[set_ids == i]
            position += 1
    return values


def _collapse_answers(request, members, sets, chunks, position):
    k = request.num_classes
    stats = None
    for chunk in chunks:
        part = collapse.CollapseStatistics(
            *(ops.convert_to_tensor(a) for a in chunk[position : position + 5])
        )
        stats = (
            part if stats is None else collapse.merge_collapse_statistics(stats, part)
        )
    arrays = [
        np.asarray(ops.convert_to_numpy(a), np.float32)
        for a in (
            stats.counts,
            stats.means,
            stats.deviations,
            stats.norm_sums,
            stats.max_norms,
        )
    ]
    stats = collapse.CollapseStatistics(*arrays)
    if len(chunks) == 1:
        rows = np.asarray(chunks[0][position + 5], np.float64)
    values = {}
    for slot, i in enumerate(members):
        part = stats.select(slot * k, (slot + 1) * k)
        if len(chunks) == 1:
            metrics = dict(zip(DEVICE_COLLAPSE_METRICS, map(float, rows[slot])))
        else:
            figures = collapse.collapse_figures(part, request.norm, include_nc2=False)
            metrics = {
                n: float(ops.convert_to_numpy(figures[n]))
                for n in DEVICE_COLLAPSE_METRICS
            }
        values[(request, sets[i].key)] = CollapseResult(part, metrics)
    return values
