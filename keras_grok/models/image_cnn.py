"""Paper A's toy CNN: two convolutions, a max-pool and two dense layers.

Sakamoto & Sato (arXiv 2509.20829), following Omnigrok (Liu et al., 2023), scale
the initial parameters by alpha (see ``keras_grok.models.init_scale``); in this CNN only
the dense layers. Images follow ``keras.config.image_data_format()``, as
``keras_grok.data.load_images`` returns them.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from keras_grok.models.init_scale import initializers, scale_weights
from keras_grok.models.model_utils import (
    check_input_shape,
    image_channels,
    image_sides,
    layer_seed,
)
from keras_grok.utils.argument_validation import validate_int_arg, validate_seed


def toy_cnn(
    input_shape: tuple[int, ...],
    num_classes: int,
    filters: tuple[int, int] = (16, 32),
    dense: int = 128,
    init_scale: float = 1.0,
    init: str = "torch",
    seed: int | None = None,
) -> keras.Model:
    """Paper A's CNN: conv 16, conv 32 (3x3, ReLU), 2x2 max-pool, dense 128, dense K.

    The dense 128 layer (post-ReLU) is ``"features"``. Only the two dense layers are
    multiplied by ``init_scale``; the convolutions keep their initialization.

    Args:
        input_shape: shape of one image, in Keras' image data format.
        num_classes: number of classes K.
        filters: channels of the two convolutions. Defaults to `(16, 32)`.
        dense: width of the feature layer. Defaults to `128`.
        init_scale: alpha, multiplying the dense layers' parameters.
            Defaults to `1.0`.
        init: ``"torch"`` or ``"keras"`` (see ``keras_grok.models.init_scale``).
            Defaults to `"torch"`.
        seed: seed of the initializers, or None. Defaults to `None`.

    Raises:
        ValueError: ``input_shape`` not 3 integers >= 1 or too small for the
            convolutions, or ``num_classes``, ``dense`` or a ``filters`` entry
            not an integer >= 1 (each message names the argument).
        TypeError: ``filters`` not a sequence.

    Example:
    ```python
    model = toy_cnn((28, 28, 1), 10, init_scale=8.0)
    ```
    """
    input_shape = check_input_shape(input_shape)
    validate_int_arg(num_classes, "num_classes")
    validate_int_arg(dense, "dense")
    validate_seed(seed)
    if isinstance(filters, (str, bytes)) or not isinstance(filters, Sequence):
        raise TypeError(
            "filters must be a sequence of convolution widths, e.g. (16, 32). "
            f"Received: filters={filters!r}"
        )
    if not filters:
        raise ValueError(
            f"filters must list at least one width. Received: filters={filters!r}"
        )
    for width in filters:
        validate_int_arg(width, "filters")
    smallest = 2 * len(filters) + 2  # each 3x3 "valid" conv takes 2, the pool 2
    if min(image_sides(input_shape)) < smallest:
        raise ValueError(
            f"input_shape's height and width must be >= {smallest} for "
            f"{len(filters)} 3x3 convolutions and a 2x2 max-pool. "
            f"Received: input_shape={input_shape!r}"
        )
    inputs = keras.Input(tuple(input_shape), name="images")
    x = inputs
    channels = image_channels(input_shape)
    for i, width in enumerate(filters):
        x = keras.layers.Conv2D(
            width,
            3,
            activation="relu",
            name=f"conv_{i}",
            **initializers(init, channels * 9, layer_seed(seed, i)),
        )(x)
        channels = width
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    features = keras.layers.Dense(
        dense,
        activation="relu",
        name="features",
        **initializers(init, x.shape[-1], layer_seed(seed, len(filters))),
    )
    logits = keras.layers.Dense(
        num_classes,
        name="logits",
        **initializers(init, dense, layer_seed(seed, len(filters) + 1)),
    )
    model = keras.Model(inputs, logits(features(x)), name="toy_cnn")
    scale_weights([features, logits], init_scale)
    return model
