"""CollapseMonitor: neural-collapse metrics of the features at scheduled steps."""

from __future__ import annotations

import math
import warnings

import numpy as np

from keras_grok.callbacks.forward_reader import find_layer
from keras_grok.callbacks.measurement_requests import (
    DEVICE_COLLAPSE_METRICS,
    CollapseStatisticsOf,
    PassResults,
)
from keras_grok.callbacks.schedule import ScheduleSpec
from keras_grok.callbacks.scheduled_monitor import ScheduledMonitor
from keras_grok.measures import collapse
from keras_grok.runs.figures import Panel
from keras_grok.utils.argument_validation import validate_string_arg
from keras_grok.utils.labelled_data import (
    LabelledData,
    validate_labelled_pair,
    validate_num_classes,
)

COLLAPSE_METRICS = (*DEVICE_COLLAPSE_METRICS, "nc2")
_CLASSIFIER_HINT = (
    "classifier names the read-out Dense layer whose kernel nc3 compares with the "
    "class means (or None for no nc3)."
)


class CollapseMonitor(ScheduledMonitor):
    """Measures neural collapse of a layer's features at scheduled steps.

    At each scheduled optimizer step, the features of ``layer`` are computed in
    inference mode for every sample of ``train_data`` (and ``test_data``),
    reduced on the device to per-class statistics
    (``keras_grok.measures.collapse``) and turned into these metrics, logged as
    ``train_{name}`` and ``test_{name}``:

    - ``nc1``: ``W / B``, within- over between-class variance (Sakamoto & Sato,
      arXiv 2509.20829, "paper A");
    - ``rnc1``: ``W / s^2``, the within-class variance of the rescaled features
      (``s`` the mean feature norm, or the largest with ``norm="max"``): paper
      A's link between collapse and grokking;
    - ``nc2``: ``sigma_max / sigma_min`` of the uncentred class means (NaN, with
      one warning, when the features have fewer dimensions than classes);
    - ``within_class_variance``, ``between_class_variance``, ``mean_feature_norm``;
    - ``nc3`` (self-duality with the read-out kernel) when ``classifier`` names
      the read-out Dense layer.

    The features come from the shared measurement pass: with a
    ``GrokkingMonitor`` on the same arrays, one forward pass per measured step
    serves both. Undefined ratios (one class, all-zero features) are NaN.

    Args:
        train_data: ``(x, y)`` arrays, usually the training set; ``y`` holds
            integer labels or one-hot rows. ``x`` is one array (a single-input
            model).
        test_data: ``(x, y)`` arrays measured as well, or None. Defaults to `None`.
        layer: name of the features layer: any top-level layer of a functional
            model, or a ``keras_grok.layers.FeatureTap`` in a subclassed one.
            Defaults to `"features"`.
        schedule: when to measure (see ``ScheduledMonitor``).
            Defaults to `"geometric"`.
        num_classes: number of classes K; None takes the largest label + 1.
            Every class must have samples in each data set. Defaults to `None`.
        norm: RNC1's scale: ``"mean"`` (paper A's figures and code) or ``"max"``
            (its text). Defaults to `"mean"`.
        classifier: name of the read-out Dense layer for ``nc3``, or None.
            Defaults to `None`.
        batch_size: rows per compiled call. Defaults to `16384`.

    Example:
    ```python
    monitor = CollapseMonitor((x_train, y_train), (x_test, y_test),
                              layer="features")
    history = model.fit(x_train, y_train, epochs=100, callbacks=[monitor])
    history.history["test_rnc1"]  # latest measurement at each epoch end
    monitor.records  # every measured step
    ```
    """

    def __init__(
        self,
        train_data: tuple,
        test_data: tuple | None = None,
        layer: str = "features",
        schedule: ScheduleSpec = "geometric",
        num_classes: int | None = None,
        norm: str = "mean",
        classifier: str | None = None,
        batch_size: int = 16384,
    ):
        super().__init__(schedule, batch_size)
        if norm not in ("mean", "max"):
            raise ValueError(f'norm must be "mean" or "max". Received: norm={norm!r}')
        validate_string_arg(layer, "layer")
        if classifier is not None:
            validate_string_arg(classifier, "classifier")
        sets = {"train": (train_data, "train_data"), "test": (test_data, "test_data")}
        self.data: dict[str, LabelledData] = {
            split: validate_labelled_pair(pair, name)
            for split, (pair, name) in sets.items()
            if pair is not None
        }
        self.num_classes = validate_num_classes(num_classes, self.data)
        if self.num_classes < 2:
            raise ValueError(
                "CollapseMonitor needs two or more classes: neural collapse of one "
                f"class is undefined. Received: num_classes={self.num_classes}"
            )
        for split, data in self.data.items():
            _check_every_class(data, self.num_classes, f"{split}_data")
        self.layer = layer
        self.norm = norm
        self.classifier = classifier
        metrics = COLLAPSE_METRICS + (("nc3",) if classifier else ())
        self.metric_names = tuple(f"{s}_{m}" for s in self.data for m in metrics)
        self.progress_keys = (f"{list(self.data)[-1]}_rnc1",)
        self._request = CollapseStatisticsOf(layer, self.num_classes, norm)
        self._nc2_warned = False
        self._overflow_warned = False
        self._underflow_warned = False

    def needs(self):
        return [(self._request, data) for data in self.data.values()]

    def panels(self) -> tuple[Panel, ...]:
        return (
            Panel("RNC1", tuple(f"{s}_rnc1" for s in self.data), log_y=True),
            Panel("NC2", tuple(f"{s}_nc2" for s in self.data), log_y=True),
        )

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        find_layer(self.trained_model, self.layer)  # a clear error up front
        if self.classifier is not None:
            layer = find_layer(self.trained_model, self.classifier, _CLASSIFIER_HINT)
            kernel = getattr(layer, "kernel", None)
            if (
                kernel is None
                or len(kernel.shape) != 2
                or (kernel.shape[-1] != self.num_classes)
            ):
                shape = None if kernel is None else tuple(kernel.shape)
                raise ValueError(
                    "classifier must name the read-out Dense layer, whose kernel "
                    f"is (features, {self.num_classes} classes). Received: "
                    f"classifier={self.classifier!r} with kernel of shape {shape}"
                )

    def measure(self, step: int, results: PassResults) -> dict[str, float]:
        values = {}
        for split, data in self.data.items():
            result = results.get(self._request, data)
            values.update({f"{split}_{n}": v for n, v in result.metrics.items()})
            values[f"{split}_nc2"] = collapse.nc2_of_means(result.stats.means)
            if self.classifier is not None:
                kernel = find_layer(
                    self.trained_model, self.classifier, _CLASSIFIER_HINT
                ).kernel
                values[f"{split}_nc3"] = _or_nan(collapse.nc3, result.stats, kernel)
            if result.stats.means.shape[1] < self.num_classes and not self._nc2_warned:
                warnings.warn(
                    f"CollapseMonitor logs nc2 as NaN: layer {self.layer!r} has "
                    f"fewer dimensions than the {self.num_classes} classes.",
                    stacklevel=2,
                )
                self._nc2_warned = True
            rnc1 = values.get(f"{split}_rnc1", math.nan)
            norm = values.get(f"{split}_mean_feature_norm", math.nan)
            if not self._overflow_warned and (
                math.isinf(norm) or (math.isnan(rnc1) and norm > 1e18)
            ):
                warnings.warn(
                    f"CollapseMonitor logs {split}_rnc1 and its statistics as NaN or "
                    f"inf at step {step}: layer {self.layer!r}'s features are too "
                    "large for float32 (their squares overflow above about 1e19), "
                    "or hold inf. Measure a layer of smaller scale (NC1 and RNC1 are "
                    "scale-free).",
                    stacklevel=2,
                )
                self._overflow_warned = True
            between = values.get(f"{split}_between_class_variance", math.nan)
            small = {  # logged as NaN by collapse_figures, as nc1 and rnc1 refuse
                key: value
                for key, value in (("nc1", between), ("rnc1", norm**2))
                if 0.0 < value < collapse.SMALLEST_SQUARES  # exact zeros: degenerate
                and math.isnan(values[f"{split}_{key}"])
            }
            if small and not self._underflow_warned:
                names = " and ".join(f"{split}_{key}" for key in small)
                warnings.warn(
                    f"CollapseMonitor logs {names} as NaN at step {step}: "
                    + _too_small_words(small),
                    stacklevel=2,
                )
                self._underflow_warned = True
        return values


def _too_small_words(small: dict[str, float]) -> str:
    what = {"nc1": "the between-class variance", "rnc1": "the squared feature norm"}
    found = ", ".join(f"{what[key]} is {value:.3g}" for key, value in small.items())
    return (
        f"{found}, below {collapse.SMALLEST_SQUARES:g}: the class means coincide, "
        "or the layer's features are below about 1e-15 in size, where float32 "
        "squares underflow (NC1 and RNC1 are scale-free: measure a layer of "
        "larger scale)."
    )


def _or_nan(measure, *args) -> float:
    # Degenerate features (all zero, or all class means equal, as with dead ReLUs
    # at initialization) leave a ratio undefined: logged as NaN, not an error.
    # Non-finite features (a diverged model) make the SVD fail: NaN too.
    try:
        return measure(*args)
    except (ValueError, np.linalg.LinAlgError):
        return math.nan


def _check_every_class(data: LabelledData, num_classes: int, name: str) -> None:
    empty = np.flatnonzero(np.bincount(data.labels, minlength=num_classes) == 0)
    if empty.size:
        raise ValueError(
            f"Every class needs samples in {name}: {empty.size} of {num_classes} "
            f"classes have none, e.g. {empty[:10].tolist()}. Pass num_classes or "
            "measure a set that holds every class."
        )
