"""SpectralEntropy: the formula, finite gradients on degenerate matrices, saving."""

import keras
import numpy as np
import pytest

from keras_grok.measures.spectral import effective_rank, spectral_entropy
from keras_grok.regularizers import SpectralEntropy, add_spectral_entropy
from tests.testing import assert_allclose, backend, to_numpy


def entropy_reference(w: np.ndarray, view: tuple[int, int]) -> float:
    s = np.linalg.svd(w.astype(np.float64).reshape(view), compute_uv=False)
    p = s / s.sum()
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def entropy_gradient_reference(w: np.ndarray) -> np.ndarray:
    u, s, vt = np.linalg.svd(w.astype(np.float64), full_matrices=False)
    p = s / s.sum()
    h = -(p * np.log(p)).sum()
    return u @ np.diag(-(np.log(p) + h) / s.sum()) @ vt


def gradient(fn, x: np.ndarray) -> np.ndarray:
    """d fn(x) / dx on the current backend."""
    name = backend()
    if name == "jax":
        import jax

        return np.asarray(jax.grad(fn)(keras.ops.convert_to_tensor(x)))
    if name == "tensorflow":
        import tensorflow as tf

        tensor = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(tensor)
            value = fn(tensor)
        return tape.gradient(value, tensor).numpy()
    import torch

    tensor = torch.tensor(x, requires_grad=True)
    fn(tensor).backward()
    return tensor.grad.numpy()


RNG = np.random.default_rng(0)


@pytest.mark.parametrize(
    "shape, view",
    [
        ((7, 5), (7, 5)),
        ((5, 9), (5, 9)),
        ((3, 3, 4, 6), (36, 6)),  # Conv2D kernel: fan-in x filters
        ((16, 4, 8), (16, 32)),  # EinsumDense query kernel (d_model, heads, dim)
        ((4, 8, 16), (32, 16)),  # attention output kernel (heads, dim, d_model)
    ],
)
def test_spectral_entropy_matches_numpy(shape, view):
    w = RNG.normal(size=shape).astype("float32")
    assert_allclose(spectral_entropy(w), entropy_reference(w, view), rtol=1e-5)
    assert_allclose(effective_rank(w), np.exp(entropy_reference(w, view)), rtol=1e-5)


def test_identity_has_entropy_log_n_and_rank_one_has_zero():
    assert_allclose(spectral_entropy(np.eye(6, dtype="float32")), np.log(6), rtol=1e-6)
    u, v = RNG.normal(size=(8, 1)), RNG.normal(size=(1, 5))
    rank_one = (u @ v).astype("float32")
    assert abs(float(to_numpy(spectral_entropy(rank_one)))) < 1e-4
    assert float(to_numpy(spectral_entropy(np.zeros((4, 3), "float32")))) == 0.0


DEGENERATE = {
    "zero": np.zeros((6, 4), "float32"),
    "rank_one": (RNG.normal(size=(6, 1)) @ RNG.normal(size=(1, 4))).astype("float32"),
    "repeated": np.eye(6, 4, dtype="float32") * 2.0,
    "repeated_and_zero": np.diag([3.0, 3.0, 0.0, 0.0]).astype("float32"),
}


@pytest.mark.parametrize("name", sorted(DEGENERATE))
def test_gradient_is_finite_on_degenerate_matrices(name):
    grad = gradient(lambda w: SpectralEntropy(0.1)(w), DEGENERATE[name])
    assert grad.shape == DEGENERATE[name].shape
    assert np.all(np.isfinite(grad)), grad


def test_gradient_matches_the_formula_on_a_generic_matrix():
    w = RNG.normal(size=(6, 4)).astype("float32")
    grad = gradient(lambda w: spectral_entropy(w), w)
    np.testing.assert_allclose(grad, entropy_gradient_reference(w), atol=1e-5)


def test_regularizer_is_strength_times_entropy_in_the_input_dtype():
    w = RNG.normal(size=(5, 7)).astype("float32")
    value = SpectralEntropy(0.25)(keras.ops.convert_to_tensor(w))
    assert keras.backend.standardize_dtype(value.dtype) == "float32"
    assert_allclose(value, 0.25 * entropy_reference(w, (5, 7)), rtol=1e-5)


def test_bad_arguments_are_refused():
    for strength in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="strength"):
            SpectralEntropy(strength)
    with pytest.raises(ValueError, match="at least 2 axes"):
        SpectralEntropy(0.1)(np.ones(3, "float32"))


def test_config_and_serialization_round_trip():
    regularizer = SpectralEntropy(0.3, split=-1)
    assert regularizer.get_config() == {"strength": 0.3, "split": -1}
    again = SpectralEntropy.from_config(regularizer.get_config())
    assert again.get_config() == regularizer.get_config()
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(regularizer)
    )
    assert isinstance(restored, SpectralEntropy)
    assert restored.get_config() == regularizer.get_config()


def small_model(regularizer=None) -> keras.Model:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((2,), dtype="int32")
    x = keras.layers.Embedding(11, 4, embeddings_regularizer=regularizer)(inputs)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(6, activation="relu", kernel_regularizer=regularizer)(x)
    outputs = keras.layers.Dense(11, name="logits")(x)
    return keras.Model(inputs, outputs)


def total_penalty(model: keras.Model) -> float:
    return float(sum(float(to_numpy(loss)) for loss in model.losses))


def test_a_model_with_the_regularizer_survives_save_and_load(tmp_path):
    model = small_model(SpectralEntropy(0.1))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    dense = loaded.layers[3]
    assert isinstance(dense.kernel_regularizer, SpectralEntropy)
    assert dense.kernel_regularizer.strength == 0.1
    assert total_penalty(loaded) == pytest.approx(total_penalty(model), rel=1e-6)


def test_model_level_form_is_strength_times_mean_entropy_and_is_saved(tmp_path):
    model = small_model()
    assert add_spectral_entropy(model, 0.5) == 3
    matrices = [to_numpy(v) for v in model.trainable_weights if len(v.shape) == 2]
    mean = np.mean([entropy_reference(w, w.shape) for w in matrices])
    assert total_penalty(model) == pytest.approx(0.5 * mean, rel=1e-5)
    path = tmp_path / "model.keras"
    model.save(path)
    assert total_penalty(keras.models.load_model(path)) == pytest.approx(
        0.5 * mean, rel=1e-5
    )
    with pytest.raises(ValueError, match="already have a regularizer"):
        add_spectral_entropy(model, 0.1)


def test_conv_kernels_get_the_fan_in_by_filters_view():
    inputs = keras.Input((6, 6, 3))
    outputs = keras.layers.Conv2D(5, 3)(keras.layers.Conv2D(4, 2)(inputs))
    model = keras.Model(inputs, outputs)
    add_spectral_entropy(model, 1.0)
    kernels = [to_numpy(v) for v in model.trainable_weights if len(v.shape) == 4]
    views = [(int(np.prod(k.shape[:-1])), k.shape[-1]) for k in kernels]
    mean = np.mean([entropy_reference(k, v) for k, v in zip(kernels, views)])
    assert total_penalty(model) == pytest.approx(mean, rel=1e-5)


def test_training_from_a_zero_kernel_stays_finite():
    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(
        3, kernel_initializer="zeros", kernel_regularizer=SpectralEntropy(1.0)
    )(inputs)
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.SGD(0.1), "mse")
    x = RNG.normal(size=(8, 4)).astype("float32")
    model.fit(x, np.ones((8, 3), "float32"), epochs=2, batch_size=8, verbose=0)
    assert all(np.all(np.isfinite(to_numpy(v))) for v in model.weights)
