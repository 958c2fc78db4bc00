"""Paper B's regularized setting: spectral entropy on every matrix, weight noise."""

import keras
import numpy as np
import pytest

from keras_grok.models.modular import build_modular_model
from keras_grok.regularizers import apply_paper_b_regularization
from keras_grok.regularizers.weight_noise import WeightNoise

CONFIG = {
    "model": "mlp",
    "embed_dim": 8,
    "hidden": 16,
    "depth": 1,
    "transformer_layers": 1,
    "learning_rate": 1e-3,
    "weight_decay": 1.0,
    "beta_2": 0.98,
}


def test_both_regularizers_wrap_the_model_and_add_the_entropy_loss():
    keras.utils.set_random_seed(0)
    model = build_modular_model(CONFIG, 11, 11)
    trained = apply_paper_b_regularization(model, 0.1, 0.01, seed=0)
    assert isinstance(trained, WeightNoise) and trained.model is model
    assert trained.stddev == 0.01
    x = np.array([[1, 2], [3, 4]])
    model(x)
    assert len(model.losses) == 3  # one entropy term per weight matrix
    penalty = float(sum(keras.ops.convert_to_numpy(v) for v in model.losses))
    assert 0 < penalty <= 0.1 * np.log(16)  # strength x mean entropy <= log(rank)


def test_zero_strengths_leave_the_model_as_it_is():
    model = build_modular_model(CONFIG, 11, 11)
    assert apply_paper_b_regularization(model, 0.0, 0.0) is model
    model(np.array([[1, 2]]))
    assert not model.losses


def test_negative_strengths_are_refused_by_name():
    model = build_modular_model(CONFIG, 11, 11)
    with pytest.raises(ValueError, match="weight_noise=-1"):
        apply_paper_b_regularization(model, 0.1, -1)
