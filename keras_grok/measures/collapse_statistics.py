"""The sufficient statistics of labelled features for the neural-collapse measures.

One streamed pass over ``(features, labels)`` batches, in ``keras.ops``, builds a
small ``CollapseStatistics`` object: per-class counts, means (the per-class sums
divided by the counts) and sums of squared deviations from the mean, merged across
batches with Chan et al.'s pairwise update, which stays exact in float32 where
``sum ||h||^2 - n ||mu||^2`` would cancel; per-class sums and maxima of the
feature norms; and optionally the d x d within-class scatter. Memory is O(K d)
(O(d^2) with the scatter), never O(N d). The measures of ``collapse`` are pure
functions of it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import numpy as np
from keras import ops

from keras_grok.utils.argument_validation import validate_bool_arg, validate_int_arg
from keras_grok.utils.labelled_data import (
    validate_class_labels,
    validate_label_vector_shape,
)


@dataclasses.dataclass(frozen=True)
class CollapseStatistics:
    """Sufficient statistics of labelled features for the neural-collapse measures.

    Build it with ``collapse_statistics`` (one pass over batches), or with
    ``empty_collapse_statistics`` and repeated ``update_collapse_statistics``.
    ``batch_collapse_statistics`` and ``merge_collapse_statistics`` are the
    unchecked, jit-able halves of the update.

    Attributes:
        counts: ``(K,)`` float32 number of samples per class, ``n_c``.
        means: ``(K, d)`` class means ``mu_c`` (zero rows for empty classes).
        deviations: ``(K,)`` per-class sums ``sum_{i in c} ||h_i - mu_c||^2``.
        norm_sums: ``(K,)`` per-class sums of feature norms ``sum_{i in c} ||h_i||``.
        max_norms: ``(K,)`` per-class largest feature norms (0 for empty classes).
        scatter: ``(d, d)`` within-class scatter
            ``sum_c sum_{i in c} (h_i - mu_c)(h_i - mu_c)^T``, or None when not
            tracked (only ``nc1_papyan`` needs it).
    """

    counts: Any
    means: Any
    deviations: Any
    norm_sums: Any
    max_norms: Any
    scatter: Any = None

    def __post_init__(self) -> None:
        # Host arrays (NumPy, any float dtype) become float32 backend tensors, so
        # the measures mix them with tensors on every backend.
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, np.ndarray):
                tensor = ops.convert_to_tensor(value.astype(np.float32))
                object.__setattr__(self, field.name, tensor)

    @property
    def num_classes(self) -> int:
        return int(self.counts.shape[0])

    @property
    def dim(self) -> int:
        return int(self.means.shape[1])

    @property
    def num_samples(self) -> int:
        return int(round(float(ops.convert_to_numpy(ops.sum(self.counts)))))

    @property
    def sums(self):
        """``(K, d)`` per-class feature sums ``n_c mu_c``."""
        return self.means * self.counts[:, None]

    @property
    def squared_norm_sums(self):
        """``(K,)`` per-class sums of squared norms ``sum_{i in c} ||h_i||^2``."""
        return self.deviations + self.counts * ops.sum(ops.square(self.means), axis=1)

    def select(self, start: int, stop: int) -> CollapseStatistics:
        """The statistics of classes ``start .. stop - 1`` only (no scatter).

        Lets one pass serve two data sets: label the second set's samples
        ``K + y`` and split the ``2K`` classes afterwards.
        """
        return CollapseStatistics(
            counts=self.counts[start:stop],
            means=self.means[start:stop],
            deviations=self.deviations[start:stop],
            norm_sums=self.norm_sums[start:stop],
            max_norms=self.max_norms[start:stop],
        )


def empty_collapse_statistics(
    num_classes: int, dim: int, covariance: bool = False
) -> CollapseStatistics:
    """Statistics of zero samples, the start of a streamed accumulation.

    Args:
        num_classes: number of classes K.
        dim: feature dimension d (features are flattened per sample).
        covariance: also track the ``(d, d)`` within-class scatter, needed by
            ``nc1_papyan``. Defaults to `False`.

    Example:
    ```python
    stats = empty_collapse_statistics(10, 200)
    for h, y in batches:
        stats = update_collapse_statistics(stats, h, y)
    ```
    """
    num_classes = validate_int_arg(num_classes, "num_classes")
    dim = validate_int_arg(dim, "dim")
    covariance = validate_bool_arg(covariance, "covariance")
    return CollapseStatistics(
        counts=ops.zeros((num_classes,), "float32"),
        means=ops.zeros((num_classes, dim), "float32"),
        deviations=ops.zeros((num_classes,), "float32"),
        norm_sums=ops.zeros((num_classes,), "float32"),
        max_norms=ops.zeros((num_classes,), "float32"),
        scatter=ops.zeros((dim, dim), "float32") if covariance else None,
    )


def batch_collapse_statistics(
    features, labels, num_classes: int, covariance: bool = False
) -> CollapseStatistics:
    """Statistics of one batch: jit-able ``keras.ops`` only.

    Two passes over the batch: per-class sums (``segment_sum``) give the means,
    then the squared deviations from them. Labels must be valid integer indices
    in ``[0, num_classes)``: NumPy labels are checked here, tensors (which may be
    traced) are not (``update_collapse_statistics`` checks them).

    Args:
        features: ``(b, ...)`` features; flattened to ``(b, d)`` and cast to float32.
        labels: ``(b,)`` int32 labels in ``[0, num_classes)``.
        num_classes: number of classes K.
        covariance: also compute the within-class scatter. Defaults to `False`.
    """
    num_classes = validate_int_arg(num_classes, "num_classes")
    covariance = validate_bool_arg(covariance, "covariance")
    label_shape = tuple(getattr(labels, "shape", ()) or ())
    validate_label_vector_shape(label_shape)
    if isinstance(labels, np.ndarray):  # host labels: checked (a traced tensor is not)
        validate_class_labels(labels, "labels", num_classes)
    shape = tuple(getattr(features, "shape", ()) or ())
    if shape and shape[0] == 0:
        raise ValueError(
            "features must hold at least one sample (they are empty). "
            f"Received: features of shape {shape}"
        )
    known = label_shape and all(isinstance(d, int) for d in label_shape)
    label_count = int(np.prod(label_shape)) if known else None  # traced: unknown
    if shape and isinstance(shape[0], int) and label_count not in (None, shape[0]):
        raise ValueError(
            "labels and features must hold one row per sample. Received: "
            f"{label_count} labels and {shape[0]} feature rows"
        )
    if isinstance(features, np.ndarray):  # on the host: to float32 there (torch
        features = features.astype("float32", copy=False)  # casts bfloat16 badly)
    features = ops.cast(features, "float32")
    features = ops.reshape(features, (ops.shape(features)[0], -1))
    labels = ops.cast(ops.reshape(labels, (-1,)), "int32")
    ones = ops.ones_like(features[:, 0])
    counts = ops.segment_sum(ones, labels, num_segments=num_classes)
    safe_counts = ops.maximum(counts, 1.0)
    means = ops.segment_sum(features, labels, num_segments=num_classes)
    means = means / safe_counts[:, None]
    centred = features - ops.take(means, labels, axis=0)
    deviations = ops.segment_sum(
        ops.sum(ops.square(centred), axis=1), labels, num_segments=num_classes
    )
    norms = ops.sqrt(ops.sum(ops.square(features), axis=1))
    norm_sums = ops.segment_sum(norms, labels, num_segments=num_classes)
    # Norms are >= 0, so a one-hot mask gives the per-class maxima (0 if empty).
    one_hot = ops.one_hot(labels, num_classes, dtype="float32")
    max_norms = ops.max(one_hot * norms[:, None], axis=0)
    scatter = ops.matmul(ops.transpose(centred), centred) if covariance else None
    return CollapseStatistics(counts, means, deviations, norm_sums, max_norms, scatter)


def merge_collapse_statistics(
    a: CollapseStatistics, b: CollapseStatistics
) -> CollapseStatistics:
    """The statistics of the union of two disjoint sets of samples; jit-able.

    Means and squared deviations merge by the pairwise update of Chan, Golub &
    LeVeque (1979): with ``delta = mu_b - mu_a``,
    ``M2 = M2_a + M2_b + ||delta||^2 n_a n_b / (n_a + n_b)``; this stays exact in
    float32 where ``sum ||h||^2 - n ||mu||^2`` would cancel.

    Args:
        a: statistics of the first set.
        b: statistics of the second set, with the same K and d.
    """
    if (a.scatter is None) != (b.scatter is None):
        raise ValueError("Both statistics must track the scatter, or neither.")
    if tuple(a.means.shape) != tuple(b.means.shape):
        raise ValueError(
            "Both statistics must be of the same classes and feature dimension "
            f"(K, d). Received: means of shapes {tuple(a.means.shape)} and "
            f"{tuple(b.means.shape)}"
        )
    total = a.counts + b.counts
    safe_total = ops.maximum(total, 1.0)
    delta = b.means - a.means
    cross = a.counts * b.counts / safe_total
    scatter = None
    if a.scatter is not None:
        scatter = (
            a.scatter + b.scatter + ops.matmul(ops.transpose(delta) * cross, delta)
        )
    return CollapseStatistics(
        counts=total,
        means=a.means + delta * (b.counts / safe_total)[:, None],
        deviations=a.deviations
        + b.deviations
        + ops.sum(ops.square(delta), axis=1) * cross,
        norm_sums=a.norm_sums + b.norm_sums,
        max_norms=ops.maximum(a.max_norms, b.max_norms),
        scatter=scatter,
    )


def update_collapse_statistics(
    stats: CollapseStatistics, features, labels
) -> CollapseStatistics:
    """Returns ``stats`` updated with one batch of features and integer labels.

    Checks the inputs, then merges ``batch_collapse_statistics`` of the batch
    into ``stats`` (``merge_collapse_statistics``).

    Args:
        stats: the statistics so far.
        features: ``(b, ...)`` features; flattened to ``(b, d)``.
        labels: ``(b,)`` integer labels in ``[0, K)``.

    Returns:
        A new ``CollapseStatistics``.

    Raises:
        ValueError: labels that are not integers in ``[0, K)``, or features whose
            shape does not match the labels and ``stats``.
    """
    labels = _checked_labels(labels, stats.num_classes)
    features = ops.convert_to_tensor(features)
    shape = tuple(features.shape)
    dim = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    if len(shape) < 2 or dim != stats.dim or shape[0] != labels.shape[0]:
        raise ValueError(
            f"Expected features of shape ({labels.shape[0]}, {stats.dim}) after "
            f"flattening, one row per label. Received: {shape}"
        )
    if shape[0] == 0:
        return stats  # an empty batch adds nothing
    batch = batch_collapse_statistics(
        features, labels, stats.num_classes, stats.scatter is not None
    )
    return merge_collapse_statistics(stats, batch)


def collapse_statistics(
    batches: Iterable,
    num_classes: int,
    covariance: bool = False,
) -> CollapseStatistics:
    """Accumulates ``CollapseStatistics`` over ``(features, labels)`` batches.

    One pass; memory O(K d), plus O(d^2) with ``covariance=True``. The result
    does not depend on how the samples are split into batches (up to float32
    rounding).

    Args:
        batches: an iterable of ``(features, labels)`` pairs: ``(b, ...)`` features
            (flattened per sample) and ``(b,)`` integer labels in
            ``[0, num_classes)``; or one such pair (a tuple or a list).
        num_classes: number of classes K.
        covariance: also track the within-class scatter for ``nc1_papyan``.
            Defaults to `False`.

    Returns:
        A frozen ``CollapseStatistics``.

    Raises:
        ValueError: no batches, or a batch that ``update_collapse_statistics``
            refuses.

    Example:
    ```python
    stats = collapse_statistics((features, labels), num_classes=10)
    nc1(stats), rnc1(stats), nc2(stats)
    ```
    """
    if (
        isinstance(batches, (tuple, list))
        and len(batches) == 2
        and len(getattr(batches[0], "shape", ())) >= 2
    ):
        batches = [batches]
    num_classes = validate_int_arg(num_classes, "num_classes")
    stats = None
    for index, batch in enumerate(batches):
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            shape = getattr(batch, "shape", None)
            raise ValueError(
                "batches must be (features, labels) pairs, or one pair as a "
                "tuple: collapse_statistics((features, labels), num_classes). "
                f"Received: batches[{index}] of type {type(batch).__name__}"
                + (f" and shape {tuple(shape)}" if shape is not None else "")
            )
        features, labels = batch
        if stats is None:
            shape = tuple(features.shape)
            stats = empty_collapse_statistics(
                num_classes, int(np.prod(shape[1:])), covariance
            )
        stats = update_collapse_statistics(stats, features, labels)
    if stats is None:
        raise ValueError("collapse_statistics received no batches.")
    if float(ops.convert_to_numpy(ops.sum(stats.counts))) == 0:
        raise ValueError(
            "collapse_statistics needs at least one sample. Received: batches "
            "of 0 features"
        )
    return stats


def _checked_labels(labels, num_classes: int) -> np.ndarray:
    labels = np.asarray(ops.convert_to_numpy(labels))
    validate_label_vector_shape(labels.shape)
    if labels.ndim != 1:
        labels = labels.reshape(-1)
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        if not np.issubdtype(labels.dtype, np.floating) or not np.all(
            labels == np.round(labels)
        ):
            raise ValueError(
                "labels must be integer class indices. Received: "
                f"{labels.dtype} values such as {labels[:3].tolist()}"
            )
        labels = labels.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        bad = labels[(labels < 0) | (labels >= num_classes)]
        raise ValueError(
            f"labels must lie in [0, {num_classes}). Received: {bad.size} labels "
            f"out of range, e.g. {int(bad[0])}"
        )
    return labels.astype(np.int32)
