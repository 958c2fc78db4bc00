"""ClassToken: a learned class token prepended to a sequence, as in ViT."""

from __future__ import annotations

import keras
from keras import ops

from keras_grok.layers.position_embedding import _initializer


@keras.saving.register_keras_serializable(package="keras_grok")
class ClassToken(keras.layers.Layer):
    """Prepends a learned class token to a ``(batch, length, dim)`` sequence.

    The ``[CLS]`` token of ViT (Dosovitskiy et al., 2021): one learned ``(dim,)``
    vector is placed before the sequence, so the output is ``(batch, length + 1,
    dim)``; after the encoder, the token's output summarizes the whole image. Paper
    A's patch transformer (Sakamoto & Sato, arXiv 2509.20829; see
    ``keras_grok.models.patch_transformer``) reads its features there.

    Args:
        initializer: initializer of the ``(dim,)`` token.
            Defaults to `RandomNormal(stddev=0.02)`.

    Raises:
        ValueError: ``initializer`` is not one Keras can interpret.

    Example:
    ```python
    patches = keras.Input((49, 128))
    x = keras_grok.layers.ClassToken()(patches)  # (None, 50, 128)
    ```
    """

    def __init__(
        self,
        initializer: str | dict | keras.initializers.Initializer | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.initializer = _initializer(
            keras.initializers.RandomNormal(stddev=0.02)
            if initializer is None
            else initializer
        )

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(
                "ClassToken prepends a token to (batch, length, dim) sequences "
                "of a known dim. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        self.token = self.add_weight(
            shape=(input_shape[-1],), initializer=self.initializer, name="token"
        )

    def call(self, inputs):
        batch, dim = ops.shape(inputs)[0], ops.shape(inputs)[-1]
        token = ops.broadcast_to(ops.cast(self.token, inputs.dtype), (batch, 1, dim))
        return ops.concatenate([token, inputs], axis=1)

    def compute_output_shape(self, input_shape):
        length = None if input_shape[1] is None else input_shape[1] + 1
        return (input_shape[0], length, input_shape[2])

    def get_config(self):
        return {
            **super().get_config(),
            "initializer": keras.initializers.serialize(self.initializer),
        }
