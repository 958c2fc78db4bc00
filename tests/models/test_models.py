"""The modular models: shapes, the named feature layer, training, saving."""

import keras
import numpy as np
import pytest

from keras_grok.data.modular import modular_dataset
from keras_grok.layers import PositionEmbedding
from keras_grok.models import FEATURES_LAYER, modular_mlp, modular_transformer
from tests.testing import assert_allclose, assert_serialization_round_trip, to_numpy


def test_mlp_maps_pairs_to_logits_through_a_named_feature_layer():
    model = modular_mlp(23, embed_dim=16, hidden=32)
    out = model(np.array([[1, 2], [3, 4], [5, 6]], dtype="int32"))
    assert tuple(out.shape) == (3, 23)
    assert tuple(model.get_layer(FEATURES_LAYER).output.shape) == (None, 32)


@pytest.mark.parametrize("num_layers", [1, 2])
def test_transformer_maps_tokens_to_logits_through_a_named_feature_layer(num_layers):
    model = modular_transformer(
        23, 25, d_model=32, num_heads=4, d_mlp=64, num_layers=num_layers
    )
    out = model(np.array([[1, 23, 2, 24], [3, 23, 4, 24]], dtype="int32"))
    assert tuple(out.shape) == (2, 25)  # logits over the vocabulary, as paper B's
    assert tuple(model.get_layer(FEATURES_LAYER).output.shape) == (None, 32)
    attention = [layer for layer in model.layers if "attention_" in layer.name]
    assert len(
        [a for a in attention if isinstance(a, keras.layers.MultiHeadAttention)]
    ) == (num_layers)


def test_causal_mask_hides_later_tokens_from_earlier_positions():
    keras.utils.set_random_seed(0)
    model = modular_transformer(7, 9, d_model=16, num_heads=2, d_mlp=16, causal=True)
    features = keras.Model(model.input, model.get_layer("attention_norm_0").output)
    base = np.array([[1, 7, 2, 8]], dtype="int32")
    changed = np.array([[1, 7, 2, 3]], dtype="int32")
    a, b = features(base), features(changed)
    assert_allclose(a[:, :3], b[:, :3], rtol=1e-5, atol=1e-6)
    assert not np.allclose(to_numpy(a)[:, 3], to_numpy(b)[:, 3])


def test_the_default_transformer_has_paper_b_242547_parameters():
    # DeMoss et al.'s TransformerDecoder for p = 113: a 115-row position table
    # and 115 logits; 228,081 with a 4-row table and 113 logits.
    assert modular_transformer(113, 115).count_params() == 242_547
    narrow = modular_transformer(113, 115, position_rows=4, vocabulary_logits=False)
    assert narrow.count_params() == 228_081
    assert tuple(narrow.output.shape) == (None, 113)


def test_the_default_transformer_lets_every_position_see_every_token():
    keras.utils.set_random_seed(0)
    model = modular_transformer(7, 9, d_model=16, num_heads=2, d_mlp=16)
    features = keras.Model(model.input, model.get_layer("attention_norm_0").output)
    base = np.array([[1, 7, 2, 8]], dtype="int32")
    changed = np.array([[1, 7, 2, 3]], dtype="int32")
    assert not np.allclose(
        to_numpy(features(base))[:, 0], to_numpy(features(changed))[:, 0]
    )


def test_a_position_table_shorter_than_the_sequence_is_refused():
    with pytest.raises(ValueError, match="position_rows must be an integer >= 4"):
        modular_transformer(7, 9, d_model=16, num_heads=2, position_rows=3)


@pytest.mark.parametrize("kind, learning_rate", [("mlp", 1e-2), ("transformer", 3e-3)])
def test_models_learn_the_training_pairs(kind, learning_rate):
    keras.utils.set_random_seed(0)
    layout = "pairs" if kind == "mlp" else "tokens"
    split = modular_dataset(11, "a+b", 0.5, layout=layout)
    if kind == "mlp":
        model = modular_mlp(11, embed_dim=16, hidden=64)
    else:
        model = modular_transformer(11, 13, d_model=32, num_heads=4, d_mlp=64)
    model.compile(
        keras.optimizers.Adam(learning_rate),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    history = model.fit(
        split.x_train, split.y_train, epochs=60, batch_size=64, verbose=0
    )
    losses = history.history["loss"]
    assert losses[-1] < 0.4 * losses[0]


def test_transformer_with_position_embedding_survives_save_and_load(tmp_path):
    model = modular_transformer(7, 9, d_model=16, num_heads=2, d_mlp=16)
    x = np.array([[1, 7, 2, 8]], dtype="int32")
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert_allclose(loaded(x), model(x), rtol=1e-6)


def test_position_embedding_survives_serialization_and_refuses_no_length():
    layer = PositionEmbedding(4, initializer="zeros", name="pos")
    restored = assert_serialization_round_trip(layer)
    assert restored.max_length == 4 and restored.name == "pos"
    with pytest.raises(ValueError, match="max_length must be >= 1"):
        PositionEmbedding(0)
