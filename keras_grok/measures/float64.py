"""Float64 arithmetic in ``keras.ops`` that stays float64 on every backend.

The information-plane estimators (nHSIC's resolvents ``K (K + eps n I)^-1`` with
``eps = 1e-5``, KDE log-densities, whitening) lose ~1e-4 relative accuracy in float32,
so they compute in float64. Two backend facts make that need care (Keras 3.15): JAX
truncates float64 to float32 unless x64 is enabled, and on torch ``ops.mean``,
``ops.matmul`` and ``ops.maximum`` with a Python scalar return float32 for float64
inputs. ``float64_scope`` enables x64 on JAX for one block only (the one place
keras-grok touches a backend directly: ``keras.ops`` has no switch for it), and the
helpers below avoid the downcasting ops.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable

import keras
from keras import ops

from keras_grok.utils.argument_validation import native_array


def rows_float64(a):
    """Rows of ``a`` flattened, as float64 (call inside ``float64_scope``)."""
    a = ops.cast(ops.convert_to_tensor(native_array(a)), "float64")
    return ops.reshape(a, (int(a.shape[0]), -1))


def mean_float64(a, axis: int):
    """``ops.mean`` keeping float64: on torch (Keras 3.15) it computes in float32."""
    return ops.sum(a, axis=axis, keepdims=True) / a.shape[axis]


def float64_scope() -> contextlib.AbstractContextManager:
    """A context in which ``keras.ops`` computes in float64 on every backend.

    JAX truncates float64 to float32 unless x64 is enabled; ``jax.enable_x64``
    turns it on for this block only, leaving the user's global setting alone.
    TensorFlow and PyTorch need nothing.
    """
    if keras.backend.backend() == "jax":
        import jax

        return jax.enable_x64(True)
    return contextlib.nullcontext()


def computed_in_float64(function: Callable) -> Callable:
    """Runs ``function`` inside ``float64_scope``: a public helper called on its
    own (not from an estimator that opened the scope) computes in float64 on JAX
    too, as it does on TensorFlow and torch for float64 inputs."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with float64_scope():
            return function(*args, **kwargs)

    return wrapper


def matmul_float64(a, b):
    """``a @ b`` for 2-D tensors, keeping float64.

    ``ops.einsum``, because on the torch backend (Keras 3.15) ``ops.matmul`` of
    two float64 tensors returns float32.
    """
    return ops.einsum("ij,jk->ik", a, b)


def squared_distances(a, b):
    """``||a_i - b_j||^2`` by the expansion ``|a|^2 + |b|^2 - 2 a.b``, clipped at 0."""
    squared_a = ops.sum(ops.square(a), axis=1)[:, None]
    squared_b = ops.sum(ops.square(b), axis=1)[None, :]
    # ops.relu, not ops.maximum(., 0.0): on torch the latter returns float32.
    return ops.relu(squared_a + squared_b - 2.0 * matmul_float64(a, ops.transpose(b)))
