"""CollapseMonitor and FeatureTap: figures in History, records per step, errors."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from keras_grok.callbacks import CollapseMonitor
from keras_grok.layers import FeatureTap
from keras_grok.measures import collapse
from tests.testing import to_numpy

K, D, N = 4, 6, 64


def _data(seed=0, n=N):
    rng = np.random.default_rng(seed)
    y = np.concatenate([np.arange(K), rng.integers(0, K, n - K)]).astype("int32")
    x = (rng.normal(size=(K, 5)) * 2)[y] + rng.normal(size=(n, 5))
    return x.astype("float32"), y


def _functional(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((5,))
    h = keras.layers.Dense(D, activation="tanh", name="features")(inputs)
    outputs = keras.layers.Dense(K, name="logits")(h)
    model = keras.Model(inputs, outputs)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


class TappedClassifier(keras.Model):
    def __init__(self):
        super().__init__()
        self.hidden = keras.layers.Dense(D, activation="tanh")
        self.tap = FeatureTap(name="penultimate")
        self.out = keras.layers.Dense(K)

    def call(self, x):
        return self.out(self.tap(self.hidden(x)))


def _expected(features, labels):
    stats = collapse.collapse_statistics((features, labels), K)
    return {
        "nc1": collapse.nc1(stats),
        "rnc1": collapse.rnc1(stats),
        "nc2": collapse.nc2(stats),
        "within_class_variance": collapse.within_class_variance(stats),
        "between_class_variance": collapse.between_class_variance(stats),
        "mean_feature_norm": collapse.mean_feature_norm(stats),
    }


def test_figures_reach_history_and_match_the_measures():
    x, y = _data()
    xv, yv = _data(1, n=40)
    model = _functional()
    monitor = CollapseMonitor((x, y), (xv, yv), schedule=[1, 2, 5])
    history = model.fit(
        x, y, batch_size=16, epochs=2, callbacks=[monitor], verbose=0
    ).history
    for name in ("train_nc1", "train_rnc1", "train_nc2", "test_nc1", "test_rnc1"):
        assert len(history[name]) == 2 and all(math.isfinite(v) for v in history[name])
        assert isinstance(history[name][-1], float)
    assert [r["step"] for r in monitor.records] == [1, 2, 5, 8]
    extractor = keras.Model(model.input, model.get_layer("features").output)
    for prefix, (xs, ys) in (("train_", (x, y)), ("test_", (xv, yv))):
        expected = _expected(to_numpy(extractor(xs)), ys)
        for name, value in expected.items():
            np.testing.assert_allclose(
                monitor.latest[prefix + name], value, rtol=1e-4, err_msg=name
            )
    assert history["test_rnc1"][-1] == monitor.latest["test_rnc1"]


def test_feature_tap_reads_features_of_a_subclassed_model():
    x, y = _data(2)
    keras.utils.set_random_seed(0)
    model = TappedClassifier()
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    monitor = CollapseMonitor((x, y), layer="penultimate", schedule=[1, 3])
    model.fit(x, y, batch_size=32, epochs=2, callbacks=[monitor], verbose=0)
    features = to_numpy(model.hidden(x))
    for name, value in _expected(features, y).items():
        np.testing.assert_allclose(monitor.latest[f"train_{name}"], value, rtol=1e-4)
    assert model.tap.captured is None


def test_feature_tap_is_an_identity():
    tap = FeatureTap(name="features")
    value = np.arange(6, dtype="float32").reshape(2, 3)
    np.testing.assert_array_equal(to_numpy(tap(value)), value)


def test_nc3_is_logged_given_the_classifier_layer():
    x, y = _data(3)
    model = _functional()
    monitor = CollapseMonitor((x, y), classifier="logits", schedule=[1])
    model.fit(x, y, epochs=1, callbacks=[monitor], verbose=0)
    extractor = keras.Model(model.input, model.get_layer("features").output)
    stats = collapse.collapse_statistics((to_numpy(extractor(x)), y), K)
    kernel = model.get_layer("logits").kernel
    np.testing.assert_allclose(
        monitor.latest["train_nc3"], collapse.nc3(stats, kernel), rtol=1e-4
    )


def _float64_reference(features, labels):
    """Paper A's collapse figures computed directly in float64 NumPy."""
    h = np.asarray(features, np.float64)
    means = np.stack([h[labels == c].mean(axis=0) for c in range(K)])
    counts = np.bincount(labels, minlength=K).astype(np.float64)
    within = np.sum((h - means[labels]) ** 2) / len(h)
    centred = means - h.mean(axis=0)
    between = np.sum(counts / len(h) * np.sum(centred**2, axis=1))
    norm = np.linalg.norm(h, axis=1).mean()
    singular = np.linalg.svd(means, compute_uv=False)
    return {
        "nc1": within / between,
        "rnc1": within / norm**2,
        "nc2": singular.max() / singular.min(),
        "within_class_variance": within,
        "between_class_variance": between,
        "mean_feature_norm": norm,
    }


@pytest.mark.parametrize(
    "batch_size", [10, 64, 16384], ids=["7-chunks", "2-sets", "1-chunk"]
)
def test_streamed_chunks_match_a_float64_reference(batch_size):
    # 64 train + 40 test rows: 10 per call makes 11 chunks, the last of 4 rows,
    # one straddling the two sets; 16384 takes the single-chunk path.
    x, y = _data(4)
    xv, yv = _data(5, n=40)
    model = _functional()
    monitor = CollapseMonitor((x, y), (xv, yv), schedule=[1], batch_size=batch_size)
    model.fit(x, y, epochs=1, callbacks=[monitor], verbose=0)
    extractor = keras.Model(model.input, model.get_layer("features").output)
    for prefix, (xs, ys) in (("train_", (x, y)), ("test_", (xv, yv))):
        expected = _float64_reference(to_numpy(extractor(xs)), ys)
        for name, value in expected.items():
            np.testing.assert_allclose(
                monitor.latest[prefix + name], value, rtol=2e-5, err_msg=prefix + name
            )


def test_unknown_layer_lists_the_model_layers():
    x, y = _data()
    model = _functional()
    monitor = CollapseMonitor((x, y), layer="penultimate")
    with pytest.raises(ValueError, match=r"no layer named 'penultimate'.*'features'"):
        model.fit(x, y, epochs=1, callbacks=[monitor], verbose=0)


def test_subclassed_model_without_a_tap_asks_for_one():
    x, y = _data()
    model = TappedClassifier()
    model.compile("sgd", "sparse_categorical_crossentropy")
    model(x[:2])
    monitor = CollapseMonitor((x, y), layer=model.hidden.name)
    with pytest.raises(ValueError, match="FeatureTap"):
        model.fit(x, y, epochs=1, callbacks=[monitor], verbose=0)


def test_bad_data_raises():
    x, y = _data()
    with pytest.raises(ValueError, match="labels must lie in"):
        CollapseMonitor((x, y), num_classes=3)
    with pytest.raises(ValueError, match=r"2 of 6 classes have none, e\.g\. \[4, 5\]"):
        CollapseMonitor((x, y), num_classes=6)
    with pytest.raises(ValueError, match="as many labels as inputs"):
        CollapseMonitor((x, y[:-1]))
    with pytest.raises(ValueError, match="train_data must be an"):
        CollapseMonitor(x)
    with pytest.raises(ValueError, match="norm must be"):
        CollapseMonitor((x, y), norm="sup")


def test_nc2_is_nan_with_a_warning_when_classes_outnumber_dimensions():
    rng = np.random.default_rng(0)
    y = np.arange(8).repeat(4)
    x = rng.normal(size=(32, 5)).astype("float32")
    inputs = keras.Input((5,))
    h = keras.layers.Dense(3, name="features")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(8)(h))
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    monitor = CollapseMonitor((x, y), schedule=[1])
    with pytest.warns(UserWarning, match="fewer dimensions than the 8 classes"):
        model.fit(x, y, epochs=1, callbacks=[monitor], verbose=0)
    latest = monitor.latest
    assert math.isnan(latest["train_nc2"]) and math.isfinite(latest["train_rnc1"])


def test_a_top_level_layer_wins_over_a_nested_one_of_the_same_name():
    # find_layer searched depth first and took the nested model's 'features',
    # which has no output in the outer graph: the monitor refused the model.
    features, labels = _data()
    x = features.astype("float32")
    encoder_input = keras.Input(x.shape[1:])
    inner = keras.layers.Dense(5, activation="relu", name="features")(encoder_input)
    encoder = keras.Model(encoder_input, inner, name="encoder")
    inputs = keras.Input(x.shape[1:])
    outer = keras.layers.Dense(8, activation="relu", name="features")(encoder(inputs))
    model = keras.Model(inputs, keras.layers.Dense(int(labels.max()) + 1)(outer))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    monitor = CollapseMonitor((x, labels), schedule=[3])
    model.fit(x, labels, batch_size=10, epochs=1, verbose=0, callbacks=[monitor])
    read = keras.Model(inputs, outer).predict(x, verbose=0)
    stats = collapse.collapse_statistics((read, labels), int(labels.max()) + 1)
    assert monitor.latest["train_rnc1"] == pytest.approx(collapse.rnc1(stats), rel=1e-4)
