"""The information plane: how much features Z keep about inputs X and labels Y.

Three estimators, all as used by Sakamoto & Sato (arXiv 2509.20829, "paper A"); the
first two are here, the third in ``keras_grok.measures.lossy_compression``:

- ``normalized_hsic``: normalized HSIC (nHSIC), a kernel dependence measure
  computed per batch of 100 samples and averaged over batches.
- ``kde_mutual_information``: the Gaussian-mixture (KDE) estimator of Xu Ji et al.
  (ICML 2023): I(Z;X), I(Z;X|Y) and I(Z;Y) in nats.
- ``compression_mutual_information``: the lossy-compression estimator of Butakov
  et al. (ICLR 2024): X compressed by an autoencoder (``fit_input_encoder``), Z by
  PCA, both whitened, then Kozachenko-Leonenko kNN entropies (``knn_entropy``).

Kernels, solves and distances use ``keras.ops`` in float64 on every backend
(``keras_grok.measures.float64``). Z, X and Y must be aligned row by row: take them
from one unshuffled pass over the data.
"""

from __future__ import annotations

import math
import warnings

import keras
import numpy as np
from keras import ops

from keras_grok.measures.float64 import (
    computed_in_float64,
    float64_scope,
    matmul_float64,
    mean_float64,
    rows_float64,
    squared_distances,
)
from keras_grok.utils.argument_validation import (
    native_array,
    validate_float_arg,
    validate_int_arg,
    validate_seed,
)
from keras_grok.utils.labelled_data import (
    validate_class_labels,
    validate_label_vector_shape,
)

# ---------------------------------------------------------------------------
# nHSIC


@computed_in_float64
def gaussian_gram(a, sigma: float = 5.0):
    """Centred Gaussian Gram matrix ``K H`` of the rows of ``a`` (paper A's nHSIC).

    ``K_ij = exp(-||a_i - a_j||^2 / (2 sigma^2 d))`` with ``d`` the flattened
    dimension, right-multiplied by ``H = I - 1 1^T / n`` (each row minus its mean).

    Args:
        a: ``(n, ...)`` samples, flattened per row.
        sigma: kernel width, scaled by ``sqrt(d)``, > 0. Defaults to `5.0`.
    """
    sigma = validate_float_arg(sigma, "sigma", allow_minimum=False)
    _check_rows(a, "a")
    a = rows_float64(a)
    a = a - mean_float64(a, 0)
    dim = int(a.shape[1])
    # K = 1 1^T + expm1(.), and 1 1^T H = 0: centring expm1 avoids the float32
    # cancellation of subtracting row means close to 1.
    distances = squared_distances(a, a)
    # A sample's distance to itself is 0 exactly; the expansion leaves rounding
    # of size eps |a|^2 there (features of size 1e15 gave K_ii = 0, not 1).
    distances = distances - distances * ops.eye(int(a.shape[0]), dtype=a.dtype)
    gram = ops.expm1(-distances / (2.0 * sigma**2 * dim))
    return gram - mean_float64(gram, 1)


def _check_rows(a, name: str) -> None:
    """``a`` holds at least one sample (a kernel of nothing is undefined)."""
    shape = tuple(a.shape) if hasattr(a, "shape") else np.shape(a)
    if not shape or shape[0] == 0:
        raise ValueError(
            f"{name} must hold at least one sample. Received: shape={shape}"
        )


@computed_in_float64
def linear_gram(a):
    """Uncentred linear Gram matrix ``a a^T`` (paper A's kernel for one-hot Y).

    Args:
        a: ``(n, ...)`` samples, flattened per row.
    """
    a = rows_float64(a)
    return matmul_float64(a, ops.transpose(a))


def _float_tensor(value):
    # A tensor of ``value`` (an array, list or tensor of any backend): float32 or
    # float64 kept, anything else (integers, half precision) as float64.
    value = ops.convert_to_tensor(native_array(value))
    if keras.backend.standardize_dtype(value.dtype) not in ("float32", "float64"):
        value = ops.cast(value, "float64")
    return value


@computed_in_float64
def kernel_resolvent(gram, epsilon: float = 1e-5):
    """``R = K (K + epsilon n I)^-1`` for an ``(n, n)`` Gram matrix ``K``.

    Computed with a linear solve (``R^T = (K + epsilon n I)^-T K^T``), not an
    explicit inverse, for float32 stability.

    Args:
        gram: ``(n, n)`` Gram matrix.
        epsilon: regularization, scaled by ``n``. Defaults to `1e-5`.
    """
    gram = _float_tensor(gram)
    shape = tuple(gram.shape)
    if len(shape) != 2 or shape[0] != shape[1]:
        raise ValueError(f"gram must be an (n, n) matrix. Received: shape={shape}")
    epsilon = validate_float_arg(epsilon, "epsilon", allow_minimum=False)
    n = int(gram.shape[0])
    shifted = gram + (epsilon * n) * ops.eye(n, dtype=gram.dtype)
    return ops.transpose(ops.solve(ops.transpose(shifted), ops.transpose(gram)))


@computed_in_float64
def linear_resolvent(a, epsilon: float = 1e-5):
    """``R = A A^T (A A^T + epsilon n I)^-1`` for the linear kernel of ``(n, m)`` rows.

    Equal to ``kernel_resolvent(linear_gram(a))`` but computed as
    ``A (A^T A + epsilon n I_m)^-1 A^T`` (the push-through identity): an m x m
    solve, well conditioned for one-hot labels (``A^T A`` is the diagonal of class
    counts) where the n x n one is not.

    Args:
        a: ``(n, ...)`` samples, flattened per row.
        epsilon: regularization, scaled by ``n``. Defaults to `1e-5`.
    """
    epsilon = validate_float_arg(epsilon, "epsilon", allow_minimum=False)
    a = rows_float64(a)
    n, m = int(a.shape[0]), int(a.shape[1])
    ridge = (epsilon * n) * ops.eye(m, dtype=a.dtype)
    inner = matmul_float64(ops.transpose(a), a) + ridge
    return matmul_float64(a, ops.solve(inner, ops.transpose(a)))


def normalized_hsic(
    z,
    other,
    other_kernel: str = "gaussian",
    sigma: float = 5.0,
    epsilon: float = 1e-5,
    batch_size: int = 100,
    passes: int = 3,
    seed: int = 0,
) -> float:
    """Normalized HSIC ``nHSIC(Z; A) = tr(R_Z R_A)``, averaged over batches.

    As paper A computes it: per batch of ``n = batch_size`` samples, ``R = K (K +
    epsilon n I)^-1`` for each variable's Gram matrix (``gaussian_gram`` for Z,
    ``gaussian_gram`` or ``linear_gram`` for the other), then ``tr(R_Z R_A)``;
    the result is the mean over all full batches of ``passes`` random orderings
    (the paper: batches of 100 test samples, 3 passes).

    Precision: ``R`` amplifies errors in ``K`` by up to ``1 / (epsilon n)`` (1000
    for the defaults), so float32 rounding of the Gram matrix alone moves nHSIC
    by about 1e-4 to 1e-3 relative (measured on 100 x 16 features). The whole
    computation therefore runs in float64 on every backend (``float64_scope``;
    inputs may be float32). With fewer than
    ``batch_size`` samples, one batch of all of them is used. The value depends on
    ``n``, so compare figures computed with one batch size.

    Range: nHSIC is not a share in ``[0, 1]``. It is a trace of two resolvents,
    each with eigenvalues in ``[0, 1)``, so it lies between 0 and about the
    smaller rank of the two Gram matrices: below ``K`` for one-hot labels of
    ``K`` classes, up to ``n`` for inputs. Paper A plots differences such as
    ``nHSIC(Z; X) - nHSIC(Z; Y)``.

    Args:
        z: ``(N, ...)`` features.
        other: ``(N, ...)`` the other variable: inputs X, or one-hot labels Y with
            ``other_kernel="linear"``.
        other_kernel: ``"gaussian"`` or ``"linear"``. Defaults to `"gaussian"`.
        sigma: Gaussian kernel width (scaled by ``sqrt(d)``). Defaults to `5.0`.
        epsilon: resolvent regularization. Defaults to `1e-5`.
        batch_size: samples per batch. Defaults to `100`.
        passes: random orderings averaged over. Defaults to `3`.
        seed: seed of the orderings. Defaults to `0`.

    Returns:
        nHSIC as a Python float.

    Example:
    ```python
    nhsic_zx = normalized_hsic(features, x)
    nhsic_zy = normalized_hsic(features, keras.ops.one_hot(y, 10), "linear")
    ```
    """
    if other_kernel not in ("gaussian", "linear"):
        raise ValueError(
            'other_kernel must be "gaussian" or "linear". '
            f"Received: other_kernel={other_kernel!r}"
        )
    epsilon = validate_float_arg(epsilon, "epsilon", allow_minimum=False)
    z, other = native_array(z), native_array(other)
    if int(z.shape[0]) != int(other.shape[0]):
        raise ValueError(
            f"z and other must have as many rows. Received: {z.shape[0]} and "
            f"{other.shape[0]}"
        )

    def resolvent(a, kernel):
        if kernel == "linear":
            return linear_resolvent(a, epsilon)
        return kernel_resolvent(gaussian_gram(a, sigma), epsilon)

    values = []
    with float64_scope():
        z, other = rows_float64(z), rows_float64(other)
        for index in hsic_batches(int(z.shape[0]), batch_size, passes, seed):
            r_z = resolvent(ops.take(z, index, axis=0), "gaussian")
            r_other = resolvent(ops.take(other, index, axis=0), other_kernel)
            values.append(hsic_trace(r_z, r_other))
    return float(np.mean(values))


def hsic_batches(
    num_samples: int, batch_size: int = 100, passes: int = 3, seed: int = 0
) -> list[np.ndarray]:
    """Index batches of ``normalized_hsic``: full batches of ``passes`` orderings.

    Args:
        num_samples: number of samples N.
        batch_size: samples per batch (N if N is smaller). Defaults to `100`.
        passes: random orderings. Defaults to `3`.
        seed: seed of the orderings. Defaults to `0`.
    """
    num_samples = validate_int_arg(num_samples, "num_samples", minimum=2)
    batch_size = validate_int_arg(batch_size, "batch_size", minimum=2)
    passes = validate_int_arg(passes, "passes")
    size = min(batch_size, num_samples)
    rng = np.random.default_rng(validate_seed(seed))
    batches = []
    for _ in range(passes):
        order = rng.permutation(num_samples)
        batches += [order[i : i + size] for i in range(0, num_samples - size + 1, size)]
    return batches


@computed_in_float64
def hsic_trace(r_a, r_b) -> float:
    """``tr(R_a R_b)`` without forming the product."""
    r_a, r_b = _float_tensor(r_a), _float_tensor(r_b)
    shape_a, shape_b = tuple(r_a.shape), tuple(r_b.shape)
    if len(shape_a) != 2 or shape_a[0] != shape_a[1] or shape_a != shape_b:
        raise ValueError(
            "r_a and r_b must be square matrices of one shape (n, n), one row per "
            f"sample. Received: shapes {shape_a} and {shape_b}"
        )
    return float(ops.convert_to_numpy(ops.sum(r_a * ops.transpose(r_b))))


# ---------------------------------------------------------------------------
# KDE (Gaussian mixture) mutual information


def kde_mutual_information(
    z,
    labels,
    num_references: int = 400,
    num_evaluations: int = 2000,
    std: float = 0.1,
    seed: int = 0,
) -> dict[str, float]:
    """Mixture-of-Gaussians MI estimates of Xu Ji et al. (ICML 2023), in nats.

    Each of R reference features ``z_j`` is the centre of a Gaussian of standard
    deviation ``std``; Z given X is one of them. For evaluation features ``z_i``:

    ``I(Z;X) = mean_i [log N(0; 0, std^2 I) - log((1/R) sum_j N(z_i; z_j, std^2 I))]
    = mean_i [log R - logsumexp_j(-||z_i - z_j||^2 / (2 std^2))]``,

    in nats. Because references and evaluations are disjoint, this is not capped
    at ``log R``: an evaluation point far from every reference (relative to
    ``std``) adds about ``min_j ||z_i - z_j||^2 / (2 std^2)``, so with the default
    ``std = 0.1`` unnormalized features of large norm give very large values;
    compare runs of one model, or rescale ``z`` first. ``I(Z;X|Y)`` is the same
    within each class (references and evaluations of class y only, ``R_y``
    references), averaged over classes with
    weights ``p(y)``, the evaluation frequencies (classes without a reference or
    an evaluation sample are left out and the weights renormalized); and
    ``I(Z;Y) = I(Z;X) - I(Z;X|Y)``.

    References and evaluations are disjoint random subsets: ``num_references``
    samples, then up to ``num_evaluations`` of the rest (paper A: 400 and 2000).

    Assumptions: the mixture must cover the features, i.e. evaluation points
    lie within a few ``std`` of some reference. Under the mixture model
    ``0 <= I(Z;X) <= log R`` and ``I(Z;Y) >= 0``; when the features are spread
    far wider than ``std`` (ordinary unnormalized features with the default
    0.1), every term is dominated by ``min_j ||z_i - z_j||^2 / (2 std^2)``, the
    estimates leave those bounds (thousands of nats, a negative ``I(Z;Y)``) and
    measure ``std`` rather than the features. Then a ``UserWarning`` (once per
    ``std`` and ``num_references`` in a process) names the median
    nearest-reference distance, a ``std`` of about that size, and the values are
    still returned.

    Args:
        z: ``(N, ...)`` features, flattened per row.
        labels: ``(N,)`` integer labels.
        num_references: mixture components R. Defaults to `400`.
        num_evaluations: evaluation samples. Defaults to `2000`.
        std: standard deviation of each component. Defaults to `0.1`.
        seed: seed of the subset draw. Defaults to `0`.

    Returns:
        ``{"zx": I(Z;X), "zx_given_y": I(Z;X|Y), "zy": I(Z;Y)}``.

    Example:
    ```python
    mi = kde_mutual_information(features, labels)
    mi["zx"] - mi["zy"]  # redundant information I(Z;X|Y)
    ```
    """
    labels = np.asarray(ops.convert_to_numpy(labels))
    validate_label_vector_shape(labels.shape)
    labels = labels.reshape(-1)
    n = int(np.shape(z)[0])
    if len(labels) != n:
        raise ValueError(
            f"Expected {n} labels, one per row of z. Received: {len(labels)}"
        )
    std = validate_float_arg(std, "std", allow_minimum=False)
    validate_class_labels(labels, "labels")
    if n <= num_references or num_references < 1:
        raise ValueError(
            "kde_mutual_information needs more samples than references. "
            f"Received: {n} samples, num_references={num_references}"
        )
    validate_int_arg(num_evaluations, "num_evaluations")
    order = np.random.default_rng(validate_seed(seed)).permutation(n)
    references = order[:num_references]
    evaluations = order[num_references : num_references + num_evaluations]
    conditional, weight = 0.0, 0
    with float64_scope():
        z = rows_float64(z)
        # Centring on the references' mean keeps the squared distances accurate.
        z = z - mean_float64(ops.take(z, references, axis=0), 0)
        zx, nearest = _kde_information(z, references, evaluations, std)
        for label in np.unique(labels[evaluations]):
            class_references = references[labels[references] == label]
            class_evaluations = evaluations[labels[evaluations] == label]
            if len(class_references) == 0:
                continue
            count = len(class_evaluations)
            conditional += (
                count * _kde_information(z, class_references, class_evaluations, std)[0]
            )
            weight += count
    zx_given_y = conditional / weight if weight else math.nan
    zy = zx - zx_given_y
    _warn_if_uncovered(zx, zy, nearest, num_references, std)
    return {"zx": zx, "zx_given_y": zx_given_y, "zy": zy}


KDE_TOLERANCE = 0.1
"""Nats by which a KDE estimate may leave its bounds before the warning."""

_WARNED: set[tuple[float, int]] = set()


def _warn_if_uncovered(
    zx: float, zy: float, nearest: np.ndarray, num_references: int, std: float
) -> None:
    """Warns when the estimates leave ``[0, log R]`` and ``[0, inf)``."""
    bound = math.log(num_references)
    if zx <= bound + KDE_TOLERANCE and not zy < -KDE_TOLERANCE:
        return
    if (std, num_references) in _WARNED:
        return  # a monitor measures again and again: say it once
    _WARNED.add((std, num_references))
    median = float(np.median(nearest))
    warnings.warn(
        "kde_mutual_information: the Gaussian mixture does not cover these "
        f"features (the median evaluation point lies {median / std:.3g} std from "
        f"its nearest reference), so the estimates leave their bounds "
        f"(I(Z;X)={zx:.4g} nats, at most log R={bound:.3g}; I(Z;Y)={zy:.4g} "
        f"nats, at least 0) and measure std rather than the features. Pass a "
        f"std of about the median nearest-reference distance ({median:.3g}), or "
        f"rescale z. Received: std={std}",
        stacklevel=3,
    )


def _kde_information(
    z, references, evaluations, std: float
) -> tuple[float, np.ndarray]:
    """The estimate, and each evaluation point's distance to its nearest centre."""
    centres = ops.take(z, references, axis=0)
    points = ops.take(z, evaluations, axis=0)
    distances = squared_distances(points, centres)
    log_kernel = -distances / (2.0 * std**2)
    log_mixture = ops.logsumexp(log_kernel, axis=1)
    value = math.log(len(references)) - ops.sum(log_mixture) / len(evaluations)
    nearest = np.sqrt(np.maximum(ops.convert_to_numpy(ops.min(distances, 1)), 0.0))
    return float(ops.convert_to_numpy(value)), nearest
