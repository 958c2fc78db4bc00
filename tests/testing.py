"""Test helpers shared by keras-grok's tests (no private Keras imports)."""

from __future__ import annotations

import keras
import numpy as np


def to_numpy(value) -> np.ndarray:
    """Converts a tensor of any backend, a Keras variable or an array to NumPy."""
    if isinstance(value, keras.Variable):
        value = value.value
    return np.asarray(keras.ops.convert_to_numpy(value))


def assert_allclose(actual, desired, rtol: float = 1e-6, atol: float = 0.0) -> None:
    """``np.testing.assert_allclose`` for tensors of any backend."""
    np.testing.assert_allclose(
        to_numpy(actual), to_numpy(desired), rtol=rtol, atol=atol
    )


def backend() -> str:
    return keras.backend.backend()
