"""Seeds every random source a run uses, without importing TensorFlow needlessly."""

from __future__ import annotations

import random
import sys

import keras
import numpy as np

from keras_grok.utils.argument_validation import validate_int_arg


def set_random_seed(seed: int) -> None:
    """Seeds Python, NumPy, Keras and the backend, as ``keras.utils.set_random_seed``.

    Keras' own function also seeds TensorFlow whenever it is installed, and finds
    out by importing it (seconds, and TensorFlow's memory, in a JAX or torch run
    that never uses it). This one has the same effects otherwise: Python's
    ``random`` and NumPy's global generator are seeded, Keras' global seed is set
    and its global ``SeedGenerator`` reset, so ``keras.random`` calls and
    initializers without a seed repeat; torch is seeded when it is the backend.
    TensorFlow is seeded when it is the backend or already imported (e.g. for
    ``tf.data``), and is never imported here.

    Args:
        seed: the seed, an integer >= 0.

    Raises:
        ValueError: ``seed`` is not an integer >= 0.

    Example:
    ```python
    set_random_seed(0)
    model = keras_grok.models.modular_mlp(97)  # the same weights every run
    ```
    """
    seed = validate_int_arg(seed, "seed", minimum=0)
    _reset_keras_global_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    if "tensorflow" in sys.modules or keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.random.set_seed(seed)
    if keras.backend.backend() == "torch":
        import torch

        torch.manual_seed(seed)


def _reset_keras_global_seed(seed: int) -> None:
    # Keras exports no setter for its global seed state: these are the two
    # global attributes `keras.utils.set_random_seed` writes (Keras 3.15,
    # keras/src/utils/rng_utils.py), under the same names.
    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator
    from keras.src.utils import rng_utils

    global_state.set_global_attribute(rng_utils.GLOBAL_RANDOM_SEED, seed)
    global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)
