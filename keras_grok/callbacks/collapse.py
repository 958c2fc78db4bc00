"""CollapseMonitor: neural-collapse figures of the features at scheduled steps."""

from __future__ import annotations

import math
import warnings

import keras
import numpy as np

from keras_grok.callbacks.features import FeatureReduction, find_layer
from keras_grok.callbacks.monitor import ScheduledMonitor
from keras_grok.callbacks.schedule import ScheduleSpec
from keras_grok.measures import collapse

_FIGURES = (
    "nc1",
    "rnc1",
    "nc2",
    "within_class_variance",
    "between_class_variance",
    "mean_feature_norm",
)
_DEVICE_FIGURES = tuple(name for name in _FIGURES if name != "nc2")


class CollapseMonitor(ScheduledMonitor):
    """Measures neural collapse of a layer's features at scheduled steps.

    At each scheduled optimizer step, the features of ``layer`` are computed in
    inference mode for every sample of ``data`` (and ``val_data``), reduced on
    the device to per-class statistics (``keras_grok.measures.collapse``) and
    turned into these figures, logged under their names and, for ``val_data``,
    with a ``val_`` prefix:

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

    The feature extraction and the statistics of ``data`` and ``val_data`` run as
    one compiled call per chunk of ``batch_size`` samples (the validation
    samples are counted as classes ``K .. 2K-1``), built once per model. Every
    measurement is kept in ``records``; the latest also go into the epoch-end
    ``logs`` (so ``History``, ``CSVLogger`` and ``TensorBoard`` see them). NC4
    needs a second pass over the data and is left to
    ``keras_grok.measures.collapse.nc4``.

    Args:
        data: ``(x, y)`` arrays, usually the training set; ``y`` holds integer
            labels or one-hot rows. ``x`` is one array (a single-input model).
        layer: name of the features layer: any top-level layer of a functional
            model, or a ``keras_grok.layers.FeatureTap`` in a subclassed one.
            Defaults to `"features"`.
        val_data: ``(x, y)`` arrays measured as well, with ``val_`` names, or None.
            Defaults to `None`.
        schedule: when to measure (see ``ScheduledMonitor``).
            Defaults to `"geometric"`.
        num_classes: number of classes K; None takes the largest label + 1.
            Every class must have samples in each data set. Defaults to `None`.
        norm: RNC1's scale: ``"mean"`` (paper A's figures and code) or ``"max"``
            (its text). Defaults to `"mean"`.
        classifier: name of the read-out Dense layer for ``nc3``, or None.
            Defaults to `None`.
        batch_size: samples per compiled call. Defaults to `16384`.

    Example:
    ```python
    monitor = CollapseMonitor((x_train, y_train), layer="features",
                              val_data=(x_test, y_test))
    history = model.fit(x_train, y_train, epochs=100, callbacks=[monitor])
    history.history["val_rnc1"]  # latest measurement at each epoch end
    monitor.records  # every measured step
    ```
    """

    def __init__(
        self,
        data: tuple,
        layer: str = "features",
        val_data: tuple | None = None,
        schedule: ScheduleSpec = "geometric",
        num_classes: int | None = None,
        norm: str = "mean",
        classifier: str | None = None,
        batch_size: int = 16384,
    ):
        super().__init__(schedule)
        if norm not in ("mean", "max"):
            raise ValueError(f'norm must be "mean" or "max". Received: norm={norm!r}')
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1. Received: {batch_size}")
        sets = {"": _labelled(data, "data")}
        if val_data is not None:
            sets["val_"] = _labelled(val_data, "val_data")
        largest = max(int(y.max()) for _, y in sets.values())
        self.num_classes = int(num_classes) if num_classes else largest + 1
        for prefix, (_, y) in sets.items():
            _check_classes(y, self.num_classes, f"{prefix or 'train '}data".strip())
        self.layer = layer
        self.norm = norm
        self.classifier = classifier
        self.batch_size = int(batch_size)
        self.prefixes = tuple(sets)
        figures = _FIGURES + (("nc3",) if classifier else ())
        self.metric_names = tuple(p + f for p in self.prefixes for f in figures)
        self._x = np.concatenate([x for x, _ in sets.values()])
        self._y = np.concatenate(
            [y + i * self.num_classes for i, (_, y) in enumerate(sets.values())]
        ).astype("int32")
        self._reduction = None
        self._reduction_model = None
        self._nc2_warned = False

    def on_train_begin(self, logs=None):
        if self._reduction_model is not self.model:
            self._build(self.model)
        super().on_train_begin(logs)

    def _build(self, model: keras.Model) -> None:
        classes = self.num_classes * len(self.prefixes)
        single_call = len(self._x) <= self.batch_size

        def reduce(features, labels):
            stats = collapse.batch_collapse_statistics(features, labels, classes)
            if single_call:  # the figures too, inside the same compiled call
                return self._figure_rows(stats)
            return (
                stats.counts,
                stats.means,
                stats.deviations,
                stats.norm_sums,
                stats.max_norms,
            )

        self._reduction = FeatureReduction(model, self.layer, reduce)
        if self.classifier is not None:
            find_layer(model, self.classifier)
        self._reduction_model = model
        self._single_call = single_call

    def _split(self, stats: collapse.CollapseStatistics) -> dict:
        k = self.num_classes
        return {
            p: stats.select(i * k, (i + 1) * k) for i, p in enumerate(self.prefixes)
        }

    def _figure_rows(self, stats: collapse.CollapseStatistics):
        # (figures without NC2, class means): NC2 is taken on the host.
        rows = []
        for part in self._split(stats).values():
            figures = collapse.collapse_figures(part, self.norm, include_nc2=False)
            rows.append(keras.ops.stack([figures[n] for n in _DEVICE_FIGURES]))
        return keras.ops.stack(rows), stats.means

    def statistics(self) -> dict[str, collapse.CollapseStatistics]:
        """The current collapse statistics of each data set, keyed by prefix."""
        if self._reduction_model is not self.model:
            self._build(self.model)
        stats = None
        for start in range(0, len(self._x), self.batch_size):
            stop = start + self.batch_size
            batch = collapse.batch_collapse_statistics(
                self._reduction.features(self._x[start:stop]),
                self._y[start:stop],
                self.num_classes * len(self.prefixes),
            )
            stats = (
                batch
                if stats is None
                else collapse.merge_collapse_statistics(stats, batch)
            )
        return self._split(stats)

    def measure(self, step: int) -> dict[str, float]:
        if self._reduction_model is not self.model:
            self._build(self.model)
        if self._single_call:
            rows, means = self._reduction.predict_on_batch(
                {"x": self._x, "extra": self._y}
            )
        else:
            stats = None
            for start in range(0, len(self._x), self.batch_size):
                stop = start + self.batch_size
                arrays = self._reduction.predict_on_batch(
                    {"x": self._x[start:stop], "extra": self._y[start:stop]}
                )
                batch = collapse.CollapseStatistics(
                    *(keras.ops.convert_to_tensor(a) for a in arrays)
                )
                stats = (
                    batch
                    if stats is None
                    else collapse.merge_collapse_statistics(stats, batch)
                )
            rows, means = self._figure_rows(stats)
        rows = np.asarray(keras.ops.convert_to_numpy(rows), dtype=np.float64)
        means = np.asarray(keras.ops.convert_to_numpy(means), dtype=np.float64)
        k = self.num_classes
        values = {}
        for i, (prefix, row) in enumerate(zip(self.prefixes, rows)):
            values.update({prefix + n: float(v) for n, v in zip(_DEVICE_FIGURES, row)})
            values[prefix + "nc2"] = collapse.nc2_of_means(means[i * k : (i + 1) * k])
        if means.shape[1] < k and not self._nc2_warned:
            self._warn_nc2()
        if self.classifier is not None:
            kernel = find_layer(self.model, self.classifier).kernel
            for prefix, stats in self.statistics().items():
                values[prefix + "nc3"] = _or_nan(collapse.nc3, stats, kernel)
        return values

    def _warn_nc2(self) -> None:
        warnings.warn(
            f"CollapseMonitor logs nc2 as NaN: layer {self.layer!r} has fewer "
            f"dimensions than the {self.num_classes} classes.",
            stacklevel=3,
        )
        self._nc2_warned = True


def _or_nan(measure, *args) -> float:
    # Degenerate features (all zero, or all class means equal, as with dead ReLUs
    # at initialization) leave a ratio undefined: logged as NaN, not an error.
    try:
        return measure(*args)
    except ValueError:
        return math.nan


def _labelled(data, name: str) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ValueError(
            f"{name} must be an (x, y) pair of arrays. Received: {type(data)}"
        )
    x, y = (np.asarray(v) for v in data)
    if y.ndim == 2 and y.shape[1] > 1:
        y = y.argmax(axis=1)
    y = y.reshape(len(y), -1)[:, 0] if y.ndim > 1 else y
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(
            f"{name} must hold as many labels as inputs, at least one. "
            f"Received: {len(x)} inputs, {len(y)} labels"
        )
    if not np.issubdtype(y.dtype, np.integer):
        if not np.all(y == np.round(y)):
            raise ValueError(f"{name} labels must be integer class indices.")
        y = y.astype(np.int64)
    return x, y


def _check_classes(y: np.ndarray, num_classes: int, name: str) -> None:
    if y.min() < 0 or y.max() >= num_classes:
        raise ValueError(
            f"{name} labels must lie in [0, {num_classes}). Received labels in "
            f"[{y.min()}, {y.max()}]"
        )
    empty = np.flatnonzero(np.bincount(y, minlength=num_classes) == 0)
    if empty.size:
        raise ValueError(
            f"Every class needs samples in {name}: {empty.size} of {num_classes} "
            f"classes have none, e.g. {empty[:10].tolist()}. Pass num_classes or "
            "measure a set that holds every class."
        )
