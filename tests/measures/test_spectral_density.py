"""The ESD and its power-law alpha: the formula, closed forms, WeightWatcher."""

import logging
import math

import numpy as np
import pytest

from keras_grok.measures.spectral import stable_rank
from keras_grok.measures.spectral_density import (
    MIN_EIGENVALUES,
    ZERO_THRESHOLD,
    esd_power_law,
    esd_stable_rank,
    fit_power_law,
    spectral_density,
)
from tests.testing import to_numpy


def reference_eigenvalues(w: np.ndarray) -> np.ndarray:
    """``s^2 / N`` ascending, in float64 NumPy: the ESD of ``W^T W / N``."""
    s = np.linalg.svd(w.astype(np.float64), compute_uv=False)
    return np.sort(s**2 / max(w.shape))


def reference_fit(samples: np.ndarray) -> tuple[float, float, float, int]:
    """``(alpha, xmin, D, tail size)`` written from Clauset et al.'s formulas.

    For each ``x_min`` in the sorted samples but the largest:
    ``alpha = 1 + n / sum log(x_i / x_min)`` over the tail ``x_i >= x_min`` and
    ``D = max_j |1 - (x_j / x_min)^(1 - alpha) - j / n|``; the least ``D`` wins.
    """
    x = np.sort(samples.astype(np.float64))
    best = None
    for i in range(len(x) - 1):
        tail = x[i:]
        n = len(tail)
        alpha = 1 + n / np.sum(np.log(tail / tail[0]))
        d = np.max(np.abs(1 - (tail / tail[0]) ** (1 - alpha) - np.arange(n) / n))
        if best is None or d < best[2]:
            best = (alpha, tail[0], d, n)
    return best


def matrix_with_spectrum(eigenvalues: np.ndarray, rows: int, seed: int = 0):
    """A float64 ``rows x M`` matrix whose ESD is exactly ``eigenvalues``.

    ``W = U diag(sqrt(rows * lambda)) V^T`` with random orthonormal ``U``, ``V``.
    """
    rng = np.random.default_rng(seed)
    m = len(eigenvalues)
    u = np.linalg.qr(rng.standard_normal((rows, m)))[0]
    v = np.linalg.qr(rng.standard_normal((m, m)))[0]
    return (u * np.sqrt(rows * eigenvalues)) @ v.T


def random_matrices() -> dict[str, np.ndarray]:
    """float32 matrices: Gaussian (Marchenko-Pastur), heavy-tailed, wide, small."""
    rng = np.random.default_rng(0)
    matrices = {
        "gaussian": rng.standard_normal((300, 100)),
        "student_t3": rng.standard_t(3, (400, 200)),
        "student_t2": rng.standard_t(2, (256, 256)),
        "wide": rng.standard_t(4, (97, 256)),
        "small_scale": 0.01 * rng.standard_normal((40, 25)),
    }
    return {k: w.astype(np.float32) for k, w in matrices.items()}


@pytest.mark.parametrize("shape", [(60, 24), (24, 60), (32, 32)])
def test_eigenvalues_are_squared_singular_values_over_the_larger_side(shape):
    w = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    density = spectral_density(w)
    assert density.shape == (max(shape), min(shape))
    assert density.eigenvalues.dtype == np.float64
    np.testing.assert_allclose(
        density.eigenvalues, reference_eigenvalues(w), rtol=1e-10
    )


def test_float64_weights_keep_float64_precision():
    # The closed-form cases below need it; JAX would truncate outside x64.
    eigenvalues = np.linspace(1.0, 1.0 + 1e-9, 30)
    density = spectral_density(matrix_with_spectrum(eigenvalues, 50))
    np.testing.assert_allclose(density.eigenvalues, eigenvalues, rtol=1e-13)


@pytest.mark.parametrize("name", sorted(random_matrices()))
def test_fit_matches_the_formula(name):
    w = random_matrices()[name]
    fit = esd_power_law(spectral_density(w))
    eigenvalues = reference_eigenvalues(w)
    alpha, xmin, distance, tail = reference_fit(
        eigenvalues[eigenvalues * max(w.shape) > ZERO_THRESHOLD]
    )
    assert fit.tail_size == tail
    np.testing.assert_allclose(
        [fit.alpha, fit.xmin, fit.ks_distance], [alpha, xmin, distance], rtol=1e-9
    )


@pytest.mark.parametrize("alpha0", [2.0, 3.0, 4.5])
def test_a_pareto_spectrum_gives_its_exponent(alpha0):
    # Eigenvalues at the midpoint quantiles of a Pareto law p(x) ~ x^-alpha0 on
    # [1, inf): x_k = (1 - u_k)^(-1 / (alpha0 - 1)), u_k = (k + 1/2) / M. The
    # whole spectrum is the tail, and there the MLE has a closed form:
    # sum_k log(x_k / x_0) = (n log n - lgamma(n + 1/2) + lgamma(1/2)
    # + n log(1 - 1/(2n))) / (alpha0 - 1). Its only error is the quantiles'
    # discretization, (alpha - 1) / (alpha0 - 1) - 1 = 0.66% at M = 256 (no
    # sampling noise): the fit must give the closed form to rounding and
    # alpha0 to 1%.
    m = 256
    u = (np.arange(m) + 0.5) / m
    eigenvalues = (1 - u) ** (-1 / (alpha0 - 1))
    fit = esd_power_law(spectral_density(matrix_with_spectrum(eigenvalues, 512)))
    log_sum = m * math.log(m) - math.lgamma(m + 0.5) + math.lgamma(0.5)
    log_sum = (log_sum + m * math.log(1 - 1 / (2 * m))) / (alpha0 - 1)
    assert fit.tail_size == m
    assert fit.alpha == pytest.approx(1 + m / log_sum, rel=1e-9)
    assert fit.alpha == pytest.approx(alpha0, rel=0.01)


def test_eigenvalues_at_zero_are_left_out():
    # A rank-30 matrix of 64 columns: 34 zero eigenvalues, fit on the other 30.
    rng = np.random.default_rng(2)
    w = rng.standard_t(3, (128, 30)) @ rng.standard_normal((30, 64))
    density = spectral_density(w.astype(np.float32))
    fit = esd_power_law(density)
    nonzero = density.eigenvalues[density.eigenvalues * 128 > ZERO_THRESHOLD]
    assert len(nonzero) == 30
    assert fit == fit_power_law(nonzero)
    assert fit.alpha == pytest.approx(reference_fit(nonzero)[0], rel=1e-9)


def test_too_few_eigenvalues_give_nan():
    fit = fit_power_law(np.arange(1.0, MIN_EIGENVALUES))
    assert math.isnan(fit.alpha) and fit.tail_size == 0
    w = np.random.default_rng(3).standard_normal((50, MIN_EIGENVALUES - 1))
    assert math.isnan(esd_power_law(spectral_density(w)).alpha)
    assert math.isnan(esd_power_law(spectral_density(np.zeros((50, 30)))).alpha)


def test_a_flat_spectrum_has_an_infinite_exponent():
    fit = fit_power_law(np.full(30, 2.0))
    assert fit.alpha == math.inf and fit.xmin == 2.0


def test_non_positive_samples_are_refused():
    with pytest.raises(ValueError, match="Received: samples with min=0.0"):
        fit_power_law(np.arange(30.0))
    with pytest.raises(ValueError, match="finite positive"):
        fit_power_law(np.array([1.0, np.nan] * 15))


def test_stable_rank_of_orthonormal_columns_is_their_number():
    q = np.linalg.qr(np.random.default_rng(4).standard_normal((40, 12)))[0]
    assert esd_stable_rank(spectral_density(q)) == pytest.approx(12, rel=1e-12)
    assert esd_stable_rank(spectral_density(q.T)) == pytest.approx(12, rel=1e-12)


def test_stable_rank_of_a_rank_one_matrix_is_one():
    rng = np.random.default_rng(5)
    w = np.outer(rng.standard_normal(30), rng.standard_normal(20))
    assert esd_stable_rank(spectral_density(w)) == pytest.approx(1, rel=1e-12)
    assert esd_stable_rank(spectral_density(np.zeros((30, 20)))) == 0.0


@pytest.mark.parametrize("name", sorted(random_matrices()))
def test_stable_rank_agrees_with_the_spectral_module(name):
    w = random_matrices()[name]
    expected = float(to_numpy(stable_rank(w)))
    assert esd_stable_rank(spectral_density(w)) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("name", sorted(random_matrices()))
def test_alpha_is_weightwatchers(name):
    weightwatcher = pytest.importorskip("weightwatcher")
    logging.getLogger("weightwatcher").setLevel(logging.ERROR)
    w = random_matrices()[name]
    details = weightwatcher.WeightWatcher(model={"layer.weight": w}).analyze()
    fit = esd_power_law(spectral_density(w))
    assert fit.tail_size == int(details["num_pl_spikes"][0])
    np.testing.assert_allclose(
        [fit.alpha, fit.xmin * max(w.shape), fit.ks_distance],
        [details["alpha"][0], details["xmin"][0], details["D"][0]],
        rtol=1e-8,
    )
