"""What monitors ask of a measured step, and what the shared pass answers.

Monitors declare what they need from a data set as requests (``needs()``):

- ``LossAndAccuracy()``: the mean loss and the accuracy of the model's outputs;
- ``CollapseStatisticsOf(layer, num_classes, norm)``: neural-collapse statistics
  of a layer's features and the collapse metrics that follow from them;
- ``FeaturesOf(layer)``: the features themselves, in order (for host-side
  estimators);
- ``Outputs()``: the model's outputs themselves, in order (e.g. the logit table
  of the Fourier progress measures).

Each request describes itself to the pass: which layer it reads (``layer``), how
many arrays its on-device reduction returns (``width``), the reduction itself
(``reduce``, traced inside the compiled pass) and how the host turns the chunks'
arrays into one result per data set (``decode``). The pass and its decoding are
loops over requests, so a new kind of request is one class here.

The answers of one pass come back as ``PassResults``, looked up by request and
data set.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from keras import ops

from keras_grok.measures import collapse
from keras_grok.utils.argument_validation import (
    validate_choice_arg,
    validate_int_arg,
    validate_string_arg,
)
from keras_grok.utils.labelled_data import LabelledData

DEVICE_COLLAPSE_METRICS = (
    "nc1",
    "rnc1",
    "within_class_variance",
    "between_class_variance",
    "mean_feature_norm",
)


@dataclass
class PassInputs:
    """What a request's reduction sees of one chunk, inside the compiled pass.

    Attributes:
        outputs: the model's outputs for the chunk's rows.
        features: ``{layer: features}`` of the layers the requests read.
        y: the rows' targets, as the model's loss takes them.
        labels: the rows' integer class labels.
        sets: the data set index of each row (int32).
        num_sets: how many data sets the rows come from.
        loss_fn: per-example loss ``loss_fn(y, outputs)``, or None.
        single_chunk: whether the chunk holds every row of every set.
    """

    outputs: object
    features: dict
    y: object
    labels: object
    sets: object
    num_sets: int
    loss_fn: Callable | None
    single_chunk: bool


@dataclass
class PassRows:
    """What a request's decoding sees on the host, after every chunk ran.

    Attributes:
        sets: the data sets, in the order of their indices.
        set_ids: the data set index of each row, over all chunks.
        single_chunk: whether all rows came in one chunk.
    """

    sets: Sequence[LabelledData]
    set_ids: np.ndarray
    single_chunk: bool


class MeasurementRequest:
    """The contract every request keeps with the shared pass.

    Subclasses are frozen dataclasses (they are dict keys) and define:

    - ``layer``: the layer whose features the reduction reads, or None;
    - ``width(single_chunk)``: how many arrays ``reduce`` returns;
    - ``reduce(inputs, members)``: the on-device reduction of one chunk, for the
      data sets ``members`` (their indices), as a tuple of ``width`` tensors;
    - ``decode(chunks, rows, members)``: ``{set index: result}`` from the
      ``reduce`` tuples of every chunk (host arrays).
    """

    def width(self, single_chunk: bool) -> int:
        raise NotImplementedError

    def reduce(self, inputs: PassInputs, members: tuple[int, ...]) -> tuple:
        raise NotImplementedError

    def decode(
        self, chunks: list[tuple], rows: PassRows, members: tuple[int, ...]
    ) -> dict[int, object]:
        raise NotImplementedError


@dataclass(frozen=True)
class LossAndAccuracy(MeasurementRequest):
    """Request: mean loss and accuracy of the model's outputs on a data set.

    Result: ``{"loss": float, "accuracy": float}``; the loss is the mean of the
    compiled loss's per-example values (``keras_grok.losses.per_example_loss``),
    NaN when the model has no loss keras-grok can evaluate.
    """

    layer = None  # reads the outputs only

    def width(self, single_chunk: bool) -> int:
        return 2

    def reduce(self, inputs: PassInputs, members: tuple[int, ...]) -> tuple:
        labels = ops.cast(inputs.labels, "int32")
        predicted = ops.cast(ops.argmax(inputs.outputs, axis=-1), "int32")
        correct = ops.cast(ops.equal(predicted, labels), "float32")
        losses = None
        if inputs.loss_fn is not None:
            losses = ops.cast(inputs.loss_fn(inputs.y, inputs.outputs), "float32")
            if len(losses.shape) == 0:  # reduces the batch: GrokkingMonitor warns
                losses = None
        if losses is None:
            losses = ops.full_like(correct, np.nan)
        return (
            ops.segment_sum(losses, inputs.sets, num_segments=inputs.num_sets),
            ops.segment_sum(correct, inputs.sets, num_segments=inputs.num_sets),
        )

    def decode(self, chunks, rows, members):
        loss = sum(np.asarray(c[0], np.float64) for c in chunks)
        correct = sum(np.asarray(c[1], np.float64) for c in chunks)
        return {
            i: {
                "loss": float(loss[i] / len(rows.sets[i])),
                "accuracy": float(correct[i] / len(rows.sets[i])),
            }
            for i in members
        }


@dataclass(frozen=True)
class CollapseResult:
    """The collapse statistics of one data set and its device-side metrics.

    Attributes:
        stats: a ``CollapseStatistics`` of float32 tensors.
        metrics: ``DEVICE_COLLAPSE_METRICS`` as Python floats (NC2 is taken on
            the host from ``stats.means``).
    """

    stats: collapse.CollapseStatistics
    metrics: dict[str, float]


_STATISTICS = 5  # counts, means, deviations, norm sums, max norms


@dataclass(frozen=True)
class CollapseStatisticsOf(MeasurementRequest):
    """Request: collapse statistics of ``layer``'s features on a data set.

    The reduction sums per class and per data set on the device (one slot of
    ``num_classes`` rows per member set, and one slot that takes the rows of the
    other sets); when one chunk holds every row, the collapse metrics are taken
    inside the pass too.

    Result: a ``CollapseResult``.
    """

    layer: str
    num_classes: int
    norm: str = "mean"

    def __post_init__(self):
        validate_string_arg(self.layer, "layer")
        validate_int_arg(self.num_classes, "num_classes")
        validate_choice_arg(self.norm, "norm", ("mean", "max"))

    def width(self, single_chunk: bool) -> int:
        return _STATISTICS + 1 if single_chunk else _STATISTICS

    def reduce(self, inputs: PassInputs, members: tuple[int, ...]) -> tuple:
        k = self.num_classes
        position = np.full((inputs.num_sets,), -1, dtype="int32")
        position[list(members)] = np.arange(len(members), dtype="int32")
        slot = ops.take(ops.convert_to_tensor(position), inputs.sets)
        trash = len(members) * k  # rows of other data sets land here, then go
        classes = ops.where(
            slot >= 0, slot * k + ops.cast(inputs.labels, "int32"), trash
        )
        stats = collapse.batch_collapse_statistics(
            inputs.features[self.layer], classes, trash + 1
        )
        arrays = (
            stats.counts,
            stats.means,
            stats.deviations,
            stats.norm_sums,
            stats.max_norms,
        )
        if not inputs.single_chunk:
            return arrays
        metrics = []
        for i in range(len(members)):
            part = stats.select(i * k, (i + 1) * k)
            figures = collapse.collapse_figures(part, self.norm, include_nc2=False)
            metrics.append(ops.stack([figures[n] for n in DEVICE_COLLAPSE_METRICS]))
        return (*arrays, ops.stack(metrics))

    def decode(self, chunks, rows, members):
        k = self.num_classes
        # Host arrays become float32 tensors in CollapseStatistics itself.
        stats = None
        for chunk in chunks:
            part = collapse.CollapseStatistics(*chunk[:_STATISTICS])
            stats = (
                part
                if stats is None
                else collapse.merge_collapse_statistics(stats, part)
            )
        values = {}
        for slot, i in enumerate(members):
            part = stats.select(slot * k, (slot + 1) * k)
            if rows.single_chunk:
                device = np.asarray(chunks[0][_STATISTICS], np.float64)[slot]
                metrics = dict(zip(DEVICE_COLLAPSE_METRICS, map(float, device)))
            else:
                figures = collapse.collapse_figures(part, self.norm, include_nc2=False)
                metrics = {
                    n: float(ops.convert_to_numpy(figures[n]))
                    for n in DEVICE_COLLAPSE_METRICS
                }
            values[i] = CollapseResult(part, metrics)
        return values


class _RowsInOrder(MeasurementRequest):
    # Requests whose answer is one array row per example, in data order.

    def width(self, single_chunk: bool) -> int:
        return 1

    def decode(self, chunks, rows, members):
        every = np.concatenate([np.asarray(c[0]) for c in chunks])
        return {i: every[rows.set_ids == i] for i in members}


@dataclass(frozen=True)
class FeaturesOf(_RowsInOrder):
    """Request: the ``(N, d)`` flattened features of ``layer``, in data order.

    Result: a float32 NumPy array.
    """

    layer: str

    def __post_init__(self):
        validate_string_arg(self.layer, "layer")

    def reduce(self, inputs: PassInputs, members: tuple[int, ...]) -> tuple:
        flat = inputs.features[self.layer]
        return (ops.reshape(flat, (ops.shape(flat)[0], -1)),)


@dataclass(frozen=True)
class Outputs(_RowsInOrder):
    """Request: the ``(N, ...)`` outputs of the model, in data order.

    Result: a float32 NumPy array.
    """

    layer = None  # reads the outputs only

    def reduce(self, inputs: PassInputs, members: tuple[int, ...]) -> tuple:
        return (ops.cast(inputs.outputs, "float32"),)


Request = MeasurementRequest


class PassResults:
    """What one pass measured, looked up by request and data set."""

    def __init__(self, values: dict[tuple[Request, tuple], object]):
        self._values = values

    def get(self, request: Request, data: LabelledData):
        """The result of ``request`` on ``data``."""
        return self._values[(request, data.key)]
