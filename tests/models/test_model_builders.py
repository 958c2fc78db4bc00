"""The config-driven builders: the compiled modular and image models recipes train."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_grok.losses import SumSquaredError
from keras_grok.models import (
    FEATURES_LAYER,
    IMAGE_LOSSES,
    IMAGE_MODELS,
    OPTIMIZERS,
    build_image_model,
    build_modular_model,
    patch_transformer,
    resnet18,
    toy_cnn,
    toy_mlp,
)

MODULAR = {
    "model": "mlp",
    "embed_dim": 8,
    "hidden": 16,
    "transformer_layers": 1,
    "learning_rate": 1e-3,
    "weight_decay": 0.5,
    "beta_2": 0.98,
}
IMAGE = {
    "model": "mlp",
    "hidden": 16,
    "init_scale": 8.0,
    "init": "torch",
    "seed": 0,
    "optimizer": "adamw",
    "learning_rate": 1e-3,
    "weight_decay": 0.01,
    "loss": "mse_sum",
}
SHAPE = (1, 8, 8) if keras.config.image_data_format() == "channels_first" else (8, 8, 1)


def test_the_modular_mlp_is_compiled_with_adamw_and_the_given_weight_decay():
    model = build_modular_model(MODULAR, vocab_size=11, num_classes=11)
    assert model.name == "modular_mlp"
    assert isinstance(model.optimizer, keras.optimizers.AdamW)
    assert model.optimizer.weight_decay == 0.5
    assert model.optimizer.beta_2 == 0.98
    assert isinstance(model.loss, keras.losses.SparseCategoricalCrossentropy)
    assert model.loss.get_config()["from_logits"]
    pairs = np.array([[1, 2], [3, 4], [5, 6]], dtype="int32")
    assert tuple(model(pairs).shape) == (3, 11)
    assert np.isfinite(model.train_on_batch(pairs, np.array([3, 7, 0])))


def test_the_modular_mlp_has_one_hidden_layer_unless_depth_is_given():
    shallow = [layer.name for layer in build_modular_model(MODULAR, 7, 7).layers]
    deep = build_modular_model({**MODULAR, "depth": 2}, 7, 7)
    assert shallow[-2:] == [FEATURES_LAYER, "logits"]
    assert "hidden_0" not in shallow
    assert "hidden_0" in [layer.name for layer in deep.layers]


def test_the_modular_transformer_reads_tokens_with_embed_dim_as_its_width():
    config = {**MODULAR, "model": "transformer", "embed_dim": 16}
    model = build_modular_model(config, vocab_size=13, num_classes=11)
    assert model.name == "modular_transformer"
    assert model.get_layer(FEATURES_LAYER).output.shape == (None, 16)
    assert model.input.shape == (None, 4)
    assert model.output.shape == (None, 13)  # paper B: logits over the vocabulary


def test_an_unknown_modular_model_is_refused():
    with pytest.raises(ValueError, match="model must be one of mlp, transformer"):
        build_modular_model({**MODULAR, "model": "rnn"}, 7, 7)


def test_the_image_names_map_to_the_four_builders():
    builders = {
        "mlp": toy_mlp,
        "cnn": toy_cnn,
        "transformer": patch_transformer,
        "resnet18": resnet18,
    }
    assert builders == IMAGE_MODELS
    assert IMAGE_LOSSES == ("mse_sum", "cross_entropy")
    assert OPTIMIZERS == ("adamw", "sgd")


def test_the_image_mlp_is_scaled_and_compiled_with_adamw_and_the_summed_error():
    model = build_image_model(IMAGE, SHAPE, 10)
    plain = toy_mlp(SHAPE, 10, hidden=16, init_scale=1.0, seed=0)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model.get_layer("logits").kernel),
        8.0 * keras.ops.convert_to_numpy(plain.get_layer("logits").kernel),
        rtol=1e-6,
    )
    assert isinstance(model.optimizer, keras.optimizers.AdamW)
    assert model.optimizer.weight_decay == 0.01
    assert isinstance(model.loss, SumSquaredError)
    x = np.random.default_rng(0).normal(size=(4, *SHAPE)).astype("float32")
    assert tuple(model(x).shape) == (4, 10)
    assert np.isfinite(model.train_on_batch(x, np.array([0, 1, 2, 3])))


@pytest.mark.parametrize("weight_decay, expected", [(0.0, None), (0.1, 0.1)])
def test_the_image_cnn_takes_sgd_and_cross_entropy(weight_decay, expected):
    config = {
        **IMAGE,
        "model": "cnn",
        "optimizer": "sgd",
        "loss": "cross_entropy",
        "weight_decay": weight_decay,
    }
    model = build_image_model(config, SHAPE, 3)
    assert model.name == "toy_cnn"
    assert isinstance(model.optimizer, keras.optimizers.SGD)
    assert model.optimizer.weight_decay == expected
    assert isinstance(model.loss, keras.losses.SparseCategoricalCrossentropy)
    assert model.output.shape == (None, 3)


@pytest.mark.parametrize(
    "key, value", [("model", "vit"), ("optimizer", "adam"), ("loss", "hinge")]
)
def test_unknown_image_settings_are_refused_with_the_allowed_values(key, value):
    with pytest.raises(ValueError, match=f"{key} must be one of .*Received: {key}="):
        build_image_model({**IMAGE, key: value}, SHAPE, 10)
