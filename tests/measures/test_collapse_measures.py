"""Neural-collapse measures vs. a float64 NumPy reference written from the formulas."""

from __future__ import annotations

import numpy as np
import pytest

from keras_grok.measures import collapse
from tests.testing import assert_allclose, to_numpy

RTOL = 1e-4  # float32 measures vs the float64 reference


def _data(seed=0, n=1500, k=7, d=24, spread=3.0):
    rng = np.random.default_rng(seed)
    labels = np.concatenate([np.arange(k), rng.integers(0, k, n - k)])
    centres = rng.normal(size=(k, d)) * spread + 1.0
    features = (
        centres[labels]
        + rng.normal(size=(n, d)) * rng.uniform(0.5, 2.0, k)[labels, None]
    )
    return features.astype(np.float32), labels


def _reference(features, labels, k):
    """Paper A's figures in float64, directly from the definitions."""
    h = features.astype(np.float64)
    n = len(h)
    counts = np.bincount(labels, minlength=k)
    means = np.stack([h[labels == c].mean(axis=0) for c in range(k)])
    global_mean = h.mean(axis=0)
    within = sum(((h[labels == c] - means[c]) ** 2).sum() for c in range(k)) / n
    between = (counts / n * ((means - global_mean) ** 2).sum(axis=1)).sum()
    norms = np.linalg.norm(h, axis=1)
    singular = np.linalg.svd(means, compute_uv=False)
    sigma_w = (
        sum(
            (h[labels == c] - means[c]).T @ (h[labels == c] - means[c])
            for c in range(k)
        )
        / n
    )
    sigma_b = (means - global_mean).T @ (means - global_mean) / k
    return {
        "within": within,
        "between": between,
        "nc1": within / between,
        "nc1_papyan": np.trace(sigma_w @ np.linalg.pinv(sigma_b)) / k,
        "rnc1_mean": within / norms.mean() ** 2,
        "rnc1_max": within / norms.max() ** 2,
        "nc2": singular.max() / singular.min(),
        "mean_norm": norms.mean(),
        "max_norm": norms.max(),
        "means": means,
    }


def _measured(stats):
    return {
        "within": collapse.within_class_variance(stats),
        "between": collapse.between_class_variance(stats),
        "nc1": collapse.nc1(stats),
        "nc1_papyan": collapse.nc1_papyan(stats),
        "rnc1_mean": collapse.rnc1(stats),
        "rnc1_max": collapse.rnc1(stats, norm="max"),
        "nc2": collapse.nc2(stats),
        "mean_norm": collapse.mean_feature_norm(stats),
        "max_norm": collapse.max_feature_norm(stats),
    }


@pytest.mark.parametrize("seed", [0, 1])
def test_measures_match_float64_reference(seed):
    features, labels = _data(seed)
    stats = collapse.collapse_statistics((features, labels), 7, covariance=True)
    reference = _reference(features, labels, 7)
    for name, value in _measured(stats).items():
        assert isinstance(value, float), name
        np.testing.assert_allclose(value, reference[name], rtol=RTOL, err_msg=name)
    assert_allclose(stats.means, reference["means"], rtol=RTOL, atol=1e-5)
    assert stats.num_samples == len(labels)


def test_streamed_statistics_equal_one_shot_ones():
    features, labels = _data(2)
    one_shot = collapse.collapse_statistics((features, labels), 7, covariance=True)
    batches = [(features[i : i + 97], labels[i : i + 97]) for i in range(0, 1500, 97)]
    streamed = collapse.collapse_statistics(batches, 7, covariance=True)
    for field in ("counts", "means", "deviations", "norm_sums", "max_norms", "scatter"):
        assert_allclose(
            getattr(streamed, field),
            getattr(one_shot, field),
            rtol=1e-5,
            atol=1e-3,
        )
    for name, value in _measured(streamed).items():
        np.testing.assert_allclose(value, _measured(one_shot)[name], rtol=1e-5)


def test_sums_and_squared_norm_sums_match_their_definitions():
    features, labels = _data(3, n=300)
    stats = collapse.collapse_statistics((features, labels), 7)
    h = features.astype(np.float64)
    sums = np.stack([h[labels == c].sum(axis=0) for c in range(7)])
    squares = np.array([(h[labels == c] ** 2).sum() for c in range(7)])
    assert_allclose(stats.sums, sums, rtol=RTOL, atol=1e-3)
    assert_allclose(stats.squared_norm_sums, squares, rtol=RTOL)


def test_select_splits_two_data_sets_measured_in_one_pass():
    a, ya = _data(4, n=400)
    b, yb = _data(5, n=300)
    joint = collapse.collapse_statistics(
        (np.concatenate([a, b]), np.concatenate([ya, yb + 7])), 14
    )
    for part, (x, y) in zip(
        (joint.select(0, 7), joint.select(7, 14)), ((a, ya), (b, yb))
    ):
        alone = collapse.collapse_statistics((x, y), 7)
        np.testing.assert_allclose(collapse.rnc1(part), collapse.rnc1(alone), rtol=1e-5)
        np.testing.assert_allclose(
            collapse.max_feature_norm(part), collapse.max_feature_norm(alone), rtol=1e-6
        )


def test_perfectly_collapsed_features_have_zero_nc1_and_rnc1():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(5), 20)
    features = (rng.normal(size=(5, 8)) * 4)[labels].astype(np.float32)
    stats = collapse.collapse_statistics((features, labels), 5)
    assert collapse.within_class_variance(stats) == pytest.approx(0.0, abs=1e-9)
    assert collapse.nc1(stats) == pytest.approx(0.0, abs=1e-9)
    assert collapse.rnc1(stats) == pytest.approx(0.0, abs=1e-9)
    assert collapse.rnc1(stats, norm="max") == pytest.approx(0.0, abs=1e-9)


def test_nc2_is_one_for_orthogonal_equal_norm_means():
    labels = np.repeat(np.arange(4), 3)
    means = 2.5 * np.eye(6, dtype=np.float32)[:4]
    stats = collapse.collapse_statistics((means[labels], labels), 4)
    assert collapse.nc2(stats) == pytest.approx(1.0, rel=1e-5)


def test_nc3_matches_reference_and_is_zero_for_dual_classifier():
    features, labels = _data(6, n=500)
    stats = collapse.collapse_statistics((features, labels), 7)
    reference = _reference(features, labels, 7)
    centred = (reference["means"] - features.astype(np.float64).mean(axis=0)).T
    kernel = np.random.default_rng(1).normal(size=(24, 7))
    expected = (
        (kernel / np.linalg.norm(kernel) - centred / np.linalg.norm(centred)) ** 2
    ).sum()
    np.testing.assert_allclose(collapse.nc3(stats, kernel), expected, rtol=RTOL)
    assert collapse.nc3(stats, 3.0 * centred) == pytest.approx(0.0, abs=1e-6)


def test_nc4_matches_nearest_class_mean_reference():
    features, labels = _data(7, n=600, spread=1.0)
    stats = collapse.collapse_statistics((features, labels), 7)
    means = _reference(features, labels, 7)["means"]
    logits = np.random.default_rng(2).normal(size=(600, 7))
    logits[:400] += 5 * np.eye(7)[labels[:400]]
    distances = ((features[:, None, :] - means[None]) ** 2).sum(-1)
    expected = np.mean(distances.argmin(1) == logits.argmax(1))
    batches = [(features[i : i + 256], logits[i : i + 256]) for i in range(0, 600, 256)]
    assert collapse.nc4(batches, stats) == pytest.approx(expected, abs=1e-12)


def test_batch_statistics_run_inside_a_compiled_function():
    import keras

    features, labels = _data(8, n=200)
    inputs = keras.Input((24,))
    label_input = keras.Input((), dtype="int32")
    stats = keras.layers.Lambda(
        lambda t: collapse.batch_collapse_statistics(t[0], t[1], 7).deviations
    )([inputs, label_input])
    model = keras.Model([inputs, label_input], stats)
    compiled = to_numpy(model.predict_on_batch([features, labels]))
    eager = collapse.collapse_statistics((features, labels), 7).deviations
    assert_allclose(compiled, eager, rtol=1e-5)


def test_labels_out_of_range_raise():
    features, labels = _data(9, n=50)
    labels[3] = 7
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 7\)"):
        collapse.collapse_statistics((features, labels), 7)
    labels[3] = -1
    with pytest.raises(ValueError, match="out of range"):
        collapse.collapse_statistics((features, labels), 7)


def test_empty_class_raises_instead_of_nan():
    features, labels = _data(10, n=60)
    stats = collapse.collapse_statistics((features, labels), 9)
    with pytest.raises(ValueError, match=r"num_classes=9, 2 of them empty: \[7, 8\]"):
        collapse.nc1(stats)
    with pytest.raises(ValueError, match="empty"):
        collapse.rnc1(stats)


def test_more_classes_than_dimensions_raises_for_nc2():
    rng = np.random.default_rng(0)
    labels = np.arange(6).repeat(2)
    stats = collapse.collapse_statistics(
        (rng.normal(size=(12, 4)).astype(np.float32), labels), 6
    )
    with pytest.raises(ValueError, match="K=6 classes, d=4"):
        collapse.nc2(stats)


def test_other_bad_inputs_raise():
    features, labels = _data(11, n=40)
    with pytest.raises(ValueError, match="one row per label"):
        collapse.collapse_statistics([(features[:30], labels)], 7)
    with pytest.raises(ValueError, match="integer class indices"):
        collapse.collapse_statistics([(features, labels + 0.5)], 7)
    with pytest.raises(ValueError, match="no batches"):
        collapse.collapse_statistics([], 7)
    stats = collapse.collapse_statistics((features, labels), 7)
    with pytest.raises(ValueError, match='norm must be "mean" or "max"'):
        collapse.rnc1(stats, norm="sup")
    with pytest.raises(ValueError, match="covariance=True"):
        collapse.nc1_papyan(stats)
    with pytest.raises(ValueError, match=r"shape \(d, K\)"):
        collapse.nc3(stats, np.zeros((7, 24)))
    zero = collapse.collapse_statistics((np.zeros_like(features), labels), 7)
    with pytest.raises(ValueError, match="B is 0, below 1e-30. The class means"):
        collapse.nc1(zero)
    with pytest.raises(ValueError, match="squared feature norm is 0, below 1e-30"):
        collapse.rnc1(zero)


@pytest.mark.parametrize(
    "scale, words",
    [(1e20, "overflow float32"), (1e-25, "underflow"), (1e-18, "below 1e-30")],
)
def test_features_beyond_float32_squares_are_refused_not_nan(scale, words):
    # A diverging network's features of size 1e20 gave RNC1 = NaN (inf / inf);
    # tiny ones were said to be zero.
    rng = np.random.default_rng(0)
    labels = np.arange(30) % 3
    features = (rng.normal(size=(3, 4))[labels] * 3 + rng.normal(size=(30, 4))) * scale
    stats = collapse.batch_collapse_statistics(features.astype("float32"), labels, 3)
    for measure in (collapse.rnc1, collapse.nc1):
        with pytest.raises(ValueError, match=words):
            measure(stats)
    if scale < 1:
        covariance = collapse.batch_collapse_statistics(
            features.astype("float32"), labels, 3, covariance=True
        )
        with pytest.raises(ValueError, match=words):
            collapse.nc1_papyan(covariance)
    unscaled = collapse.batch_collapse_statistics(
        (features / scale).astype("float32"), labels, 3
    )
    assert np.isfinite(collapse.rnc1(unscaled))  # rescaled, as the message says


def test_compiled_figures_equal_the_checked_measures():
    features, labels = _data(12)
    stats = collapse.collapse_statistics((features, labels), 7)
    figures = collapse.collapse_figures(stats)
    reference = _reference(features, labels, 7)
    for name, key in (
        ("nc1", "nc1"),
        ("rnc1", "rnc1_mean"),
        ("nc2", "nc2"),
        ("within_class_variance", "within"),
        ("between_class_variance", "between"),
        ("mean_feature_norm", "mean_norm"),
    ):
        np.testing.assert_allclose(to_numpy(figures[name]), reference[key], rtol=RTOL)
    np.testing.assert_allclose(
        to_numpy(collapse.collapse_figures(stats, "max")["rnc1"]),
        reference["rnc1_max"],
        rtol=RTOL,
    )
    np.testing.assert_allclose(
        collapse.nc2_of_means(reference["means"]), reference["nc2"], rtol=1e-12
    )
    assert np.isnan(collapse.nc2_of_means(np.ones((5, 3))))


def _constant_column_data():
    rng = np.random.default_rng(2)
    features = rng.normal(size=(30, 6)) + np.repeat(np.eye(3, 6) * 3, 10, axis=0)
    return features, np.tile(np.arange(3), 10)


@pytest.mark.parametrize("constant", [0.0, 5.0, 100.0, 1000.123])
def test_nc1_papyan_ignores_a_constant_feature(constant):
    # A constant feature (a saturated unit) adds no scatter; on JAX its float32
    # rounding left a singular value of ~1e-6 whose 1 / s^2 made NC1 6.65e10.
    features, labels = _constant_column_data()
    wider = np.concatenate([features, np.full((30, 1), constant)], axis=1)
    expected = _reference(features, labels, 3)["nc1_papyan"]
    stats = collapse.batch_collapse_statistics(wider, labels, 3, covariance=True)
    assert collapse.nc1_papyan(stats) == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("scale", [1e-12, 1.0, 1e15])
def test_nc1_papyan_is_scale_free(scale):
    # s^2 was clamped at 1e-30: features of size 1e-15 gave 3.83 for 7.62.
    features, labels = _constant_column_data()
    expected = _reference(features, labels, 3)["nc1_papyan"]
    stats = collapse.batch_collapse_statistics(
        features * scale, labels, 3, covariance=True
    )
    assert collapse.nc1_papyan(stats) == pytest.approx(expected, rel=1e-4)


def test_nc1_papyan_with_fewer_dimensions_than_classes():
    rng = np.random.default_rng(3)
    labels = np.repeat(np.arange(10), 20)
    features = rng.normal(size=(200, 3)) + rng.normal(size=(10, 3))[labels] * 3
    expected = _reference(features, labels, 10)["nc1_papyan"]
    stats = collapse.batch_collapse_statistics(features, labels, 10, covariance=True)
    assert collapse.nc1_papyan(stats) == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("offset", [3.0, 10.0, 100.0])
def test_nc1_papyan_is_unchanged_by_a_common_offset(offset):
    # Sigma_W and Sigma_B are centred; an offset of 3 gave 9.6e11 for 7.62 (the
    # float32 rounding of the centring left a noise singular value).
    features, labels = _constant_column_data()
    shift = offset * np.random.default_rng(7).normal(size=features.shape[1])
    expected = _reference(features, labels, 3)["nc1_papyan"]
    for shifted in (features + offset, features + shift):
        stats = collapse.batch_collapse_statistics(shifted, labels, 3, covariance=True)
        assert collapse.nc1_papyan(stats) == pytest.approx(expected, rel=1e-4)
