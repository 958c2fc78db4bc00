"""The shared measurement pass: one compiled read of a chunk of rows.

At a measured step the ``MeasurementCoordinator`` concatenates the data sets the
due monitors name and runs one ``MeasurementPass`` call per chunk of rows: one
forward pass in inference mode that reduces the outputs and features on the
device to what was asked for (sums per data set and per class), so only small
arrays come back to the host. The call is built once per combination of requests
and compiled by Keras like any model's ``predict_on_batch`` (``jax.jit`` on JAX,
``tf.function`` on TensorFlow, eager on torch).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from keras_grok.callbacks.features import ForwardReader
from keras_grok.callbacks.measurement_requests import (
    DEVICE_COLLAPSE_METRICS,
    CollapseResult,
    CollapseStatisticsOf,
    LossAndAccuracy,
    Outputs,
    Request,
)
from keras_grok.losses import per_example_loss
from keras_grok.measures import collapse


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


def pass_answers(requests, sets, chunks, set_ids, single_chunk) -> dict:
    """The results of one pass's chunks, keyed by ``(request, data set key)``."""
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
    # Host arrays become float32 tensors in CollapseStatistics itself.
    stats = None
    for chunk in chunks:
        part = collapse.CollapseStatistics(*chunk[position : position + 5])
        stats = (
            part if stats is None else collapse.merge_collapse_statistics(stats, part)
        )
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
