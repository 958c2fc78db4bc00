"""Paper A's image models and layers: init scaling, feature layers, saving."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_grok.callbacks import CollapseMonitor
from keras_grok.callbacks.forward_reader import find_layer
from keras_grok.layers import ClassToken, RelativeGaussianNoise
from keras_grok.models import (
    FEATURES_LAYER,
    patch_transformer,
    resnet18,
    toy_cnn,
    toy_mlp,
)
from tests.testing import assert_allclose, assert_serialization_round_trip, to_numpy

SHAPE = (1, 8, 8) if keras.config.image_data_format() == "channels_first" else (8, 8, 1)
# Few distinct shapes: each new shape of a random initializer compiles once.
MLP = {"hidden": 32}
CNN = {"filters": (4, 8), "dense": 16}
TRANSFORMER = {"d_model": 16, "num_heads": 4, "ffn": 32}
RESNET = {"width": 4}
BUILDERS = [
    (toy_mlp, MLP),
    (toy_cnn, CNN),
    (patch_transformer, TRANSFORMER),
    (resnet18, RESNET),
]
WIDTHS = {toy_mlp: 32, toy_cnn: 16, patch_transformer: 16}


def weights_by_path(model: keras.Model) -> dict[str, np.ndarray]:
    return {w.path: to_numpy(w).astype(np.float64) for w in model.trainable_weights}


@pytest.mark.parametrize("init", ["torch", "keras"])
def test_every_mlp_parameter_is_alpha_times_the_unscaled_one(init):
    plain = weights_by_path(toy_mlp(SHAPE, 10, hidden=32, init=init, seed=3))
    scaled = weights_by_path(
        toy_mlp(SHAPE, 10, hidden=32, init=init, init_scale=8.0, seed=3)
    )
    assert plain.keys() == scaled.keys() and len(plain) == 6
    for path, value in plain.items():
        np.testing.assert_allclose(scaled[path], 8.0 * value, rtol=1e-6, err_msg=path)
        if init == "torch" or path.endswith("kernel"):
            assert np.abs(value).max() > 0, path


def test_the_same_global_seed_gives_the_same_scaled_mlp():
    keras.utils.set_random_seed(5)
    plain = weights_by_path(toy_mlp(SHAPE, 10, **MLP))
    keras.utils.set_random_seed(5)
    scaled = weights_by_path(toy_mlp(SHAPE, 10, **MLP, init_scale=0.5))
    for path, value in plain.items():
        np.testing.assert_allclose(scaled[path], 0.5 * value, rtol=1e-6)


def test_the_cnn_scales_only_its_dense_layers():
    plain = weights_by_path(toy_cnn(SHAPE, 10, filters=(4, 8), dense=16, seed=1))
    scaled = weights_by_path(
        toy_cnn(SHAPE, 10, filters=(4, 8), dense=16, init_scale=8.0, seed=1)
    )
    for path, value in plain.items():
        factor = 1.0 if path.startswith("conv") else 8.0
        np.testing.assert_allclose(scaled[path], factor * value, rtol=1e-6)


def scaled_pair(builder, sizes: dict) -> tuple[keras.Model, keras.Model]:
    keras.utils.set_random_seed(4)  # attention layers draw from the global seed
    plain = builder(SHAPE, 10, **sizes)
    keras.utils.set_random_seed(4)
    return plain, builder(SHAPE, 10, **sizes, init_scale=8.0)


def assert_only_the_read_out_is_scaled(plain: keras.Model, scaled: keras.Model):
    scaled_weights = weights_by_path(scaled)
    for path, value in weights_by_path(plain).items():
        factor = 8.0 if path.startswith("logits") else 1.0
        np.testing.assert_allclose(scaled_weights[path], factor * value, rtol=1e-6)


def test_the_transformer_scales_only_its_read_out():
    assert_only_the_read_out_is_scaled(*scaled_pair(patch_transformer, TRANSFORMER))


def resnet18_parameters(width: int, channels: int, classes: int) -> int:
    """Trainable parameters of CIFAR ResNet-18, counted from its definition."""
    total = 9 * channels * width + 2 * width  # stem conv + batch norm
    total += 2 * (2 * 9 * width * width + 2 * 2 * width)  # stage 1
    for stage in (1, 2, 3):
        out = width * 2**stage
        total += 9 * (out // 2) * out + 9 * out * out + 2 * 2 * out  # block 1
        total += (out // 2) * out + 2 * out  # 1x1 projection + batch norm
        total += 2 * 9 * out * out + 2 * 2 * out  # block 2
    return total + 8 * width * classes + classes


def test_resnet18_scales_its_read_out_and_has_the_standard_parameter_count():
    assert resnet18_parameters(64, 3, 10) == 11_173_962  # the usual CIFAR figure
    plain, scaled = scaled_pair(resnet18, RESNET)
    assert_only_the_read_out_is_scaled(plain, scaled)
    count = sum(int(np.prod(w.shape)) for w in plain.trainable_weights)
    assert count == resnet18_parameters(4, 1, 10)
    assert find_layer(plain, FEATURES_LAYER).output.shape == (None, 32)


def test_torch_init_draws_kernels_and_biases_within_one_over_sqrt_fan_in():
    model = toy_mlp(SHAPE, 10, **MLP, init="torch", seed=0)
    for layer, fan_in in (("hidden_0", 64), ("features", 32), ("logits", 32)):
        for weight in model.get_layer(layer).trainable_weights:
            values = to_numpy(weight)
            limit = 1 / np.sqrt(fan_in)
            assert np.abs(values).max() <= limit
            assert np.abs(values).max() > 0.9 * limit  # uniform, not tighter
    keras_init = toy_mlp(SHAPE, 10, **MLP, init="keras", seed=0)
    assert np.all(to_numpy(keras_init.get_layer("features").bias) == 0)


@pytest.mark.parametrize("builder, sizes", BUILDERS[:3])
def test_the_feature_layer_is_the_penultimate_representation(builder, sizes):
    model = builder(SHAPE, 10, **sizes, seed=0)
    extractor = keras.Model(model.input, model.get_layer(FEATURES_LAYER).output)
    x = np.random.default_rng(0).normal(size=(4, *SHAPE)).astype("float32")
    features = to_numpy(extractor(x))
    assert find_layer(model, FEATURES_LAYER) is model.get_layer(FEATURES_LAYER)
    assert features.shape == (4, WIDTHS[builder])
    if builder is not patch_transformer:
        assert features.min() >= 0  # post-ReLU
    logits = model.get_layer("logits")
    assert_allclose(
        model(x),
        features @ to_numpy(logits.kernel) + to_numpy(logits.bias),
        rtol=1e-4,
        atol=1e-4,
    )


@pytest.mark.parametrize("builder, sizes", BUILDERS[:2])
def test_the_collapse_monitor_measures_the_feature_layer(builder, sizes):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, *SHAPE)).astype("float32")
    y = np.arange(30) % 3
    model = builder(SHAPE, 3, **sizes, seed=0)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    monitor = CollapseMonitor((x, y), layer=FEATURES_LAYER, schedule=[1])
    model.fit(x, y, epochs=1, batch_size=30, verbose=0, callbacks=[monitor])
    assert np.isfinite(monitor.latest["train_rnc1"])


@pytest.mark.parametrize("builder, sizes", BUILDERS[::2])
def test_models_save_and_load_with_the_same_outputs(builder, sizes, tmp_path):
    model = builder(SHAPE, 10, **sizes, init_scale=8.0, seed=2)
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    x = np.random.default_rng(1).normal(size=(3, *SHAPE)).astype("float32")
    assert_allclose(restored(x), model(x), rtol=1e-5, atol=1e-5)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="init must be one of"):
        toy_mlp(SHAPE, 10, init="xavier")
    with pytest.raises(ValueError, match="init_scale must be a finite number > 0"):
        toy_mlp(SHAPE, 10, init_scale=0.0)
    with pytest.raises(ValueError, match="depth must be an integer"):
        toy_mlp(SHAPE, 10, depth=0)
    with pytest.raises(ValueError, match="divisible by patch_size=3"):
        patch_transformer(SHAPE, 10, patch_size=3)


def test_the_class_token_is_one_learned_vector_before_every_sequence():
    layer = ClassToken(keras.initializers.RandomNormal(seed=0))
    x = np.random.default_rng(0).normal(size=(2, 3, 4)).astype("float32")
    out = to_numpy(layer(x))
    assert out.shape == (2, 4, 4)
    assert_allclose(out[:, 1:], x)
    assert_allclose(out[0, 0], to_numpy(layer.token))
    assert_allclose(out[1, 0], to_numpy(layer.token))
    assert layer.compute_output_shape((None, 3, 4)) == (None, 4, 4)
    assert layer.compute_output_shape((None, None, 4)) == (None, None, 4)


def test_the_class_token_survives_serialization_with_its_initializer():
    layer = ClassToken(keras.initializers.RandomNormal(stddev=0.5), name="cls")
    restored = assert_serialization_round_trip(layer)
    assert restored.name == "cls"
    assert restored.initializer.stddev == 0.5


def test_relative_noise_is_off_at_inference_and_scales_with_each_dimension():
    layer = RelativeGaussianNoise(0.5, seed=0)
    x = np.random.default_rng(0).normal(size=(4000, 3)) * np.array([1.0, 10.0, 100.0])
    x = x.astype("float32")
    assert_allclose(layer(x), x)
    noise = to_numpy(layer(x, training=True)) - x
    np.testing.assert_allclose(noise.std(axis=0) / x.std(axis=0), 0.5, rtol=0.05)


def test_relative_noise_survives_serialization_and_refuses_bad_stddev():
    restored = assert_serialization_round_trip(RelativeGaussianNoise(0.2, seed=3))
    assert restored.stddev == 0.2 and restored.seed == 3
    for stddev in (-0.1, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="stddev must be a finite number >= 0"):
            RelativeGaussianNoise(stddev)
