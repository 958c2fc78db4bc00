"""A learned position embedding added to a sequence of token embeddings."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="keras_grok")
class PositionEmbedding(keras.layers.Layer):
    """Adds a learned vector per position to a ``(batch, length, dim)`` input.

    The transformer of paper B (DeMoss et al., arXiv 2412.09810) sums a learned token
    embedding and a learned position embedding; this layer is the second half.

    Args:
        max_length: the longest sequence the layer accepts.
        initializer: initializer of the ``(max_length, dim)`` table.
            Defaults to `"random_normal"`.

    Raises:
        ValueError: ``max_length`` is not an integer >= 1, or ``initializer``
            is not one Keras can interpret.

    Example:
    ```python
    tokens = keras.Input((4,), dtype="int32")
    x = keras.layers.Embedding(115, 128)(tokens)
    x = PositionEmbedding(max_length=4)(x)
    ```
    """

    def __init__(self, max_length: int, initializer="random_normal", **kwargs):
        super().__init__(**kwargs)
        if (
            isinstance(max_length, bool)
            or not isinstance(max_length, (int, np.integer))
            or max_length < 1
        ):
            raise ValueError(
                "max_length must be >= 1, an integer. "
                f"Received: max_length={max_length!r}"
            )
        self.max_length = int(max_length)
        self.initializer = _initializer(initializer)

    def build(self, input_shape):
        length = input_shape[-2] if len(input_shape) >= 3 else None
        if len(input_shape) < 3 or (length is not None and length > self.max_length):
            raise ValueError(
                f"PositionEmbedding(max_length={self.max_length}) adds to "
                "(batch, length, dim) sequences of length <= max_length. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        self.table = self.add_weight(
            shape=(self.max_length, input_shape[-1]),
            initializer=self.initializer,
            name="table",
        )

    def call(self, inputs):
        length = ops.shape(inputs)[-2]
        return inputs + ops.cast(self.table[:length], inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            max_length=self.max_length,
            initializer=keras.initializers.serialize(self.initializer),
        )
        return config


def _initializer(initializer):
    """``keras.initializers.get(initializer)``, its refusal naming the argument."""
    try:
        return keras.initializers.get(initializer)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"initializer must be a Keras initializer, its name or its config "
            f"({error}). Received: initializer={initializer!r}"
        ) from None
