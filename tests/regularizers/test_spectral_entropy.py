"""SpectralEntropy: the formula, finite gradients on degenerate matrices, saving."""

import keras
import numpy as np
import pytest

from keras_grok.measures.spectral import (
    AUTO_DECOMPOSITION,
    effective_rank,
    spectral_entropies,
    spectral_entropy,
)
from keras_grok.regularizers import SpectralEntropy, add_spectral_entropy
from tests.testing import (
    assert_allclose,
    assert_serialization_round_trip,
    backend,
    to_numpy,
)

FLOAT32_EPS = float(np.finfo(np.float32).eps)


def reference(w: np.ndarray, view: tuple[int, int]) -> tuple[float, np.ndarray]:
    """``H(W)`` and ``dH/dW`` in float64 NumPy, written from the formula.

    ``p = s / sum(s)``, ``H = -sum p log p``, ``dH/dW = U diag(g) V^T`` with
    ``g_i = -(log p_i + H) / sum(s)``; singular values at or below
    ``s_max * max(m, n) * eps(float32)`` are zero and contribute nothing.
    """
    matrix = w.astype(np.float64).reshape(view)
    u, s, vt = np.linalg.svd(matrix, full_matrices=False)
    s = np.where(s > s.max() * max(view) * FLOAT32_EPS, s, 0.0)
    if s.sum() == 0:
        return 0.0, np.zeros_like(w, np.float64)
    p = s / s.sum()
    log_p = np.log(p, where=p > 0, out=np.zeros_like(p))
    h = -(p * log_p).sum()
    g = np.where(p > 0, -(log_p + h) / s.sum(), 0.0)
    return float(h), ((u * g) @ vt).reshape(w.shape)


def entropy_reference(w: np.ndarray, view: tuple[int, int]) -> float:
    return reference(w, view)[0]


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


DECOMPOSITIONS = ("svd", "gram")


def assert_matches_reference(
    w: np.ndarray,
    view: tuple[int, int],
    decomposition: str,
    gradient_tolerance: float = 1e-5,
) -> None:
    """Value within 1e-5 and gradient within ``gradient_tolerance`` (relative to
    its largest entry, or to ``1 / ||W||`` where it vanishes) of the float64
    reference."""
    h, grad = reference(w, view)
    value = spectral_entropy(w, decomposition=decomposition)
    assert_allclose(value, h, rtol=1e-5, atol=1e-6)
    assert keras.backend.standardize_dtype(value.dtype) == "float32"
    actual = gradient(lambda x: spectral_entropy(x, decomposition=decomposition), w)
    assert actual.dtype == np.float32
    # The gradient's natural scale is 1 / ||W|| (dH/ds ~ 1 / sum(s)); it sets the
    # absolute tolerance where the gradient vanishes (rank 1: H = 0 at a minimum).
    norm = float(np.linalg.norm(w))
    scale = max(np.abs(grad).max(), 1.0 / norm if norm > 0 else 1.0)
    np.testing.assert_allclose(
        actual, grad, rtol=gradient_tolerance, atol=gradient_tolerance * scale
    )


RNG = np.random.default_rng(0)

VIEWS = [
    ((7, 5), (7, 5)),
    ((5, 9), (5, 9)),
    ((3, 3, 4, 6), (36, 6)),  # Conv2D kernel: fan-in x filters
    ((16, 4, 8), (16, 32)),  # EinsumDense query kernel (d_model, heads, dim)
    ((4, 8, 16), (32, 16)),  # attention output kernel (heads, dim, d_model)
]


@pytest.mark.parametrize("decomposition", DECOMPOSITIONS)
@pytest.mark.parametrize("shape, view", VIEWS)
def test_spectral_entropy_and_its_gradient_match_numpy(shape, view, decomposition):
    w = RNG.normal(size=shape).astype("float32")
    assert_matches_reference(w, view, decomposition)
    assert_allclose(effective_rank(w), np.exp(entropy_reference(w, view)), rtol=1e-5)


def test_a_256_square_matrix_matches_numpy_with_both_decompositions():
    # The modadd MLP's hidden kernels: a square Gaussian matrix's condition number
    # is ~2n, the Gram route's worst ordinary case.
    w = (RNG.normal(size=(256, 256)) * 0.05).astype("float32")
    for decomposition in DECOMPOSITIONS:
        assert_matches_reference(w, (256, 256), decomposition)


@pytest.mark.parametrize(
    "decomposition, gradient_tolerance", [("svd", 1e-3), ("gram", 1e-5)]
)
def test_an_ill_conditioned_matrix(decomposition, gradient_tolerance):
    # Singular values from 1 down to 1e-4 (condition number 1e4): the float32
    # SVD's singular vectors carry errors ~ eps * condition number (~1e-3), which
    # the gradient inherits; the float64 Gram route keeps 1e-5 (its errors go as
    # 1e-16 * cond^2). The value stays within 1e-5 with both.
    u, _ = np.linalg.qr(RNG.normal(size=(40, 24)))
    v, _ = np.linalg.qr(RNG.normal(size=(24, 24)))
    w = ((u * np.logspace(0, -4, 24)) @ v.T).astype("float32")
    assert_matches_reference(w, (40, 24), decomposition, gradient_tolerance)


def test_auto_uses_the_backends_measured_choice_and_bad_choices_are_refused():
    w = RNG.normal(size=(9, 6)).astype("float32")
    chosen = AUTO_DECOMPOSITION[backend()]
    assert_allclose(
        spectral_entropy(w), spectral_entropy(w, decomposition=chosen), rtol=1e-7
    )
    with pytest.raises(ValueError, match="Received: decomposition='qr'"):
        spectral_entropy(w, decomposition="qr")
    with pytest.raises(ValueError, match="Received: decomposition='qr'"):
        SpectralEntropy(0.1, decomposition="qr")


def test_identity_has_entropy_log_n_and_rank_one_has_zero():
    assert_allclose(spectral_entropy(np.eye(6, dtype="float32")), np.log(6), rtol=1e-6)
    u, v = RNG.normal(size=(8, 1)), RNG.normal(size=(1, 5))
    rank_one = (u @ v).astype("float32")
    assert abs(float(to_numpy(spectral_entropy(rank_one)))) < 1e-4
    assert float(to_numpy(spectral_entropy(np.zeros((4, 3), "float32")))) == 0.0


# Exactly representable in float32 (entries are multiples of 1/8), so "zero" and
# "repeated" are exact: a 4 x 4 Hadamard matrix / 2 is orthogonal.
HADAMARD = (
    np.array([[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]], np.float64)
    / 2
)


def rotated(singular_values: list[float]) -> np.ndarray:
    """A 6 x 4 matrix with these singular values and non-trivial vectors."""
    core = HADAMARD @ np.diag(singular_values) @ HADAMARD.T[:, ::-1]
    return np.vstack([core, np.zeros((2, 4))]).astype("float32")


DEGENERATE = {
    "zero": np.zeros((6, 4), "float32"),
    "rank_one": np.outer([1.0, 2.0, -1.0, 0.5, 3.0, 1.0], [2.0, -1.0, 0.5, 1.0]).astype(
        "float32"
    ),
    "rank_two": np.outer([1, 2, -1, 0.5, 3, 1], [2, -1, 0.5, 1]).astype("float32")
    + np.outer([0, 1, 1, 0, -1, 2], [1, 1, -1, 0.5]).astype("float32"),
    "all_equal": np.eye(6, 4, dtype="float32") * 2.0,
    "repeated": rotated([2.0, 2.0, 1.0, 0.5]),
    "repeated_and_zero": rotated([2.0, 2.0, 1.0, 0.0]),
    "repeated_zero": rotated([3.0, 1.0, 0.0, 0.0]),
}


@pytest.mark.parametrize("decomposition", DECOMPOSITIONS)
@pytest.mark.parametrize("name", sorted(DEGENERATE))
def test_degenerate_matrices_have_the_reference_value_and_gradient(name, decomposition):
    w = DEGENERATE[name]
    assert_matches_reference(w, w.shape, decomposition)
    assert_matches_reference(np.ascontiguousarray(w.T), w.shape[::-1], decomposition)
    grad = gradient(lambda w: SpectralEntropy(0.1, decomposition=decomposition)(w), w)
    assert grad.shape == w.shape
    assert np.all(np.isfinite(grad)), grad


def test_measured_entropies_use_the_same_zero_rule():
    weights = [DEGENERATE["repeated_and_zero"], DEGENERATE["rank_one"], np.ones(3)]
    expected = [entropy_reference(w, w.shape) for w in weights[:2]]
    np.testing.assert_allclose(spectral_entropies(weights), expected, atol=1e-6)
    assert expected[1] == 0.0 and expected[0] > 0


def test_regularizer_is_strength_times_entropy_in_the_input_dtype():
    w = RNG.normal(size=(5, 7)).astype("float32")
    value = SpectralEntropy(0.25)(keras.ops.convert_to_tensor(w))
    assert keras.backend.standardize_dtype(value.dtype) == "float32"
    assert_allclose(value, 0.25 * entropy_reference(w, (5, 7)), rtol=1e-5)


@pytest.mark.parametrize("strength", [-1, -1.0, float("nan"), float("inf"), "abc"])
def test_bad_strengths_are_refused_naming_the_argument(strength):
    with pytest.raises(ValueError, match=f"Received: strength={strength!r}"):
        SpectralEntropy(strength)


def test_bad_splits_and_vectors_are_refused():
    with pytest.raises(ValueError, match="split"):
        SpectralEntropy(0.1, split=1.5)
    with pytest.raises(ValueError, match="at least 2 axes"):
        SpectralEntropy(0.1)(np.ones(3, "float32"))


def test_config_and_serialization_round_trip():
    regularizer = SpectralEntropy(0.3, split=-1, decomposition="gram")
    config = {"strength": 0.3, "split": -1, "decomposition": "gram"}
    assert regularizer.get_config() == config
    assert all(type(v) in (float, int, str) for v in config.values())
    restored = assert_serialization_round_trip(regularizer)
    assert isinstance(restored, SpectralEntropy)
    assert restored.decomposition == "gram"
    assert SpectralEntropy().get_config() == {
        "strength": 0.1,
        "split": None,
        "decomposition": "auto",
    }


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


def test_model_level_form_reports_the_strength_it_was_given():
    model = small_model()
    with pytest.raises(ValueError, match=r"Received: strength=-1$"):
        add_spectral_entropy(model, -1)
    assert all(v.regularizer is None for v in model.trainable_weights)


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
