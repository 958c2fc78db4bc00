"""The empirical spectral density (ESD) of weight matrices and its power-law tail.

Martin & Mahoney (*Implicit Self-Regularization in Deep Neural Networks: Evidence
from Random Matrix Theory and Implications for Learning*, JMLR 22(165), 2021)
read a trained layer's quality off the ESD of its correlation matrix
``X = W^T W / N``: the ESD of a random matrix is a Marchenko-Pastur bulk, and
training grows a heavy tail ``p(lambda) ~ lambda^-alpha``, with ``alpha`` in
``[2, 4]`` for well-trained layers (``alpha < 2``: very heavy tailed, possibly
over-trained; large ``alpha``: barely trained). Their WeightWatcher tool fits
``alpha`` with the continuous power-law estimator of Clauset, Shalizi & Newman
(*Power-law distributions in empirical data*, SIAM Review 51(4), 2009);
``esd_power_law`` fits it the same way, so its ``alpha`` is WeightWatcher 0.7's
default ``alpha`` (``WeightWatcher().analyze()``, no ``fix_fingers``), for
matrices with at least ``MIN_EIGENVALUES`` nonzero eigenvalues.

The eigenvalues come from one float64 SVD in ``keras.ops`` per matrix. The fit
runs on host NumPy: it is a small 1-D problem (one number per column, at most a
few thousand), its scan picks one ``x_min`` by a data-dependent ``argmin``, and
float64 on the host avoids the backends' float64 pitfalls (see
``keras_grok.measures.float64``); it costs far less than the SVD.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from keras import ops

from keras_grok.measures.float64 import float64_scope
from keras_grok.measures.spectral import as_matrix
from keras_grok.utils.argument_validation import validate_float_arg

ZERO_THRESHOLD = 1e-5
"""Eigenvalues of ``W^T W`` (squared singular values, before dividing by ``N``)
at or below this are left out of the fit: WeightWatcher 0.7's ``EVALS_THRESH``."""

MIN_EIGENVALUES = 20
"""Fewest eigenvalues ``fit_power_law`` fits; with fewer, its fit is NaN.

Below 20 samples WeightWatcher 0.7 switches to another estimator (a
bias-corrected MLE with a penalized ``x_min`` choice); the standard one's bias,
about ``(alpha - 1) / n`` for a tail of ``n``, is large there anyway.
"""

_BLOCK_ELEMENTS = 2**20  # the KS scan's work array: at most 8 MB of float64


@dataclass(frozen=True)
class SpectralDensity:
    """The ESD of one weight matrix.

    Attributes:
        eigenvalues: the eigenvalues ``lambda_i = s_i^2 / N`` of
            ``X = W^T W / N``, ascending, float64 (``M`` of them).
        shape: ``(N, M)``, the matrix's 2-D view with ``N >= M``.
    """

    eigenvalues: np.ndarray
    shape: tuple[int, int]


@dataclass(frozen=True)
class PowerLawFit:
    """A continuous power law ``p(x) ~ x^-alpha`` fitted to the tail ``x >= xmin``.

    Attributes:
        alpha: the exponent (NaN if too few samples; ``inf`` for a flat tail).
        xmin: where the tail starts (one of the samples).
        ks_distance: the Kolmogorov-Smirnov distance of the fit on the tail.
        tail_size: how many samples are ``>= xmin``.
    """

    alpha: float
    xmin: float
    ks_distance: float
    tail_size: int


_NO_FIT = PowerLawFit(math.nan, math.nan, math.nan, 0)


def spectral_density(w, split: int | None = None) -> SpectralDensity:
    """The empirical spectral density of a weight matrix (Martin & Mahoney, 2021).

    With ``W`` the weight's 2-D view (see
    ``keras_grok.measures.spectral.matrix_shape``) transposed if needed so that
    it is ``N x M`` with ``N >= M``, the ESD is the set of eigenvalues of the
    correlation matrix ``X = W^T W / N``: ``lambda_i = s_i^2 / N`` for the
    singular values ``s_i`` of ``W``. They come from one SVD in float64
    (``keras.ops`` inside ``float64_scope``), as WeightWatcher's do.

    Args:
        w: a weight of at least 2 axes (any backend tensor, variable or array).
        split: overrides the 2-D view (see ``matrix_shape``). Defaults to `None`.

    Returns:
        A ``SpectralDensity``.

    Example:
    ```python
    spectral_density(np.eye(4, dtype="float32")).eigenvalues  # [0.25] * 4
    ```
    """
    with float64_scope():  # float64 weights stay float64 on JAX too
        matrix = ops.cast(as_matrix(w, split), "float64")
        s = ops.svd(matrix, full_matrices=False, compute_uv=False)
        s = ops.convert_to_numpy(s).astype(np.float64)
    rows, columns = (int(d) for d in matrix.shape)
    n = max(rows, columns)
    return SpectralDensity(np.sort(s**2 / n), (n, min(rows, columns)))


def fit_power_law(samples) -> PowerLawFit:
    """Fits a continuous power law to the tail of ``samples`` (Clauset et al., 2009).

    For each candidate ``x_min`` among the sorted samples (all but the largest),
    the maximum-likelihood exponent on the tail ``x_i >= x_min`` of ``n``
    samples is

        alpha = 1 + n / sum_i log(x_i / x_min),

    and the fitted tail CDF ``F(x) = 1 - (x / x_min)^(1 - alpha)`` is compared to
    the empirical one by the Kolmogorov-Smirnov distance
    ``D = max_j |F(x_j) - j / n|`` (``j = 0 .. n-1`` over the sorted tail; the
    empirical CDF just below each sample, as WeightWatcher 0.7 takes it). The
    ``x_min`` of least ``D`` wins (the smallest on ties). A tail whose samples
    are all equal has ``alpha = inf``.

    Args:
        samples: positive numbers, e.g. the nonzero eigenvalues of an ESD.

    Returns:
        A ``PowerLawFit``; all NaN with fewer than ``MIN_EIGENVALUES`` samples.

    Raises:
        ValueError: a sample is not finite and positive.

    Example:
    ```python
    u = (np.arange(1000) + 0.5) / 1000
    fit_power_law((1 - u) ** (-1 / 2.5)).alpha  # ~3.5: a Pareto law of 3.5
    ```
    """
    x = np.sort(np.asarray(samples, dtype=np.float64).ravel())
    if x.size and not (np.all(np.isfinite(x)) and x[0] > 0):
        raise ValueError(
            "fit_power_law needs finite positive samples. "
            f"Received: samples with min={float(x[0])}, max={float(x[-1])}"
        )
    size = x.size
    if size < MIN_EIGENVALUES:
        return _NO_FIT
    log_x = np.log(x)
    alphas = np.empty(size - 1)
    distances = np.empty(size - 1)
    block = max(1, _BLOCK_ELEMENTS // size)
    for start in range(0, size - 1, block):
        first = np.arange(start, min(start + block, size - 1))  # candidate x_min
        offset = np.arange(size)[None, :] - first[:, None]  # position in the tail
        in_tail = offset >= 0
        tail_size = (size - first)[:, None].astype(np.float64)
        log_ratio = np.where(in_tail, log_x[None, :] - log_x[first, None], 0.0)
        excess = log_ratio.sum(axis=1, keepdims=True)  # sum log(x_i / x_min)
        with np.errstate(divide="ignore", invalid="ignore"):
            alpha = 1.0 + tail_size / excess  # inf for a flat tail
            power = np.where(log_ratio > 0, (1.0 - alpha) * log_ratio, 0.0)
        fitted = -np.expm1(power)  # F(x) = 1 - (x / x_min)^(1 - alpha)
        gap = np.where(in_tail, np.abs(fitted - offset / tail_size), 0.0)
        alphas[first] = alpha[:, 0]
        distances[first] = gap.max(axis=1)
    best = int(np.argmin(distances))
    return PowerLawFit(
        alpha=float(alphas[best]),
        xmin=float(x[best]),
        ks_distance=float(distances[best]),
        tail_size=int(size - best),
    )


def esd_power_law(
    density: SpectralDensity, zero_threshold: float = ZERO_THRESHOLD
) -> PowerLawFit:
    """The power-law fit of an ESD's tail, as WeightWatcher fits ``alpha``.

    Leaves out the eigenvalues whose ``N lambda_i = s_i^2`` is at most
    ``zero_threshold`` (WeightWatcher 0.7's rule for numerically zero ones) and
    fits the rest with ``fit_power_law``. ``alpha`` and ``ks_distance`` do not
    depend on the ``1 / N`` normalization (the estimator is scale-invariant);
    ``xmin`` is in the ESD's units, ``1 / N`` times WeightWatcher's.

    Args:
        density: the matrix's ``SpectralDensity``.
        zero_threshold: the largest squared singular value counted as zero.
            Defaults to `1e-5`.

    Returns:
        A ``PowerLawFit``; all NaN with fewer than ``MIN_EIGENVALUES`` nonzero
        eigenvalues.

    Example:
    ```python
    rng = np.random.default_rng(0)
    esd_power_law(spectral_density(rng.standard_t(2, (512, 256)))).alpha  # in [2, 4]
    esd_power_law(spectral_density(rng.standard_normal((512, 256)))).alpha  # > 4
    ```
    """
    zero_threshold = validate_float_arg(zero_threshold, "zero_threshold")
    n = density.shape[0]
    eigenvalues = density.eigenvalues
    return fit_power_law(eigenvalues[eigenvalues * n > zero_threshold])


def esd_stable_rank(density: SpectralDensity) -> float:
    """Stable rank ``||W||_F^2 / ||W||_2^2 = sum_i lambda_i / max_i lambda_i``.

    Martin & Mahoney (2021) read it beside ``alpha``: it falls as the spectrum
    grows a few large eigenvalues. It equals
    ``keras_grok.measures.spectral.stable_rank`` of the same matrix: between 1
    and ``rank(W)``; 0 for a zero matrix.

    Args:
        density: the matrix's ``SpectralDensity``.

    Example:
    ```python
    esd_stable_rank(spectral_density(np.eye(4, dtype="float32")))  # 4.0
    ```
    """
    top = float(density.eigenvalues[-1])
    return float(density.eigenvalues.sum() / top) if top > 0 else 0.0
