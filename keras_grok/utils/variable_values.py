"""A Keras variable's value as a NumPy array, on every backend, without warnings.

``keras.ops.convert_to_numpy(variable)`` goes through the ``__array__`` of a
Keras ``Variable``, a ``tf.Variable`` or a torch ``Parameter``, none of which takes
NumPy 2's ``copy`` keyword: NumPy warns (a ``DeprecationWarning``, which stops
the run under ``PYTHONWARNINGS=error``). Each backend's own conversion does not.
"""

from __future__ import annotations

import keras
import numpy as np


def variable_numpy(variable) -> np.ndarray:
    """The current value of ``variable`` (a Keras variable) as a NumPy array."""
    value = getattr(variable, "value", variable)
    backend = keras.backend.backend()
    if backend == "tensorflow" and hasattr(value, "numpy"):
        return np.asarray(value.numpy())
    if backend == "torch" and hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return np.asarray(keras.ops.convert_to_numpy(value))
