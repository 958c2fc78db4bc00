"""The shared measurement pass: one compiled read of a chunk of rows.

At a measured step the ``MeasurementCoordinator`` concatenates the data sets the
due monitors name and runs one ``MeasurementPass`` call per chunk of rows: one
forward pass in inference mode that reduces the outputs and features on the
device to what was asked for (sums per data set and per class), so only small
arrays come back to the host. The call is built once per combination of requests
and compiled by Keras like any model's ``predict_on_batch`` (``jax.jit`` on JAX,
``tf.function`` on TensorFlow, eager on torch).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops

from keras_grok import losses as grok_losses  # a module: see utils/registration
from keras_grok.callbacks.forward_reader import ForwardReader
from keras_grok.callbacks.measurement_requests import PassInputs, PassRows, Request


class MeasurementPass(keras.Model):
    """One compiled forward pass over a chunk of rows of several data sets.

    ``predict_on_batch({"x", "y", "labels", "sets"})`` returns a flat tuple: per
    request, the ``request.width(single_chunk)`` arrays of its reduction of the
    rows (``sets`` says which data set a row is from). Built once per combination
    of requests and data sets; shares the monitored model's variables.

    Args:
        model: the monitored model.
        requests: ``(request, set indices)`` pairs, the set indices in
            ``[0, num_sets)``.
        num_sets: how many data sets the rows come from.
        single_chunk: whether all rows come in one call, so the collapse
            metrics can be taken inside it.
    """

    def __init__(
        self,
        model: keras.Model,
        requests: Sequence[tuple[Request, tuple[int, ...]]],
        num_sets: int,
        single_chunk: bool,
    ):
        super().__init__(name=f"measurement_pass_{model.name}")
        layers = tuple(dict.fromkeys(r.layer for r, _ in requests if r.layer))
        self.reader = ForwardReader(model, layers)
        self.requests = list(requests)
        self.num_sets = num_sets
        self.single_chunk = single_chunk
        self.loss_fn = grok_losses.per_example_loss(getattr(model, "loss", None))
        self.built = True

    def call(self, inputs):
        outputs, features = self.reader(inputs["x"])
        seen = PassInputs(
            outputs=outputs,
            features=features,
            y=inputs["y"],
            labels=inputs["labels"],
            sets=ops.cast(inputs["sets"], "int32"),
            num_sets=self.num_sets,
            loss_fn=self.loss_fn,
            single_chunk=self.single_chunk,
        )
        results = []
        for request, members in self.requests:
            results.extend(request.reduce(seen, members))
        return tuple(results)


def pass_answers(requests, sets, chunks, set_ids, single_chunk) -> dict:
    """The results of one pass's chunks, keyed by ``(request, data set key)``."""
    rows = PassRows(sets, set_ids, single_chunk)
    values = {}
    position = 0
    for request, members in requests:
        width = request.width(single_chunk)
        parts = [chunk[position : position + width] for chunk in chunks]
        for i, value in request.decode(parts, rows, members).items():
            values[(request, sets[i].key)] = value
        position += width
    return values
