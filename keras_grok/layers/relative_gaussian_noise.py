"""RelativeGaussianNoise: training noise scaled by each dimension's batch std."""

from __future__ import annotations

import keras
from keras import ops

from keras_grok.utils.argument_validation import (
    FLOAT32_MAX,
    validate_float_arg,
    validate_float_dtype,
    validate_seed,
)


@keras.saving.register_keras_serializable(package="keras_grok")
class RelativeGaussianNoise(keras.layers.Layer):
    """Adds Gaussian noise scaled by each dimension's batch std, in training only.

    In training, ``outputs = inputs + stddev * std_batch(inputs) * eps`` with
    ``eps ~ N(0, 1)`` drawn per element and ``std_batch`` the standard deviation of
    each dimension over the batch (no gradient flows through it); at inference the
    layer is the identity. Butakov et al. (ICLR 2024) train the autoencoder that
    compresses X for their lossy-compression mutual information, used by paper A
    (Sakamoto & Sato, arXiv 2509.20829), with noise of 0.1 relative to the code's
    scale, so that the code cannot grow to drown the noise (see
    ``keras_grok.measures.lossy_compression.fit_input_encoder``).

    Args:
        stddev: noise std relative to the batch std of each dimension, finite and
            >= 0. Defaults to `0.1`.
        seed: seed of the noise, or None for Keras' global seed.
            Defaults to `None`.

    Example:
    ```python
    inputs = keras.Input((784,))
    code = keras.layers.Dense(4)(inputs)
    noisy = keras_grok.layers.RelativeGaussianNoise(0.1, seed=0)(code)
    ```
    """

    def __init__(self, stddev: float = 0.1, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.stddev = validate_float_arg(stddev, "stddev", maximum=FLOAT32_MAX)
        self.seed = validate_seed(seed)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=False):
        validate_float_dtype(inputs, "inputs")  # integer noise would be rounded away
        if not training or self.stddev == 0:
            return inputs
        scale = ops.stop_gradient(ops.std(inputs, axis=0, keepdims=True))
        noise = keras.random.normal(ops.shape(inputs), seed=self.seed_generator)
        return inputs + self.stddev * scale * ops.cast(noise, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(stddev=self.stddev, seed=self.seed)
        return config
