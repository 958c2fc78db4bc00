"""Complexity measures: coarse-graining, compressed sizes and the search."""

import bz2
import math

import keras
import numpy as np
import pytest

from keras_grok.data.modular import modular_dataset
from keras_grok.measures import (
    coarse_graining,
    complexity,
    description_length,
    spectral,
    weight_codec,
)
from keras_grok.models import modular_mlp
from tests.testing import assert_allclose, to_numpy

RNG = np.random.default_rng(0)


def rank_r(m: int, n: int, r: int) -> np.ndarray:
    return (RNG.normal(size=(m, r)) @ RNG.normal(size=(r, n))).astype("float32")


def test_stable_rank_matches_numpy():
    w = RNG.normal(size=(9, 5)).astype("float32")
    s = np.linalg.svd(w.astype(np.float64), compute_uv=False)
    assert_allclose(spectral.stable_rank(w), (s**2).sum() / s[0] ** 2, rtol=1e-5)
    assert float(to_numpy(spectral.stable_rank(np.zeros((3, 3), "float32")))) == 0


def test_threshold_one_keeps_the_rank_of_a_rank_r_matrix():
    for r in (1, 3, 5):
        coarse = coarse_graining.coarse_grain([rank_r(20, 30, r)], 1.0, 1e-3)
        assert coarse.ranks == (r,)
        a, b = coarse.codes[0]
        assert a.shape == (20, r) and b.shape == (r, 30)


def test_threshold_picks_the_smallest_rank_reaching_the_mass():
    w = np.diag([4.0, 3.0, 2.0, 1.0]).astype("float32")
    # 12 x 12 with singular values 12, 9, 6, 3: cumulative mass .4, .7, .9, 1.
    w = np.kron(w, np.ones((3, 3), "float32"))
    pairs = ((0.39, 1), (0.41, 2), (0.69, 2), (0.71, 3), (0.89, 3), (0.91, 4))
    for threshold, rank in pairs:
        assert coarse_graining.coarse_grain([w], threshold, 1e-3).ranks == (rank,)


def test_a_full_rank_matrix_is_stored_whole_when_factors_cost_more():
    coarse = coarse_graining.coarse_grain([RNG.normal(size=(6, 6))], 1.0, 0.01)
    assert coarse.ranks == (None,) and coarse.codes[0][0].shape == (6, 6)


def test_quantization_lands_on_the_grid_and_has_no_negative_zero():
    bin_size = 0.05
    x = np.array([-0.0, -0.01, 0.024, 0.026, -0.074, 1.23456, -7.0])
    q = coarse_graining.quantize(x, bin_size)
    np.testing.assert_array_equal(q / bin_size, np.round(q / bin_size))
    np.testing.assert_allclose(q, [0, 0, 0, 0.05, -0.05, 1.25, -7.0], atol=1e-12)
    assert not np.any(np.signbit(q[q == 0]))
    vector = np.array([-0.001, 0.3, -0.0], "float32")
    matrix = np.array([[-1e-4, 0.2], [0.1, -0.0]], "float32")
    coarse = coarse_graining.coarse_grain([matrix, vector], 1.0, 0.1)
    for weight in coarse.weights:
        assert not np.any(np.signbit(weight[weight == 0]))
        np.testing.assert_allclose(weight / 0.1, np.round(weight / 0.1), atol=1e-5)


def test_factored_weights_decode_to_the_product_of_quantized_factors():
    w = rank_r(12, 16, 2)
    coarse = coarse_graining.coarse_grain([w], 1.0, 0.01)
    a, b = (c * 0.01 for c in coarse.codes[0])
    np.testing.assert_allclose(coarse.weights[0], a @ b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(coarse.weights[0], w, atol=0.2)


def test_compressed_size_is_deterministic_for_every_codec():
    weights = [RNG.normal(size=(30, 20)), RNG.normal(size=20), rank_r(40, 50, 4)]
    sizes = {}
    for codec in weight_codec.CODECS:
        a = coarse_graining.coarse_grain(weights, 0.9, 0.02)
        b = coarse_graining.coarse_grain([np.array(w) for w in weights], 0.9, 0.02)
        assert weight_codec.serialize(a) == weight_codec.serialize(b)
        sizes[codec] = weight_codec.compressed_size(a, codec)
        assert sizes[codec] == weight_codec.compressed_size(b, codec)
    assert set(sizes) == {"bzip2", "lzma", "zlib"}
    with pytest.raises(ValueError, match="Unknown codec"):
        weight_codec.compressed_size(a, "gzip9")


def test_naive_size_is_bzip2_of_the_raw_float32_weights():
    weights = [RNG.normal(size=(8, 4)), RNG.normal(size=4)]
    raw = b"".join(np.asarray(w, "<f4").tobytes() for w in weights)
    assert weight_codec.naive_size(weights) == len(bz2.compress(raw, 9))


def test_non_finite_weights_are_refused_clearly():
    with pytest.raises(ValueError, match="NaN or infinite"):
        coarse_graining.coarse_grain([np.array([[1.0, np.nan], [0.0, 1.0]])], 1.0, 0.1)
    with pytest.raises(ValueError, match="NaN or infinite"):
        weight_codec.naive_size([np.array([np.inf])])
    with pytest.raises(ValueError, match="bin_size"):
        coarse_graining.coarse_grain([np.eye(2)], 1.0, 0.0)


@pytest.fixture(scope="module")
def trained():
    split = modular_dataset(11, "a+b", 0.6, seed=0)
    keras.utils.set_random_seed(0)
    model = modular_mlp(11, embed_dim=16, hidden=64)
    model.compile(
        keras.optimizers.Adam(1e-2),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(split.x_train, split.y_train, epochs=40, batch_size=256, verbose=0)
    return model, (split.x_train, split.y_train)


def loss_of(model, weights, data) -> float:
    clone = keras.models.clone_model(model)
    clone.set_weights(list(weights))
    logits = clone.predict_on_batch(data[0])
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    return float(to_numpy(loss(data[1], logits)))


@pytest.mark.parametrize("epsilon", [0.05, 0.5])
def test_estimate_honours_the_loss_bound_and_leaves_the_weights_alone(trained, epsilon):
    model, data = trained
    before = [to_numpy(v).copy() for v in model.weights]
    estimate = complexity.estimate_complexity(model, data, epsilon)
    after = [to_numpy(v) for v in model.weights]
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)
    base = loss_of(model, before, data)
    assert estimate.base_loss == pytest.approx(base, rel=1e-5)
    recomputed = loss_of(model, estimate.weights, data)
    assert recomputed == pytest.approx(estimate.loss, rel=1e-5, abs=1e-6)
    assert recomputed <= base + epsilon + 1e-6
    assert estimate.bin_size > 0 and 0 < estimate.threshold <= 1
    assert estimate.size_bytes < weight_codec.naive_size(before)
    assert estimate.evaluations <= 62


def test_a_larger_epsilon_never_costs_more(trained):
    model, data = trained
    factors = coarse_graining.factorize(model.trainable_weights)
    sizes = [
        complexity.estimate_complexity(model, data, e, factorizations=factors).bits
        for e in (0.02, 0.2, 2.0)
    ]
    assert sizes[0] >= sizes[1] >= sizes[2]


def test_epsilon_zero_falls_back_to_the_exact_weights_when_nothing_fits(trained):
    model, data = trained
    estimate = complexity.estimate_complexity(
        model, data, 0.0, bin_range=(0.5, 1.0), thresholds=(1.0,)
    )
    assert estimate.bin_size == 0.0 and estimate.loss == estimate.base_loss
    assert estimate.size_bytes == weight_codec.naive_size(model.trainable_weights)


def test_an_interrupted_search_restores_the_weights_bit_for_bit(trained):
    model, data = trained
    before = [to_numpy(v).copy() for v in model.weights]
    calls = []

    def failing_loss(y, predictions):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("interrupted")
        return keras.losses.sparse_categorical_crossentropy(y, predictions, True)

    with pytest.raises(RuntimeError, match="interrupted"):
        complexity.estimate_complexity(model, data, 0.1, loss_fn=failing_loss)
    for a, v in zip(before, model.weights):
        np.testing.assert_array_equal(a, to_numpy(v))


def test_bad_search_arguments_are_refused(trained):
    model, data = trained
    for kwargs in ({"epsilon": -1.0}, {"epsilon": math.nan}):
        with pytest.raises(ValueError, match="epsilon"):
            complexity.estimate_complexity(model, data, **kwargs)
    with pytest.raises(ValueError, match="bin_range"):
        complexity.estimate_complexity(model, data, 0.1, bin_range=(0.0, 1.0))


def test_data_bits_and_description_length(trained):
    model, data = trained
    logits = np.asarray(model.predict_on_batch(data[0]), np.float64)
    log_p = logits - logits.max(-1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(-1, keepdims=True))
    expected = -log_p[np.arange(len(data[1])), data[1]].sum() / np.log(2)
    bits = description_length.data_bits(model, data, batch_size=17)
    assert bits == pytest.approx(expected, rel=1e-5)
    assert description_length.description_length(800.0, bits) == pytest.approx(
        800.0 + bits
    )


def test_per_weight_thresholds_and_bins_apply_to_their_own_weight():
    weights = [rank_r(20, 30, 3), RNG.normal(size=30), rank_r(12, 16, 2)]
    coarse = coarse_graining.coarse_grain(weights, [1.0, 1.0, 0.0], [0.01, 0.5, 0.1])
    assert coarse.ranks == (3, None, 0)
    assert coarse.bin_sizes == (0.01, 0.5, 0.1) and np.isnan(coarse.bin_size)
    single = coarse_graining.coarse_grain(weights[1:2], 1.0, 0.5)
    np.testing.assert_array_equal(coarse.weights[1], single.weights[0])
    np.testing.assert_array_equal(coarse.weights[2], np.zeros((12, 16)))
    mixed, uniform = weight_codec.serialize(coarse), weight_codec.serialize(single)
    assert mixed != uniform and len(weight_codec.weight_sizes(coarse)) == 3
    with pytest.raises(ValueError, match="one value per weight"):
        coarse_graining.coarse_grain(weights, 1.0, [0.1, 0.2])


def test_balanced_factors_decode_to_the_same_rank_k_product():
    w = rank_r(30, 40, 3).astype(np.float64)
    paper = coarse_graining.coarse_grain([w], 1.0, 1e-4)
    even = coarse_graining.coarse_grain([w], 1.0, 1e-4, balanced=True)
    assert even.ranks == paper.ranks == (3,) and even.balanced == (True,)
    np.testing.assert_allclose(even.weights[0], w, rtol=0, atol=1e-3)
    u, s, vt = np.linalg.svd(w, full_matrices=False)
    a, b = (c * 1e-4 for c in even.codes[0])
    np.testing.assert_allclose(np.abs(a), np.abs(u[:, :3] * np.sqrt(s[:3])), atol=5e-5)
    np.testing.assert_allclose(
        np.abs(b), np.abs(np.sqrt(s[:3])[:, None] * vt[:3]), atol=5e-5
    )


@pytest.mark.parametrize("epsilon", [0.05, 0.5])
def test_per_matrix_search_meets_the_bound_and_beats_the_global_point(trained, epsilon):
    model, data = trained
    before = [to_numpy(v).copy() for v in model.weights]
    factors = coarse_graining.factorize(model.trainable_weights)
    glob = complexity.estimate_complexity(model, data, epsilon, factorizations=factors)
    per = complexity.estimate_complexity(
        model, data, epsilon, factorizations=factors, mode="per_matrix"
    )
    for a, v in zip(before, model.weights):
        np.testing.assert_array_equal(a, to_numpy(v))
    assert per.mode == "per_matrix" and glob.mode == "global"
    base = loss_of(model, before, data)
    recomputed = loss_of(model, per.weights, data)
    assert recomputed == pytest.approx(per.loss, rel=1e-5, abs=1e-6)
    assert recomputed <= base + epsilon + 1e-6
    assert per.size_bytes <= glob.size_bytes
    coarse = coarse_graining.coarse_grain(
        before, per.thresholds, per.bin_sizes, factors, per.balanced
    )
    assert weight_codec.compressed_size(coarse) == per.size_bytes
    assert len(set(glob.bin_sizes)) == 1 and glob.bin_sizes[0] == glob.bin_size


def test_an_unknown_mode_is_refused(trained):
    model, data = trained
    with pytest.raises(ValueError, match="mode"):
        complexity.estimate_complexity(model, data, 0.1, mode="per_layer")
