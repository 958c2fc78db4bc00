"""The information plane: how much features Z keep about inputs X and labels Y.

Three estimators, all as used by Sakamoto & Sato (arXiv 2509.20829, "paper A"):

- ``normalized_hsic``: normalized HSIC (nHSIC), a kernel dependence measure
  computed per batch of 100 samples and averaged over batches.
- ``kde_mutual_information``: the Gaussian-mixture (KDE) estimator of Xu Ji et al.
  (ICML 2023): I(Z;X), I(Z;X|Y) and I(Z;Y) in nats.
- ``compression_mutual_information``: the lossy-compression estimator of Butakov
  et al. (ICLR 2024): X compressed by an autoencoder (``fit_input_encoder``), Z by
  PCA, both whitened, then Kozachenko-Leonenko kNN entropies (``knn_entropy``).

Kernels, solves, distances, PCA and whitening use ``keras.ops`` in float32. The
kNN search (``scipy.spatial.cKDTree``), the entropy bookkeeping and the training
of the autoencoder are host-side by nature. Z, X and Y must be aligned row by row:
take them from one unshuffled pass over the data.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from collections.abc import Sequence

import keras
import numpy as np
from keras import ops
from scipy import spatial, special

# ---------------------------------------------------------------------------
# nHSIC


def gaussian_gram(a, sigma: float = 5.0):
    """Centred Gaussian Gram matrix ``K H`` of the rows of ``a`` (paper A's nHSIC).

    ``K_ij = exp(-||a_i - a_j||^2 / (2 sigma^2 d))`` with ``d`` the flattened
    dimension, right-multiplied by ``H = I - 1 1^T / n`` (each row minus its mean).

    Args:
        a: ``(n, ...)`` samples, flattened per row.
        sigma: kernel width, scaled by ``sqrt(d)``. Defaults to `5.0`.
    """
    a = _flat(a)
    a = a - _mean(a, 0)
    dim = int(a.shape[1])
    # K = 1 1^T + expm1(.), and 1 1^T H = 0: centring expm1 avoids the float32
    # cancellation of subtracting row means close to 1.
    gram = ops.expm1(-_squared_distances(a, a) / (2.0 * sigma**2 * dim))
    return gram - _mean(gram, 1)


def linear_gram(a):
    """Uncentred linear Gram matrix ``a a^T`` (paper A's kernel for one-hot Y).

    Args:
        a: ``(n, ...)`` samples, flattened per row.
    """
    a = _flat(a)
    return _matmul(a, ops.transpose(a))


def kernel_resolvent(gram, epsilon: float = 1e-5):
    """``R = K (K + epsilon n I)^-1`` for an ``(n, n)`` Gram matrix ``K``.

    Computed with a linear solve (``R^T = (K + epsilon n I)^-T K^T``), not an
    explicit inverse, for float32 stability.

    Args:
        gram: ``(n, n)`` Gram matrix.
        epsilon: regularization, scaled by ``n``. Defaults to `1e-5`.
    """
    n = int(gram.shape[0])
    shifted = gram + (epsilon * n) * ops.eye(n, dtype=gram.dtype)
    return ops.transpose(ops.solve(ops.transpose(shifted), ops.transpose(gram)))


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
    a = _flat(a)
    n, m = int(a.shape[0]), int(a.shape[1])
    inner = _matmul(ops.transpose(a), a) + (epsilon * n) * ops.eye(m, dtype=a.dtype)
    return _matmul(a, ops.solve(inner, ops.transpose(a)))


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
        z, other = _flat(z), _flat(other)
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
    if num_samples < 2 or batch_size < 2 or passes < 1:
        raise ValueError(
            "nHSIC needs at least 2 samples, batch_size >= 2 and passes >= 1. "
            f"Received: {num_samples} samples, batch_size={batch_size}, "
            f"passes={passes}"
        )
    size = min(batch_size, num_samples)
    rng = np.random.default_rng(seed)
    batches = []
    for _ in range(passes):
        order = rng.permutation(num_samples)
        batches += [order[i : i + size] for i in range(0, num_samples - size + 1, size)]
    return batches


def hsic_trace(r_a, r_b) -> float:
    """``tr(R_a R_b)`` without forming the product."""
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
    labels = np.asarray(ops.convert_to_numpy(labels)).reshape(-1)
    n = int(np.shape(z)[0])
    if len(labels) != n:
        raise ValueError(
            f"Expected {n} labels, one per row of z. Received: {len(labels)}"
        )
    if std <= 0:
        raise ValueError(f"std must be > 0. Received: std={std}")
    if n <= num_references or num_references < 1:
        raise ValueError(
            "kde_mutual_information needs more samples than references. "
            f"Received: {n} samples, num_references={num_references}"
        )
    order = np.random.default_rng(seed).permutation(n)
    references = order[:num_references]
    evaluations = order[num_references : num_references + num_evaluations]
    conditional, weight = 0.0, 0
    with float64_scope():
        z = _flat(z)
        # Centring on the references' mean keeps the squared distances accurate.
        z = z - _mean(ops.take(z, references, axis=0), 0)
        zx = _kde_information(z, references, evaluations, std)
        for label in np.unique(labels[evaluations]):
            class_references = references[labels[references] == label]
            class_evaluations = evaluations[labels[evaluations] == label]
            if len(class_references) == 0:
                continue
            count = len(class_evaluations)
            conditional += count * _kde_information(
                z, class_references, class_evaluations, std
            )
            weight += count
    zx_given_y = conditional / weight if weight else math.nan
    return {"zx": zx, "zx_given_y": zx_given_y, "zy": zx - zx_given_y}


def _kde_information(z, references, evaluations, std: float) -> float:
    centres = ops.take(z, references, axis=0)
    points = ops.take(z, evaluations, axis=0)
    log_kernel = -_squared_distances(points, centres) / (2.0 * std**2)
    log_mixture = ops.logsumexp(log_kernel, axis=1)
    value = math.log(len(references)) - ops.sum(log_mixture) / len(evaluations)
    return float(ops.convert_to_numpy(value))


# ---------------------------------------------------------------------------
# Lossy-compression mutual information (Butakov et al.)


def knn_entropy(samples, k: int = 5, weighted: bool = True) -> float:
    """Kozachenko-Leonenko kNN differential entropy in nats, leave-one-out.

    With ``rho_(j),i`` the distance from sample i to its j-th nearest other sample
    among N in d dimensions and ``V_d = pi^(d/2) / Gamma(d/2 + 1)``, the estimate
    from the j-th neighbour is (Berrett, Samworth & Yuan, Ann. Statist. 2019)

    ``H_j = (d/N) sum_i log rho_(j),i + log V_d + log(N - 1) - psi(j)``.

    Unweighted, this is ``H_k`` (Kozachenko & Leonenko, 1987). Its bias decays
    too slowly in 4 or more dimensions; the weighted estimator of Berrett et al.
    is ``sum_j w_j H_j`` with weights (``berrett_weights``) that cancel the
    leading bias terms. Paper A uses it "above 4 dimensions"; the weights equal
    the unweighted ``e_k`` below 4 dimensions, so weighting is the default.
    Measured (this implementation, 20 seeds, 5,000 standard-normal samples,
    k = 5): the error is -0.009 +- 0.013 nats in 2 dims; in 4 dims
    weighted -0.005 +- 0.036 against unweighted -0.050 +- 0.018. Duplicate
    samples (``rho = 0``) are given the distance 1e-10 so that the estimate stays
    finite.

    Args:
        samples: ``(N, d)`` samples (host-side NumPy; converted if a tensor).
        k: neighbour order. Defaults to `5`.
        weighted: use Berrett et al.'s weights (they differ from the unweighted
            estimator only for d >= 4). Defaults to `True`.

    Example:
    ```python
    x = np.random.default_rng(0).normal(size=(5000, 2))
    knn_entropy(x)  # close to log(2 pi e) = 2.838
    ```
    """
    samples = np.asarray(ops.convert_to_numpy(samples), dtype=np.float64)
    if samples.ndim != 2:
        samples = samples.reshape(len(samples), -1)
    n, dim = samples.shape
    if n <= k or k < 1:
        raise ValueError(
            f"knn_entropy needs more samples than k >= 1. Received: {n} samples, k={k}"
        )
    weights = berrett_weights(k, dim) if weighted else np.eye(k)[k - 1]
    orders = np.flatnonzero(weights) + 1
    distances, _ = spatial.cKDTree(samples).query(samples, k=orders.max() + 1)
    log_rho = np.log(np.maximum(distances[:, orders], 1e-10))
    log_volume = (dim / 2) * math.log(math.pi) - special.gammaln(dim / 2 + 1)
    per_order = (
        dim * log_rho.mean(axis=0)
        + log_volume
        + math.log(n - 1)
        - special.digamma(orders)
    )
    return float(np.dot(weights[orders - 1], per_order))


def berrett_weights(k: int, dim: int) -> np.ndarray:
    """Weights of the weighted Kozachenko-Leonenko estimator (Berrett et al. 2019).

    The weight vector ``w`` of length k satisfies ``sum_j w_j = 1`` and
    ``sum_j w_j Gamma(j + 2l/d) / Gamma(j) = 0`` for ``l = 1, ..., floor(d/4)``
    (constraint (2) of Berrett, Samworth & Yuan), which cancels the leading
    ``floor(d/4)`` terms of the estimator's bias. Of the solutions, this takes the
    one of least Euclidean norm over all orders ``j = 1, ..., k``, the choice of the
    authors' own R package (IndepTest, ``L2OptW``): ``w = G^T (G G^T)^-1 e_1`` with
    G the constraint matrix. For ``d < 4`` there is no constraint and ``w = e_k``,
    the unweighted estimator.

    Args:
        k: largest neighbour order.
        dim: dimension d.

    Returns:
        ``(k,)`` weights.
    """
    constraints = dim // 4
    if constraints == 0:
        return np.eye(k)[k - 1]
    if k <= constraints:
        raise ValueError(
            f"k={k} is too small for the weighted estimator in {dim} dimensions: it "
            f"needs k > floor(d/4) = {constraints}. Increase k."
        )
    orders = np.arange(1, k + 1, dtype=np.float64)
    rows = [np.ones(k)] + [
        np.exp(special.gammaln(orders + 2 * level / dim) - special.gammaln(orders))
        for level in range(1, constraints + 1)
    ]
    matrix = np.stack(rows)
    target = np.zeros(len(rows))
    target[0] = 1.0
    return matrix.T @ np.linalg.solve(matrix @ matrix.T, target)


def pca_project(z, dim: int = 4):
    """Centres ``z`` and projects it on its ``dim`` leading principal axes (SVD).

    Features with ``dim`` or fewer dimensions are only centred.

    Args:
        z: ``(N, ...)`` samples, flattened per row.
        dim: output dimension. Defaults to `4`.
    """
    z = _flat(z)
    z = z - _mean(z, 0)
    if int(z.shape[1]) <= dim:
        return z
    _, _, vt = ops.svd(z, full_matrices=False, compute_uv=True)
    return _matmul(z, ops.transpose(vt[:dim]))


def whiten(x, ridge: float = 1e-6):
    """Whitens ``x``: centre, then ``x L^-T`` with ``L L^T = cov(x) + ridge I``.

    Args:
        x: ``(N, ...)`` samples, flattened per row.
        ridge: added to the covariance's diagonal. Defaults to `1e-6`.
    """
    x = _flat(x)
    x = x - _mean(x, 0)
    n, dim = int(x.shape[0]), int(x.shape[1])
    cov = _matmul(ops.transpose(x), x) / (n - 1) + ridge * ops.eye(dim, dtype=x.dtype)
    factor = ops.cholesky(cov)
    return ops.transpose(ops.solve_triangular(factor, ops.transpose(x), lower=True))


def compression_mutual_information(
    z,
    x_code,
    labels,
    k: int = 5,
    dim: int = 4,
    ridge: float = 1e-6,
) -> dict[str, float]:
    """Lossy-compression MI estimates of Butakov et al. (ICLR 2024), in nats.

    Z is projected on its ``dim`` principal axes (``pca_project``); ``x_code`` is
    X already compressed (``fit_input_encoder``); both are whitened (``whiten``).
    Then, with kNN entropies (``knn_entropy``, leave-one-out, weighted above 4
    dims):

    ``I(Z;X) = H(Z) + H(X) - H(Z, X)`` and
    ``I(Z;Y) = H(Z) - sum_y p(y) H(Z | Y = y)``.

    Rows of ``z``, ``x_code`` and ``labels`` must belong to the same samples
    (one unshuffled pass); every class needs more than ``k`` samples.

    Args:
        z: ``(N, ...)`` features.
        x_code: ``(N, c)`` compressed inputs.
        labels: ``(N,)`` integer labels.
        k: neighbour order. Defaults to `5`.
        dim: PCA dimension of Z. Defaults to `4`.
        ridge: whitening ridge. Defaults to `1e-6`.

    Returns:
        ``{"zx": I(Z;X), "zy": I(Z;Y)}``.

    Example:
    ```python
    encoder = fit_input_encoder(x, epochs=20)
    codes = encoder.predict(x, verbose=0)
    compression_mutual_information(features, codes, labels)
    ```
    """
    labels = np.asarray(ops.convert_to_numpy(labels)).reshape(-1)
    n = len(labels)
    if int(z.shape[0]) != n or int(x_code.shape[0]) != n:
        raise ValueError(
            "z, x_code and labels must have one row per sample. Received: "
            f"{z.shape[0]}, {x_code.shape[0]} and {n} rows"
        )
    with float64_scope():
        z_white = ops.convert_to_numpy(whiten(pca_project(z, dim), ridge))
        x_white = ops.convert_to_numpy(whiten(x_code, ridge))
    h_z = knn_entropy(z_white, k)
    h_x = knn_entropy(x_white, k)
    h_zx = knn_entropy(np.concatenate([z_white, x_white], axis=1), k)
    classes, counts = np.unique(labels, return_counts=True)
    if counts.min() <= k:
        raise ValueError(
            f"I(Z;Y) needs more than k={k} samples in every class. Received: class "
            f"{classes[counts.argmin()]} with {counts.min()} samples"
        )
    h_z_given_y = sum(
        count / n * knn_entropy(z_white[labels == label], k)
        for label, count in zip(classes, counts, strict=True)
    )
    return {"zx": h_z + h_x - h_zx, "zy": h_z - h_z_given_y}


@keras.saving.register_keras_serializable(package="keras_grok")
class RelativeGaussianNoise(keras.layers.Layer):
    """Adds Gaussian noise scaled by each dimension's batch std, in training only.

    Butakov et al. train their input autoencoder with noise of 0.1 relative to the
    code's scale, so that the code cannot grow to drown the noise.

    Args:
        stddev: noise std relative to the batch std of each dimension.
            Defaults to `0.1`.
        seed: seed of the noise. Defaults to `None`.
    """

    def __init__(self, stddev: float = 0.1, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if not stddev >= 0:
            raise ValueError(f"stddev must be >= 0. Received: stddev={stddev}")
        self.stddev = float(stddev)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=False):
        if not training or self.stddev == 0:
            return inputs
        scale = ops.stop_gradient(ops.std(inputs, axis=0, keepdims=True))
        noise = keras.random.normal(ops.shape(inputs), seed=self.seed_generator)
        return inputs + self.stddev * scale * ops.cast(noise, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(stddev=self.stddev, seed=self.seed)
        return config


def fit_input_encoder(
    x,
    code_dim: int = 4,
    epochs: int = 200,
    batch_size: int = 256,
    learning_rate: float = 1e-3,
    noise: float = 0.1,
    seed: int = 0,
    cache_dir: str | None = None,
) -> keras.Model:
    """Trains (or loads from cache) the autoencoder that compresses X to a code.

    Butakov et al.'s input compressor: an encoder to ``code_dim`` numbers (two
    strided convolutions and a Dense layer for ``(H, W, C)`` images, two ReLU Dense
    layers otherwise), relative Gaussian noise on the code during training, a
    Dense decoder back to X, L1 loss, Adam. Inputs are standardized by their
    global mean and std. The trained encoder's weights are saved under
    ``cache_dir`` in a file named by a SHA-256 hash of the data and of every
    argument, so later calls with the same data and settings load it instead of
    training again (training shuffles with the global RNG, so reruns without a
    cache may differ slightly).

    Args:
        x: ``(N, ...)`` inputs (the training split).
        code_dim: code size. Defaults to `4`.
        epochs: training epochs (paper A: 200). Defaults to `200`.
        batch_size: training batch size. Defaults to `256`.
        learning_rate: Adam learning rate. Defaults to `1e-3`.
        noise: code noise relative to the code's std. Defaults to `0.1`.
        seed: seed of the initializers and the noise. Defaults to `0`.
        cache_dir: folder of cached encoders; None means
            ``$KERAS_HOME/keras_grok/encoders`` (``~/.keras`` without KERAS_HOME).
            Defaults to `None`.

    Returns:
        The encoder, a ``keras.Model`` from ``x`` to ``(N, code_dim)`` codes.

    Example:
    ```python
    encoder = fit_input_encoder(x_train, epochs=200)
    codes = encoder.predict(x_train, verbose=0)
    ```
    """
    x = np.asarray(x, dtype=np.float32)
    settings = {
        "code_dim": int(code_dim),
        "epochs": int(epochs),
        "batch_size": int(batch_size),
        "learning_rate": float(learning_rate),
        "noise": float(noise),
        "seed": int(seed),
    }
    digest = hashlib.sha256(np.ascontiguousarray(x).tobytes())
    digest.update(json.dumps({**settings, "shape": x.shape}, sort_keys=True).encode())
    if cache_dir is None:
        home = os.environ.get(
            "KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras")
        )
        cache_dir = os.path.join(home, "keras_grok", "encoders")
    path = os.path.join(cache_dir, f"encoder-{digest.hexdigest()[:24]}.weights.h5")

    mean, std = float(x.mean()), float(x.std()) or 1.0
    encoder = _input_encoder(x.shape[1:], code_dim, mean, std, seed)
    if os.path.exists(path):
        encoder.load_weights(path)
        return encoder
    decoder = keras.Sequential(
        [
            keras.layers.Dense(
                128, activation="relu", kernel_initializer=_init(seed + 10)
            ),
            keras.layers.Dense(
                int(np.prod(x.shape[1:])), kernel_initializer=_init(seed + 11)
            ),
            keras.layers.Reshape(x.shape[1:]),
        ]
    )
    inputs = keras.Input(x.shape[1:])
    code = RelativeGaussianNoise(noise, seed=seed)(encoder(inputs))
    autoencoder = keras.Model(inputs, decoder(code))
    autoencoder.compile(
        keras.optimizers.Adam(learning_rate), loss="mean_absolute_error"
    )
    target = (x - mean) / std
    autoencoder.fit(x, target, epochs=epochs, batch_size=batch_size, verbose=0)
    os.makedirs(cache_dir, exist_ok=True)
    encoder.save_weights(path)
    return encoder


def _input_encoder(
    shape: Sequence[int], code_dim: int, mean: float, std: float, seed: int
) -> keras.Model:
    inputs = keras.Input(tuple(shape))
    h = keras.layers.Rescaling(1.0 / std, offset=-mean / std)(inputs)
    if len(shape) == 3:
        for index, filters in enumerate((16, 32)):
            h = keras.layers.Conv2D(
                filters,
                3,
                strides=2,
                padding="same",
                activation="relu",
                kernel_initializer=_init(seed + index),
            )(h)
    h = keras.layers.Flatten()(h)
    if len(shape) != 3:
        for index, width in enumerate((128, 64)):
            h = keras.layers.Dense(
                width, activation="relu", kernel_initializer=_init(seed + index)
            )(h)
    code = keras.layers.Dense(code_dim, kernel_initializer=_init(seed + 2))(h)
    return keras.Model(inputs, code, name="input_encoder")


def _init(seed: int) -> keras.initializers.Initializer:
    return keras.initializers.GlorotUniform(seed=seed)


# ---------------------------------------------------------------------------
# Shared helpers


def _flat(a):
    """Rows of ``a`` flattened, as float64 (call inside ``float64_scope``)."""
    a = ops.cast(ops.convert_to_tensor(a), "float64")
    return ops.reshape(a, (int(a.shape[0]), -1))


def _mean(a, axis: int):
    """``ops.mean`` keeping float64: on torch (Keras 3.15) it computes in float32."""
    return ops.sum(a, axis=axis, keepdims=True) / a.shape[axis]


def float64_scope() -> contextlib.AbstractContextManager:
    """A context in which ``keras.ops`` computes in float64 on every backend.

    JAX truncates float64 to float32 unless x64 is enabled; ``jax.enable_x64``
    turns it on for this block only, leaving the user's global setting alone.
    TensorFlow and PyTorch need nothing.
    """
    if keras.backend.backend() == "jax":
        import jax

        return jax.enable_x64(True)
    return contextlib.nullcontext()


def _matmul(a, b):
    """``a @ b`` for 2-D tensors, keeping float64.

    ``ops.einsum``, because on the torch backend (Keras 3.15) ``ops.matmul`` of
    two float64 tensors returns float32.
    """
    return ops.einsum("ij,jk->ik", a, b)


def _squared_distances(a, b):
    """``||a_i - b_j||^2`` by the expansion ``|a|^2 + |b|^2 - 2 a.b``, clipped at 0."""
    squared_a = ops.sum(ops.square(a), axis=1)[:, None]
    squared_b = ops.sum(ops.square(b), axis=1)[None, :]
    # ops.relu, not ops.maximum(., 0.0): on torch the latter returns float32.
    return ops.relu(squared_a + squared_b - 2.0 * _matmul(a, ops.transpose(b)))
