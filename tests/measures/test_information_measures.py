"""Information-plane estimators against float64 NumPy references and closed forms."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from keras_grok.measures import information, lossy_compression
from tests.testing import to_numpy

RTOL = 1e-4


def _data(seed=0, n=300, k=5, d=16, dx=12):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    z = (rng.normal(size=(k, d)) * 2)[y] + rng.normal(size=(n, d))
    x = rng.normal(size=(n, dx)) + 0.5 * z[:, :dx]
    return z.astype("float32"), x.astype("float32"), y


def _gram_reference(a, sigma=5.0):
    a = a.astype(np.float64).reshape(len(a), -1)
    n, d = a.shape
    squared = ((a[:, None] - a[None]) ** 2).sum(-1)
    return np.exp(-squared / (2 * sigma**2 * d)) @ (np.eye(n) - np.ones((n, n)) / n)


def _resolvent_reference(gram, epsilon=1e-5):
    n = len(gram)
    return gram @ np.linalg.inv(gram + epsilon * n * np.eye(n))


def _nhsic_reference(z, other, linear=False):
    values = []
    for index in information.hsic_batches(len(z), 100, 3, 0):
        r_z = _resolvent_reference(_gram_reference(z[index]))
        o = other[index].astype(np.float64)
        r_o = _resolvent_reference(o @ o.T if linear else _gram_reference(o))
        values.append(np.trace(r_z @ r_o))
    return np.mean(values)


def _kde_reference(z, y, references, evaluations, std=0.1):
    z = z.astype(np.float64)

    def mi(refs, evals):
        squared = ((z[evals][:, None] - z[refs][None]) ** 2).sum(-1)
        log_kernel = -squared / (2 * std**2)
        top = log_kernel.max(axis=1, keepdims=True)
        log_mix = (top[:, 0] + np.log(np.exp(log_kernel - top).sum(axis=1))) - np.log(
            len(refs)
        )
        # log N(0; 0, s^2 I) - log((1/R) sum_j N(z_i; z_j, s^2 I)), constants cancel
        return np.mean(-log_mix)

    zx = mi(references, evaluations)
    total, weight = 0.0, 0
    for c in np.unique(y[evaluations]):
        refs = references[y[references] == c]
        evals = evaluations[y[evaluations] == c]
        if len(refs):
            total += len(evals) * mi(refs, evals)
            weight += len(evals)
    return zx, total / weight


@pytest.mark.parametrize("scale", [1.0, 1e3, 1e6, 1e15])
def test_gram_matrices_called_alone_are_float64_on_every_backend(scale):
    # Outside normalized_hsic's float64 scope, JAX computed the Gram matrix in
    # float32: features of size 1e6 gave a diagonal of 0 instead of 1.
    a = np.random.default_rng(0).normal(size=(20, 16)) * scale
    gram = to_numpy(information.gaussian_gram(a, sigma=5.0 * scale))
    np.testing.assert_allclose(gram, _gram_reference(a, sigma=5.0 * scale), atol=1e-9)
    linear = to_numpy(information.linear_gram(a))
    np.testing.assert_allclose(linear, a @ a.T, rtol=1e-12)
    whitened = to_numpy(lossy_compression.whiten(a + 1e3 * scale, ridge=0.0))
    np.testing.assert_allclose(np.cov(whitened.T), np.eye(16), atol=1e-6)


def test_nhsic_matches_float64_reference():
    z, x, y = _data()
    one_hot = np.eye(5, dtype="float32")[y]
    np.testing.assert_allclose(
        information.normalized_hsic(z, x), _nhsic_reference(z, x), rtol=RTOL
    )
    np.testing.assert_allclose(
        information.normalized_hsic(z, one_hot, "linear"),
        _nhsic_reference(z, one_hot, linear=True),
        rtol=RTOL,
    )


def test_nhsic_of_z_independent_of_y_is_far_below_z_a_function_of_y():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 10, 300)
    one_hot = np.eye(10, dtype="float32")[y]
    # One-dimensional Z: with epsilon = 1e-5, R_Z of a higher-dimensional Z nears
    # a projection of high rank and nHSIC saturates even for independent Z.
    dependent = (rng.normal(size=(10, 1)) * 3)[y].astype("float32")
    independent = rng.normal(size=(300, 1)).astype("float32") * 3
    high = information.normalized_hsic(dependent, one_hot, "linear")
    low = information.normalized_hsic(independent, one_hot, "linear")
    # Not a share: above 1, below the number of classes (see the docstring).
    assert 4.0 < high < 10.0 and low < 0.2 * high


def test_kde_mutual_information_matches_float64_reference():
    z, _, y = _data(2, n=700, d=6, dx=6)
    z = z * 0.05
    result = information.kde_mutual_information(
        z, y, num_references=200, num_evaluations=400, seed=3
    )
    order = np.random.default_rng(3).permutation(700)
    zx, zx_given_y = _kde_reference(z, y, order[:200], order[200:600])
    np.testing.assert_allclose(result["zx"], zx, rtol=RTOL)
    np.testing.assert_allclose(result["zx_given_y"], zx_given_y, rtol=RTOL)
    np.testing.assert_allclose(result["zy"], zx - zx_given_y, rtol=RTOL, atol=1e-9)
    assert 0 < result["zx"] <= math.log(200) + 1e-9


@pytest.mark.parametrize("dim", [2, 4])
def test_knn_entropy_of_a_standard_normal_is_close_to_closed_form(dim):
    samples = np.random.default_rng(dim).normal(size=(5000, dim))
    closed_form = 0.5 * dim * math.log(2 * math.pi * math.e)
    assert abs(lossy_compression.knn_entropy(samples) - closed_form) < 0.05


@pytest.mark.parametrize("scale", [1e-11, 1e-20])
def test_knn_entropy_follows_the_scaling_law_for_tiny_samples(scale):
    # H(s X) = H(X) + d log s. Every distance below 1e-10 was floored, not only
    # duplicates: samples of size 1e-11 gave -40.7 nats for -47.9.
    samples = np.random.default_rng(0).normal(size=(300, 2))
    expected = lossy_compression.knn_entropy(samples, k=5) + 2 * math.log(scale)
    assert lossy_compression.knn_entropy(samples * scale, k=5) == pytest.approx(
        expected, rel=1e-9
    )


def test_berrett_weights_cancel_the_leading_bias_terms():
    weights = lossy_compression.berrett_weights(5, 8)
    assert weights.sum() == pytest.approx(1.0)
    orders = np.arange(1, 6)
    for level in (1, 2):
        terms = np.exp(
            np.vectorize(math.lgamma)(orders + 2 * level / 8)
            - np.vectorize(math.lgamma)(orders)
        )
        assert abs(weights @ terms) < 1e-9
    np.testing.assert_array_equal(lossy_compression.berrett_weights(5, 3), np.eye(5)[4])


def test_whitening_gives_identity_covariance_and_pca_keeps_leading_axes():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(500, 3)) @ np.array([[3.0, 0, 0], [1, 1, 0], [0, 2, 0.5]])
    with information.float64_scope():
        white = to_numpy(lossy_compression.whiten(x))
        projected = to_numpy(lossy_compression.pca_project(x, 2))
    np.testing.assert_allclose(np.cov(white.T), np.eye(3), atol=1e-4)  # ridge 1e-6
    centred = x - x.mean(0)
    singular = np.linalg.svd(centred, compute_uv=False)
    np.testing.assert_allclose(
        np.linalg.svd(projected, compute_uv=False), singular[:2], rtol=1e-8
    )


def test_compression_mi_sees_dependence_and_label_information():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 4, 2000)
    code = rng.normal(size=(2000, 4))
    z = np.concatenate([code[:, :2] + 0.1 * rng.normal(size=(2000, 2)), y[:, None]], 1)
    dependent = lossy_compression.compression_mutual_information(z, code, y)
    independent = lossy_compression.compression_mutual_information(
        rng.normal(size=(2000, 3)), code, y
    )
    # kNN bias in the 7-dimensional joint space is about 0.1 nats at N = 2000.
    assert dependent["zx"] > 1.0 and abs(independent["zx"]) < 0.25
    assert dependent["zy"] > 1.0 and abs(independent["zy"]) < 0.1


def test_input_encoder_is_cached_on_disk(tmp_path):
    x = np.random.default_rng(6).normal(size=(64, 6)).astype("float32")
    first = lossy_compression.fit_input_encoder(
        x, epochs=1, batch_size=32, cache_dir=str(tmp_path)
    )
    files = os.listdir(tmp_path)
    assert len(files) == 1 and files[0].endswith(".weights.h5")
    again = lossy_compression.fit_input_encoder(
        x, epochs=1, batch_size=32, cache_dir=str(tmp_path)
    )
    assert os.listdir(tmp_path) == files
    np.testing.assert_allclose(to_numpy(again(x)), to_numpy(first(x)), rtol=1e-6)
    assert tuple(again(x).shape) == (64, 4)


def test_bad_inputs_raise():
    z, x, y = _data(7, n=50)
    with pytest.raises(ValueError, match='other_kernel must be "gaussian"'):
        information.normalized_hsic(z, x, "cosine")
    with pytest.raises(ValueError, match="as many rows"):
        information.normalized_hsic(z, x[:40])
    with pytest.raises(ValueError, match="more samples than references"):
        information.kde_mutual_information(z, y, num_references=50)
    with pytest.raises(ValueError, match="one per row"):
        information.kde_mutual_information(z, y[:10], num_references=5)
    with pytest.raises(ValueError, match="more samples than k"):
        lossy_compression.knn_entropy(z[:5])
    with pytest.raises(ValueError, match="more than k=5 samples in every class"):
        lossy_compression.compression_mutual_information(
            z, x[:, :4], np.arange(50) % 20
        )


def test_resolvent_and_trace_take_arrays_and_lists_on_every_backend():
    # A NumPy Gram matrix raised a raw TypeError on torch (array + tensor), and a
    # list an AttributeError on every backend (its shape was read first).
    gram = np.random.default_rng(0).normal(size=(5, 5))
    gram = gram @ gram.T
    expected = gram @ np.linalg.inv(gram + 1e-3 * 5 * np.eye(5))
    for given in (gram, gram.astype("float32"), gram.tolist()):
        resolvent = to_numpy(information.kernel_resolvent(given, 1e-3))
        np.testing.assert_allclose(resolvent, expected, atol=1e-4)
    assert information.hsic_trace(expected, expected.tolist()) == pytest.approx(
        np.trace(expected @ expected), rel=1e-12
    )
