"""The toy MLP of Omnigrok and paper A, with initial parameters scaled by alpha.

Sakamoto & Sato (arXiv 2509.20829), following Omnigrok (Liu et al., 2023), induce
grokking on image sets by multiplying the initial parameters by alpha (see
``keras_grok.models.init_scale``). The builder returns an uncompiled functional model
whose penultimate representation is the layer ``"features"`` and whose outputs are
the ``"logits"`` layer's.
"""

from __future__ import annotations

import math

import keras

from keras_grok.models.init_scale import initializers, scale_weights
from keras_grok.models.model_utils import check_input_shape, layer_seed
from keras_grok.utils.argument_validation import validate_int_arg, validate_seed


def toy_mlp(
    input_shape: tuple[int, ...],
    num_classes: int,
    hidden: int = 200,
    depth: int = 2,
    init_scale: float = 1.0,
    init: str = "torch",
    seed: int | None = None,
) -> keras.Model:
    """The MLP of Omnigrok and paper A: flatten, ``depth`` ReLU layers, linear read-out.

    MNIST: 784-200-200-10. The last hidden layer (post-ReLU) is ``"features"``. Every
    parameter is multiplied by ``init_scale`` after initialization (alpha = 8 in the
    papers).

    Args:
        input_shape: shape of one input, e.g. ``(28, 28, 1)``.
        num_classes: number of classes K.
        hidden: width of each hidden layer. Defaults to `200`.
        depth: number of hidden layers. Defaults to `2`.
        init_scale: alpha, multiplying every parameter. Defaults to `1.0`.
        init: ``"torch"`` (the papers' PyTorch default) or ``"keras"`` (see
            ``keras_grok.models.init_scale``). Defaults to `"torch"`.
        seed: seed of the initializers, or None for Keras' global seed.
            Defaults to `None`.

    Raises:
        ValueError: ``input_shape`` not integers >= 1, ``num_classes``,
            ``hidden`` or ``depth`` not an integer >= 1, or a bad ``seed``,
            ``init_scale`` or ``init`` (each message names the argument).

    Example:
    ```python
    model = toy_mlp((28, 28, 1), 10, init_scale=8.0, seed=0)
    model.get_layer("features").output.shape  # (None, 200)
    ```
    """
    input_shape = check_input_shape(input_shape, rank=None)
    validate_int_arg(num_classes, "num_classes")
    validate_int_arg(hidden, "hidden")
    validate_int_arg(depth, "depth")
    validate_seed(seed)
    inputs = keras.Input(tuple(input_shape), name="images")
    x = keras.layers.Flatten(name="flatten")(inputs)
    fan_in = math.prod(input_shape)
    layers = []
    for i in range(depth):
        name = "features" if i == depth - 1 else f"hidden_{i}"
        layers.append(
            keras.layers.Dense(
                hidden,
                activation="relu",
                name=name,
                **initializers(init, fan_in, layer_seed(seed, i)),
            )
        )
        x = layers[-1](x)
        fan_in = hidden
    layers.append(
        keras.layers.Dense(
            num_classes,
            name="logits",
            **initializers(init, hidden, layer_seed(seed, depth)),
        )
    )
    model = keras.Model(inputs, layers[-1](x), name="toy_mlp")
    scale_weights(layers, init_scale)
    return model
