"""WeightNoise: noisy forward/backward pass, clean weights updated, every backend."""

import keras
import numpy as np
import pytest

from keras_grok.regularizers.weight_noise import WeightNoise
from tests.testing import to_numpy

D_IN, D_OUT = 32, 16


def linear(seed=0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((D_IN,))
    outputs = keras.layers.Dense(D_OUT, use_bias=False)(inputs)
    return keras.Model(inputs, outputs)


def recovered_noise(stddev: float, steps: int = 1) -> list[np.ndarray]:
    """The noise each step used, read off the update of a linear model.

    With x = I and mean squared error, dL/dW at W + n is c (W + n - y) with
    c = 2 / (D_IN * D_OUT); SGD with learning rate 1 / c moves the clean W to
    y - n exactly when the gradient was taken at W + n and applied to W.
    """
    model = linear()
    noisy = WeightNoise(model, stddev, seed=1)
    noisy.compile(keras.optimizers.SGD(D_IN * D_OUT / 2), "mse")
    x = np.eye(D_IN, dtype="float32")
    y = np.random.default_rng(0).normal(size=(D_IN, D_OUT)).astype("float32")
    noises = []
    for _ in range(steps):
        noisy.train_on_batch(x, y)
        noises.append(y - to_numpy(model.weights[0]))
    return noises


def test_the_gradient_is_taken_at_noisy_weights_and_applied_to_clean_ones():
    first, second = recovered_noise(0.1, steps=2)
    for noise in (first, second):
        assert 0.085 < noise.std() < 0.115
        assert abs(noise.mean()) < 0.015
    assert np.abs(first - second).max() > 0.01  # fresh noise each step


def test_zero_stddev_trains_exactly_like_the_plain_model():
    (noise,) = recovered_noise(0.0)
    np.testing.assert_allclose(noise, 0.0, atol=1e-5)


def test_noise_never_stays_in_the_weights_and_inference_is_clean():
    model = linear()
    noisy = WeightNoise(model, 0.5, seed=0)
    noisy.compile(keras.optimizers.SGD(0.0), "mse")
    x = np.random.default_rng(1).normal(size=(64, D_IN)).astype("float32")
    y = np.zeros((64, D_OUT), "float32")
    before = to_numpy(model.weights[0]).copy()
    history = noisy.fit(x, y, batch_size=64, epochs=3, verbose=0)
    np.testing.assert_array_equal(to_numpy(model.weights[0]), before)
    clean_loss = float(np.mean((x @ before) ** 2))
    assert all(loss > clean_loss * 1.5 for loss in history.history["loss"])
    np.testing.assert_allclose(
        noisy.predict_on_batch(x), model.predict_on_batch(x), rtol=1e-6
    )
    assert noisy.evaluate(x, y, verbose=0) == pytest.approx(clean_loss, rel=1e-5)


def test_batch_norm_statistics_are_still_updated():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    outputs = keras.layers.BatchNormalization()(keras.layers.Dense(4)(inputs))
    model = keras.Model(inputs, outputs)
    noisy = WeightNoise(model, 0.01, seed=0)
    noisy.compile(keras.optimizers.SGD(0.01), "mse")
    x = np.random.default_rng(2).normal(3.0, 1.0, size=(32, 4)).astype("float32")
    noisy.fit(x, x, batch_size=32, epochs=2, verbose=0)
    moving_mean = to_numpy(model.layers[-1].moving_mean)
    assert np.all(np.isfinite(moving_mean)) and np.abs(moving_mean).max() > 1e-3


def test_config_round_trip_and_bad_stddev():
    noisy = WeightNoise(linear(), 0.02, seed=3)
    restored = WeightNoise.from_config(noisy.get_config())
    assert restored.stddev == 0.02 and restored.seed == 3
    assert len(restored.model.weights) == 1
    for stddev in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="stddev"):
            WeightNoise(linear(), stddev)


def test_something_that_is_not_a_model_is_refused_at_construction():
    with pytest.raises(ValueError, match="model must be a keras.Model"):
        WeightNoise("notamodel")
