"""Model builders and their layers refuse bad arguments up front, by name."""

import keras
import pytest

from keras_grok.layers import ClassToken, PositionEmbedding
from keras_grok.models import (
    build_image_model,
    build_modular_model,
    modular_mlp,
    modular_transformer,
    patch_transformer,
    resnet18,
    toy_cnn,
    toy_mlp,
)

IMAGE = (8, 8, 1)


def test_a_modular_config_missing_keys_is_refused_naming_them():
    with pytest.raises(
        ValueError, match="lacks the key.*'embed_dim'.*Received: config"
    ):
        build_modular_model({"model": "mlp"}, 7, 7)
    with pytest.raises(ValueError, match="'transformer_layers'"):
        build_modular_model({"model": "transformer", "embed_dim": 8}, 9, 7)
    with pytest.raises(ValueError, match="'model'"):
        build_modular_model({}, 7, 7)
    with pytest.raises(TypeError, match="config must be a dict"):
        build_modular_model(["mlp"], 7, 7)


def test_an_image_config_missing_keys_is_refused_naming_them():
    with pytest.raises(ValueError, match="lacks the key.*'init_scale'"):
        build_image_model({"model": "cnn"}, IMAGE, 3)
    config = {
        "model": "mlp", "init_scale": 1.0, "init": "torch", "seed": 0,
        "optimizer": "adamw", "learning_rate": 1e-3, "weight_decay": 0.0,
        "loss": "mse_sum",
    }  # fmt: skip
    with pytest.raises(ValueError, match="'hidden' that model='mlp' needs"):
        build_image_model(config, IMAGE, 3)


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: modular_transformer(7, 8, sequence_length=0, d_model=8, num_heads=2),
         "sequence_length must be an integer >= 1. Received: sequence_length=0"),
        (lambda: modular_transformer(7, 8, d_model=8, num_heads=0),
         "num_heads must be an integer >= 1"),
        (lambda: modular_transformer(7, 8, d_model=8, num_heads=2, d_mlp=0),
         "Received: d_mlp=0"),
        (lambda: modular_transformer(7, 8, d_model=8, num_heads=2, num_layers=-1),
         "Received: num_layers=-1"),
        (lambda: modular_mlp(7, depth=1.5), "Received: depth=1.5"),
        (lambda: toy_cnn((2, 2, 1), 3, filters=(4, 4), dense=8),
         "height and width must be >= 6.*Received: input_shape=\\(2, 2, 1\\)"),
        (lambda: toy_cnn(IMAGE, 3, filters=(4, 0)), "Received: filters=0"),
        (lambda: toy_cnn(IMAGE, 3, filters=()), "filters must list at least one"),
        (lambda: toy_cnn(IMAGE, 3, dense=0), "Received: dense=0"),
        (lambda: toy_cnn((8, 8), 3), "input_shape must be 3 integers"),
        (lambda: resnet18(IMAGE, 3, width=0), "Received: width=0"),
        (lambda: resnet18((8, 0, 1), 3), "Received: input_shape=\\(8, 0, 1\\)"),
        (lambda: resnet18(IMAGE, 0), "Received: num_classes=0"),
        (lambda: toy_mlp((0,), 3), "input_shape must be one or more integers"),
        (lambda: toy_mlp(IMAGE, 3, seed=-1), "Received: seed=-1"),
        (lambda: patch_transformer(IMAGE, 3, patch_size=0),
         "Received: patch_size=0"),
        (lambda: patch_transformer(IMAGE, 3, d_model=8, num_heads=2, ffn=0),
         "Received: ffn=0"),
        (lambda: patch_transformer(IMAGE, 3, patch_size=16),
         "divisible by patch_size=16.*Received: input_shape"),
    ],
)  # fmt: skip
def test_a_builder_refuses_a_bad_size_naming_the_argument(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_builders_still_build_small_valid_models():
    assert toy_cnn((6, 6, 1), 3, filters=(4, 4), dense=8).output.shape == (None, 3)
    assert resnet18(IMAGE, 3, width=2).output.shape == (None, 3)
    model = modular_transformer(7, 9, d_model=8, num_heads=2, num_layers=0)
    assert model.output.shape == (None, 9)


def test_a_position_embedding_refuses_a_fractional_or_bad_max_length():
    with pytest.raises(ValueError, match="max_length must be >= 1.*max_length=4.5"):
        PositionEmbedding(4.5)
    with pytest.raises(ValueError, match="Received: max_length=True"):
        PositionEmbedding(True)
    with pytest.raises(ValueError, match="Received: initializer='nonsense'"):
        PositionEmbedding(4, "nonsense")


def test_a_class_token_refuses_an_initializer_keras_cannot_read():
    with pytest.raises(ValueError, match="Received: initializer='nonsense'"):
        ClassToken("nonsense")
    with pytest.raises(ValueError, match="of a known dim"):
        ClassToken()(keras.KerasTensor((None, 4, None)))
