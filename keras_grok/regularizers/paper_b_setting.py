"""Paper B's regularized setting ("ours"): spectral entropy and weight noise."""

from __future__ import annotations

import keras

from keras_grok.regularizers.spectral_entropy import add_spectral_entropy
from keras_grok.regularizers.weight_noise import WeightNoise
from keras_grok.utils.argument_validation import (
    FLOAT32_MAX,
    validate_float_arg,
)


def apply_paper_b_regularization(
    model: keras.Model,
    spectral_entropy: float = 0.1,
    weight_noise: float = 0.01,
    seed: int | None = None,
) -> keras.Model:
    """Adds paper B's regularizers to a compiled model; returns the model to train.

    DeMoss et al. (arXiv 2412.09810) regularize with AdamW weight decay (set on
    the model's optimizer), ``spectral_entropy`` times the mean spectral entropy
    of the weight matrices (``add_spectral_entropy``) and Gaussian weight noise of
    std ``weight_noise`` in the training forward and backward pass
    (``WeightNoise``; paper B: 1e-2 for a+b and a*b, 1e-3 for the others). A
    strength of 0 leaves that regularizer out.

    Args:
        model: a compiled model.
        spectral_entropy: strength on the mean entropy, >= 0. Defaults to `0.1`.
        weight_noise: the noise's std, >= 0. Defaults to `0.01`.
        seed: seed of the noise. Defaults to `None`.

    Returns:
        ``model`` itself, or a ``WeightNoise`` wrapper of it compiled as ``model``
        was (its optimizer, loss, metrics and other ``compile`` arguments), so
        ``fit`` logs the same metrics; train the returned model (its weights are
        ``model``'s; saving it keeps the optimizer state).

    Example:
    ```python
    model = build_modular_model(config, 97, 97)  # AdamW, weight decay 1.0
    trained = apply_paper_b_regularization(model, 0.1, 0.01, seed=0)
    trained.fit(x, y, epochs=100)
    ```
    """
    spectral_entropy = validate_float_arg(
        spectral_entropy, "spectral_entropy", maximum=FLOAT32_MAX
    )
    weight_noise = validate_float_arg(weight_noise, "weight_noise", maximum=FLOAT32_MAX)
    if spectral_entropy > 0:
        add_spectral_entropy(model, spectral_entropy)
    if weight_noise == 0:
        return model
    noisy = WeightNoise(model, weight_noise, seed=seed)
    noisy.compile(**_compile_arguments(model))
    return noisy


def _compile_arguments(model: keras.Model) -> dict:
    """``model``'s ``compile`` arguments, with its own optimizer and loss objects."""
    if not getattr(model, "compiled", False):
        raise ValueError(
            "apply_paper_b_regularization needs a compiled model (its optimizer "
            "carries paper B's weight decay): call model.compile(...) first. "
            f"Received: model={model.name!r}, not compiled"
        )
    arguments = keras.saving.deserialize_keras_object(model.get_compile_config())
    return {**arguments, "optimizer": model.optimizer, "loss": model.loss}
