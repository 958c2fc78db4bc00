"""What monitors ask of a measured step, and what the shared pass answers.

Monitors declare what they need from a data set as requests (``needs()``):

- ``LossAndAccuracy()``: the mean loss and the accuracy of the model's outputs;
- ``CollapseStatisticsOf(layer, num_classes, norm)``: neural-collapse statistics
  of a layer's features and the collapse metrics that follow from them;
- ``FeaturesOf(layer)``: the features themselves, in order (for host-side
  estimators);
- ``Outputs()``: the model's outputs themselves, in order (e.g. the logit table
  of the Fourier progress measures).

The answers of one pass come back as ``PassResults``, looked up by request and
data set.
"""

from __future__ import annotations

from dataclasses import dataclass

from keras_grok.checks import LabelledData
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
        stats: a ``CollapseStatistics`` of float32 tensors.
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
