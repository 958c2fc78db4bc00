"""Neural collapse of penultimate features, from one streamed pass of statistics.

Neural collapse (Papyan, Han & Donoho, PNAS 2020) is the late-training state in
which the features ``h`` of each class shrink onto their class mean (NC1), the class
means spread into a simplex of equal norms and angles (NC2), the classifier aligns
with the means (NC3) and the network acts as a nearest-class-mean classifier (NC4).
Sakamoto & Sato (arXiv 2509.20829, "paper A") tie grokking to the fall of the
rescaled within-class variance RNC1.

Everything here follows from a small ``CollapseStatistics`` object (built in
``collapse_statistics``, re-exported here) from one pass over ``(features, labels)``
batches, in ``keras.ops``: per-class counts, means
(the per-class sums divided by the counts) and sums of squared deviations from the
mean (the per-class sums of squared norms, re-centred: ``sums`` and
``squared_norm_sums`` give them back), merged across batches with Chan et al.'s
pairwise update, which stays exact in float32 where ``sum ||h||^2 - n ||mu||^2``
would cancel; per-class sums and maxima of the feature norms; and optionally the
d x d within-class scatter. Memory is O(K d) (O(d^2) with the scatter), never O(N d).
The measures are pure functions of the statistics and return Python floats.

Notation: N samples, K classes, ``n_c`` samples and mean ``mu_c`` in class c,
global mean ``mu_G = sum_c n_c mu_c / N``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import keras
import numpy as np
from keras import ops

from keras_grok.measures.collapse_statistics import (
    CollapseStatistics,
    batch_collapse_statistics,
    collapse_statistics,
    empty_collapse_statistics,
    merge_collapse_statistics,
    update_collapse_statistics,
)
from keras_grok.measures.spectral import safe_scale
from keras_grok.utils.argument_validation import validate_bool_arg

__all__ = [
    "CollapseStatistics",
    "batch_collapse_statistics",
    "between_class_variance",
    "collapse_figures",
    "collapse_statistics",
    "empty_collapse_statistics",
    "max_feature_norm",
    "mean_feature_norm",
    "merge_collapse_statistics",
    "nc1",
    "nc1_papyan",
    "nc2",
    "nc2_of_means",
    "nc3",
    "nc4",
    "rnc1",
    "update_collapse_statistics",
    "within_class_variance",
]


def collapse_figures(
    stats: CollapseStatistics, norm: str = "mean", include_nc2: bool = True
) -> dict:
    """All of paper A's collapse figures as scalar tensors, jit-able, unchecked.

    The same formulas as ``within_class_variance``, ``between_class_variance``,
    ``nc1``, ``rnc1``, ``nc2`` and ``mean_feature_norm``, in one function of
    ``keras.ops`` for use inside a compiled function (the monitors), where a
    Python check or conversion would break tracing. Undefined ratios (no spread
    between means, zero features, ``K > d`` for NC2) come out NaN instead of
    raising; empty classes are not checked, so check the labels first.

    Args:
        stats: statistics from ``collapse_statistics`` or
            ``batch_collapse_statistics``.
        norm: RNC1's scale, ``"mean"`` or ``"max"`` (see ``rnc1``).
            Defaults to `"mean"`.
        include_nc2: compute NC2 (an SVD) too; without it, ``"nc2"`` is left
            out. JAX's CPU SVD is slow (0.5 s for a 97 x 256 matrix on a 2-core
            CPU, against milliseconds for NumPy's), so the monitors take NC2 of
            the returned means on the host (``nc2_of_means``). Defaults to `True`.

    Returns:
        ``{"nc1", "rnc1", "nc2", "within_class_variance",
        "between_class_variance", "mean_feature_norm"}`` to scalar tensors.
        Unchecked, so NaN where ``nc1``/``rnc1`` would refuse: degenerate
        features, features below about 1e-15 in size (``B`` or the squared
        scale below ``SMALLEST_SQUARES``), or above about 1e19, whose float32
        sums of squares overflow (``CollapseMonitor`` warns of both).
    """
    if norm not in ("mean", "max"):  # a Python value: checked even when traced
        raise ValueError(f'norm must be "mean" or "max". Received: norm={norm!r}')
    include_nc2 = validate_bool_arg(include_nc2, "include_nc2")
    total = ops.sum(stats.counts)
    within = ops.sum(stats.deviations) / total
    global_mean = ops.sum(stats.means * stats.counts[:, None], axis=0) / total
    centred = stats.means - global_mean[None, :]
    between = ops.sum(stats.counts / total * ops.sum(ops.square(centred), axis=1))
    mean_norm = ops.sum(stats.norm_sums) / total
    scale = mean_norm if norm == "mean" else ops.max(stats.max_norms)
    nan = ops.full((), float("nan"), dtype=within.dtype)
    # With fewer than two classes B is rounding noise, not a spread of means.
    classes = ops.sum(ops.cast(stats.counts > 0, "float32"))
    figures = {
        "nc1": ops.where(
            (between >= SMALLEST_SQUARES) & (classes >= 2), within / between, nan
        ),
        "rnc1": ops.where(
            ops.square(scale) >= SMALLEST_SQUARES, within / ops.square(scale), nan
        ),
        "within_class_variance": within,
        "between_class_variance": between,
        "mean_feature_norm": mean_norm,
    }
    if include_nc2:
        if stats.num_classes > stats.dim:
            figures["nc2"] = nan
        else:
            singular = ops.svd(stats.means, full_matrices=False, compute_uv=False)
            figures["nc2"] = ops.max(singular) / ops.min(singular)
    return figures


def nc2_of_means(means) -> float:
    """``nc2`` on the host: ``sigma_max / sigma_min`` of ``(K, d)`` class means.

    For monitors that already hold the means on the host (see
    ``collapse_figures``): the squared singular values are the eigenvalues of the
    ``K x K`` Gram matrix ``M M^T``, taken in float64 with a symmetric
    eigensolver, which on a busy 2-core CPU was ~14x faster than NumPy's SVD of
    the 97 x 256 means of the modadd recipe (10 vs 143 ms) and agrees with it to
    float64 rounding for condition numbers up to ~1e6. NaN when ``K > d``, when
    there are fewer than two means (no angle between them), or when a mean is not
    finite (the features of a diverged model); inf when the smallest singular
    value is 0.
    """
    means = np.asarray(means, dtype=np.float64)
    if means.ndim != 2:
        raise ValueError(
            f"means must be a (K, d) matrix of class means. Received: shape="
            f"{means.shape}"
        )
    if (
        means.shape[0] < 2
        or means.shape[0] > means.shape[1]
        or not np.all(np.isfinite(means))
    ):
        return float("nan")
    eigenvalues = np.linalg.eigvalsh(means @ means.T)
    if eigenvalues[0] <= 0:
        return float("inf")
    return float(np.sqrt(eigenvalues[-1] / eigenvalues[0]))


def within_class_variance(stats: CollapseStatistics) -> float:
    """Within-class variance ``W = (1/N) sum_c sum_{i in c} ||h_i - mu_c||^2``.

    The trace of the within-class covariance (paper A, Sec. 3).

    Args:
        stats: statistics from ``collapse_statistics``.
    """
    counts = _checked_counts(stats)
    return _float(ops.sum(stats.deviations)) / float(counts.sum())


def between_class_variance(stats: CollapseStatistics) -> float:
    """Between-class variance ``B = sum_c (n_c / N) ||mu_c - mu_G||^2``.

    The trace of the (sample-weighted) between-class covariance (paper A).

    Args:
        stats: statistics from ``collapse_statistics``.
    """
    _checked_counts(stats)
    weights = stats.counts / ops.sum(stats.counts)
    centred = stats.means - _global_mean(stats)[None, :]
    return _float(ops.sum(weights * ops.sum(ops.square(centred), axis=1)))


def nc1(stats: CollapseStatistics) -> float:
    """NC1 as paper A defines it: the trace ratio ``W / B``.

    ``W`` is ``within_class_variance`` and ``B`` is ``between_class_variance``;
    NC1 -> 0 as features collapse onto their class means. Papyan et al.'s
    ``Tr(Sigma_W Sigma_B^+) / K`` is ``nc1_papyan``.

    Args:
        stats: statistics from ``collapse_statistics``.

    Raises:
        ValueError: fewer than two classes, coinciding class means, or
            statistics that overflowed float32 (features above about 1e19).
    """
    if stats.num_classes < 2:
        raise ValueError(
            "NC1 needs two or more classes: with one, the between-class variance "
            f"is zero. Received: num_classes={stats.num_classes}"
        )
    between = _in_float32_range(between_class_variance(stats), "NC1")
    if between < SMALLEST_SQUARES:
        raise ValueError(_too_small("NC1", "the between-class variance B", between))
    return _in_float32_range(within_class_variance(stats), "NC1") / between


def nc1_papyan(stats: CollapseStatistics) -> float:
    """NC1 of Papyan, Han & Donoho (PNAS 2020): ``Tr(Sigma_W Sigma_B^+) / K``.

    ``Sigma_W = (1/N) sum_c sum_{i in c} (h_i - mu_c)(h_i - mu_c)^T`` and
    ``Sigma_B = (1/K) sum_c (mu_c - mu_G)(mu_c - mu_G)^T`` (unweighted over classes,
    ``mu_G`` the global mean, as in Papyan et al.'s code); ``^+`` is the
    Moore-Penrose pseudo-inverse, computed from the SVD of the centred mean matrix
    with NumPy's rank tolerance ``max(K, d) * eps * sigma_max``. Needs statistics
    built with ``covariance=True``.

    Args:
        stats: statistics from ``collapse_statistics(..., covariance=True)``.
    """
    counts = _checked_counts(stats)
    if stats.num_classes < 2:
        raise ValueError(
            "NC1 needs two or more classes: with one, the between-class variance "
            f"is zero. Received: num_classes={stats.num_classes}"
        )
    if stats.scatter is None:
        raise ValueError(
            "nc1_papyan needs the within-class scatter: build the statistics with "
            "collapse_statistics(..., covariance=True)."
        )
    between = between_class_variance(stats)
    if between < SMALLEST_SQUARES:
        raise ValueError(_too_small("NC1", "the between-class variance B", between))
    sigma_w = stats.scatter / float(counts.sum())
    centred = stats.means - _global_mean(stats)[None, :]
    # Sigma_B = V S^2 V^T / K, so
    # Tr(Sigma_W Sigma_B^+) / K = sum_j v_j' Sigma_W v_j / s_j^2.
    _, singular, vt = ops.svd(centred, full_matrices=False, compute_uv=True)
    largest = ops.max(singular)
    # Directions the class means do not span are rounding noise of the float32
    # means: with mu_G their count-weighted mean, the centred means have rank at
    # most K - 1, and each entry carries noise of about eps |mu| (a constant
    # feature of 5.0 gave a singular value of ~1e-6 whose 1 / s^2 made NC1 1e10).
    eps = 1.1920929e-07
    noise = 4.0 * eps * ops.max(ops.abs(stats.means))
    noise = noise * (math.sqrt(stats.num_classes) + math.sqrt(stats.dim))
    tolerance = ops.maximum(max(stats.num_classes, stats.dim) * eps * largest, noise)
    rank = ops.arange(singular.shape[0]) < stats.num_classes - 1
    keep = ops.logical_and(singular > tolerance, rank)
    # NC1 is scale-free: divide by the largest singular value first, so that
    # features near 1e-15 in size (squares near 1e-30) keep their precision.
    scaled = singular / largest
    inverse_squares = ops.where(
        keep, 1.0 / ops.square(ops.where(keep, scaled, 1.0)), 0.0
    )
    projected = ops.sum(ops.matmul(vt, sigma_w / largest) * vt, axis=1) / largest
    return _float(ops.sum(projected * inverse_squares))


def mean_feature_norm(stats: CollapseStatistics) -> float:
    """Mean feature norm ``(1/N) sum_i ||h_i||_2``.

    Args:
        stats: statistics from ``collapse_statistics``.
    """
    counts = _checked_counts(stats)
    return _float(ops.sum(stats.norm_sums)) / float(counts.sum())


def max_feature_norm(stats: CollapseStatistics) -> float:
    """Largest feature norm ``max_i ||h_i||_2`` (paper A's ``B_g`` on the sample).

    Args:
        stats: statistics from ``collapse_statistics``.
    """
    _checked_counts(stats)
    return _float(ops.max(stats.max_norms))


def rnc1(stats: CollapseStatistics, norm: str = "mean") -> float:
    """Rescaled NC1 of paper A: ``RNC1 = W / s^2``.

    ``W`` is the within-class variance, so RNC1 is the within-class variance of the
    rescaled features ``h / s``. Paper A's text takes ``s = B_g = sup_x ||h(x)||_2``
    (``norm="max"``, here the maximum over the sample); its code and plotted
    figures take the mean feature norm ``s = (1/N) sum_i ||h_i||_2``
    (``norm="mean"``, the default).

    Args:
        stats: statistics from ``collapse_statistics``.
        norm: ``"mean"`` (paper A's figures and code) or ``"max"`` (its text).
            Defaults to `"mean"`.

    Raises:
        ValueError: an unknown ``norm``, all-zero features, or statistics that
            overflowed float32 (features above about 1e19).
    """
    if norm == "mean":
        scale = mean_feature_norm(stats)
    elif norm == "max":
        scale = max_feature_norm(stats)
    else:
        raise ValueError(f'norm must be "mean" or "max". Received: norm={norm!r}')
    scale = _in_float32_range(scale, "RNC1")
    if scale**2 < SMALLEST_SQUARES:
        raise ValueError(_too_small("RNC1", "the squared feature norm", scale**2))
    return _in_float32_range(within_class_variance(stats), "RNC1") / scale**2


SMALLEST_SQUARES = 1e-30
"""The smallest ``B`` (NC1) or squared feature norm (RNC1) measured: the float32
sums of squares lose the squares of the features' small parts below it (features
of size 1e-18 gave an NC1 2.6% off where XLA flushes subnormal numbers)."""


def _too_small(measure: str, what: str, value: float) -> str:
    return (
        f"{measure} is undefined: {what} is {value:.3g}, below {SMALLEST_SQUARES:g}. "
        "The class means coincide (or every feature is zero), or the features are "
        "below about 1e-15 in size, where float32 squares underflow "
        f"({measure} is scale-free: rescale the features)."
    )


def _in_float32_range(value: float, measure: str) -> float:
    # The statistics are float32 sums of squares: features above about 1e19 in
    # size overflow them to inf (a diverging network), and inf / inf is NaN.
    if not math.isfinite(value):
        raise ValueError(
            f"{measure} cannot be computed: the collapse statistics are not finite "
            f"({value}). The features hold NaN or inf, or are above about 1e19 in "
            "size, whose squares overflow float32 (NC1 and RNC1 are scale-free: "
            "rescale the features)."
        )
    return value


def nc2(stats: CollapseStatistics) -> float:
    """NC2 of paper A: ``sigma_max(M) / sigma_min(M) = sqrt(cond(M M^T))``.

    ``M`` is the ``(K, d)`` matrix of *uncentred* class means. NC2 -> 1 as the
    means become orthogonal and equal in norm. With ``K > d`` the K means cannot
    be orthogonal and ``M M^T`` is singular, so this raises a ValueError rather
    than return an infinite or meaningless ratio.

    Args:
        stats: statistics from ``collapse_statistics``.
    """
    _checked_counts(stats)
    if stats.num_classes > stats.dim:
        raise ValueError(
            "NC2 needs at least as many feature dimensions as classes. "
            f"Received: K={stats.num_classes} classes, d={stats.dim} dimensions"
        )
    if not _all_finite(stats.means):
        return float("nan")  # a diverged model's features: no SVD to take
    singular = ops.svd(stats.means, full_matrices=False, compute_uv=False)
    smallest = _float(ops.min(singular))
    if smallest == 0.0:
        return float("inf")
    return _float(ops.max(singular)) / smallest


def nc3(stats: CollapseStatistics, classifier_kernel) -> float:
    """NC3 (self-duality) of Papyan et al.: classifier vs centred class means.

    ``NC3 = || A / ||A||_F - C / ||C||_F ||_F^2`` with ``A`` the ``(d, K)`` kernel
    of the last (Dense) layer, ``logits = h A + b``, and ``C`` the ``(d, K)``
    matrix whose column c is ``mu_c - mu_G``. It lies in ``[0, 4]`` and is 0 when
    the classifier is proportional to the centred means. Squared, as in Papyan et
    al.'s figures and code.

    Args:
        stats: statistics from ``collapse_statistics``.
        classifier_kernel: ``(d, K)`` kernel of the read-out layer.
    """
    _checked_counts(stats)
    kernel = ops.cast(ops.convert_to_tensor(classifier_kernel), "float32")
    if tuple(kernel.shape) != (stats.dim, stats.num_classes):
        raise ValueError(
            f"classifier_kernel must have shape (d, K) = ({stats.dim}, "
            f"{stats.num_classes}). Received: {tuple(kernel.shape)}"
        )
    means = ops.cast(stats.means, "float32")
    centred = ops.transpose(means - ops.cast(_global_mean(stats), "float32")[None, :])
    difference = kernel / ops.norm(kernel) - centred / ops.norm(centred)
    return _float(ops.sum(ops.square(difference)))


def nc4(batches: Iterable, stats: CollapseStatistics) -> float:
    """NC4: how often the nearest-class-mean rule agrees with the model.

    A second pass over the data, given the class means from the first: the
    fraction of samples with ``argmin_c ||h_i - mu_c|| == argmax_k f(x_i)_k``. It
    tends to 1 under collapse (Papyan et al. plot the mismatch, ``1 - nc4``).

    Args:
        batches: an iterable of ``(features, predictions)`` pairs: ``(b, ...)``
            features and either ``(b, K)`` model outputs (logits or probabilities;
            their argmax is taken) or ``(b,)`` integer predicted classes.
        stats: statistics from ``collapse_statistics`` over the same features.

    Example:
    ```python
    stats = collapse_statistics([(features, labels)], num_classes=10)
    nc4([(features, logits)], stats)
    ```
    """
    _checked_counts(stats)
    means = ops.cast(stats.means, "float32")
    # The nearest mean does not change with the scale: features and means over
    # the largest mean entry, so squared distances do not overflow float32.
    scale = safe_scale(ops.max(ops.abs(means)))
    means = means / scale
    mean_norms = ops.sum(ops.square(means), axis=1)
    agree, total = 0.0, 0
    for features, predictions in batches:
        features = ops.cast(ops.convert_to_tensor(features), "float32") / scale
        features = ops.reshape(features, (ops.shape(features)[0], -1))
        predictions = ops.convert_to_tensor(predictions)
        if len(predictions.shape) > 1:
            predictions = ops.argmax(predictions, axis=-1)
        # ||h - mu_c||^2 up to the per-sample constant ||h||^2.
        distances = mean_norms[None, :] - 2.0 * ops.matmul(
            features, ops.transpose(means)
        )
        nearest = ops.argmin(distances, axis=1)
        matches = ops.equal(nearest, ops.cast(predictions, nearest.dtype))
        agree += _float(ops.sum(ops.cast(matches, "float32")))
        total += int(features.shape[0])
    if total == 0:
        raise ValueError("nc4 received no batches.")
    return agree / total


def _checked_counts(stats: CollapseStatistics) -> np.ndarray:
    counts = np.asarray(ops.convert_to_numpy(stats.counts))
    if counts.sum() == 0:
        raise ValueError("The statistics hold no samples.")
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        raise ValueError(
            "Every class needs at least one sample (check num_classes and the "
            f"labels). Received: num_classes={counts.size}, {empty.size} of them "
            f"empty: {empty[:10].tolist()}"
        )
    return counts


def _global_mean(stats: CollapseStatistics):
    return ops.sum(stats.means * stats.counts[:, None], axis=0) / ops.sum(stats.counts)


def _all_finite(value) -> bool:
    return bool(np.all(np.isfinite(np.asarray(ops.convert_to_numpy(value)))))


def _float(value) -> float:
    return float(keras.ops.convert_to_numpy(value))
