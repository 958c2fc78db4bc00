"""Reading a ``tf.data.Dataset`` that a user passes as a monitor's data.

Keras' own ``validation_data`` takes one; the monitors read all of their data at
every measurement, so a finite data set is read into arrays once, by iterating
it (no TensorFlow import: the object brings its own methods).
"""

from __future__ import annotations

import numpy as np

INFINITE_CARDINALITY = -1
"""``tf.data.INFINITE_CARDINALITY``: what ``cardinality()`` says of ``.repeat()``."""


def tf_dataset_as_pair(data, name: str):
    """A finite ``tf.data.Dataset`` of ``(x, y)`` examples or batches as two arrays.

    Anything else comes back unchanged. Batched (first axis of unknown size)
    elements are concatenated, single examples stacked.

    Raises:
        ValueError: an infinite data set, elements that are not ``(x, y)``
            pairs, or no element at all (the message uses ``name``).
    """
    if not (
        type(data).__module__.startswith("tensorflow")
        and hasattr(data, "as_numpy_iterator")
    ):
        return data
    if int(data.cardinality()) == INFINITE_CARDINALITY:
        raise ValueError(
            f"{name} must be a finite data set: the monitors read all of it at "
            f"every measurement. Received: an infinite {type(data).__name__} "
            "(drop .repeat(), or pass .take(N))"
        )
    spec = data.element_spec
    if not (isinstance(spec, tuple) and len(spec) == 2):
        raise ValueError(
            f"{name} must yield (x, y) pairs. Received: a data set of {spec}"
        )
    batched = spec[0].shape.rank and spec[0].shape[0] is None
    xs, ys = [], []
    for x, y in data.as_numpy_iterator():
        xs.append(x)
        ys.append(y)
    if not xs:
        raise ValueError(f"{name} must hold at least one example. Received: empty")
    join = np.concatenate if batched else np.stack
    return join(xs), join(ys)
