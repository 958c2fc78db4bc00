"""Test helpers shared by keras-grok's tests (no private Keras imports)."""

from __future__ import annotations

import copy
import types

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


def assert_serialization_round_trip(obj) -> object:
    """Checks that a registered Keras object survives both config round trips.

    ``type(obj).from_config(obj.get_config())`` and
    ``deserialize_keras_object(serialize_keras_object(obj))`` must both give an
    object of the same class with an equal config. A registered function has no
    config: ``deserialize_keras_object(serialize_keras_object(fn))`` must give
    back the function itself. Returns the deserialized copy.
    """
    if isinstance(obj, types.FunctionType):
        restored = keras.saving.deserialize_keras_object(
            keras.saving.serialize_keras_object(obj)
        )
        assert restored is obj
        return restored
    config = obj.get_config()
    # A deep copy: deserializing a nested model (WeightNoise's) empties its config.
    clone = type(obj).from_config(copy.deepcopy(config))
    assert type(clone) is type(obj)
    assert clone.get_config() == config
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(obj)
    )
    assert type(restored) is type(obj)
    assert restored.get_config() == config
    return restored
