"""Reading a model's features inside one compiled function, for the monitors.

A monitor wraps the model in a small ``keras.Model`` (``FeatureReduction``) whose
``call`` computes the features of a batch and reduces them (to collapse
statistics, for instance). Keras compiles that wrapper's ``predict_on_batch``
like any model's (``jax.jit`` on JAX, ``tf.function`` on TensorFlow; eager on
torch), once per input shape, and it shares the model's variables, so a
measurement is one call that sees the current weights and returns only the
small reduced arrays.
"""

from __future__ import annotations

from collections.abc import Callable

import keras

from keras_grok.layers.feature_tap import FeatureTap


def all_layers(model: keras.layers.Layer) -> list[keras.layers.Layer]:
    """Every layer inside ``model``, depth first, nested models included."""
    found = []
    for layer in getattr(model, "layers", []):
        found.append(layer)
        found.extend(all_layers(layer))
    return found


def find_layer(model: keras.Model, name: str) -> keras.layers.Layer:
    """The layer of ``model`` called ``name``, searched in nested models too.

    Raises:
        ValueError: no such layer; the message lists the model's layer names.
    """
    layers = all_layers(model)
    for layer in layers:
        if layer.name == name:
            return layer
    names = ", ".join(repr(layer.name) for layer in layers)
    raise ValueError(
        f"Model {model.name!r} has no layer named {name!r}. Its layers: {names}. "
        "Name the features layer (e.g. Dense(..., name='features')) or, in a "
        "subclassed model, add keras_grok.layers.FeatureTap(name=...) there."
    )


class FeatureReduction(keras.Model):
    """``{"x": x, "extra": e} -> reduce(features(x), e)`` as one compiled model.

    Built once per monitored model. Features come from a feature-extractor
    ``keras.Model(model.inputs, layer.output)`` when ``layer`` is a top-level
    layer of a functional model, and otherwise from a ``FeatureTap`` anywhere in
    the model, which keeps its input while the model runs inside this call.

    Args:
        model: the monitored model.
        layer: name of the features layer.
        reduce: ``(features, extra) -> tensor or tuple of tensors``, in
            ``keras.ops``; ``extra`` is None when the inputs are ``x`` alone.
    """

    def __init__(self, model: keras.Model, layer: str, reduce: Callable):
        super().__init__(name=f"feature_reduction_{model.name}")
        found = find_layer(model, layer)
        self._reduce = reduce
        self.extractor = None
        self.source = None
        self.tap = None
        try:
            inputs = model.inputs
            self.extractor = keras.Model(
                inputs[0] if len(inputs) == 1 else inputs, found.output
            )
        except (AttributeError, ValueError) as error:
            if not isinstance(found, FeatureTap):
                raise ValueError(
                    f"Layer {layer!r} of model {model.name!r} has no symbolic output "
                    "in the model's graph (a subclassed or nested model), so no "
                    "feature extractor can be built from it. Mark the features "
                    "with keras_grok.layers.FeatureTap(name=...) instead."
                ) from error
            self.source = model
            self.tap = found
        # Its variables are the monitored model's: nothing to build. (Unbuilt,
        # Keras would run `call` eagerly once before compiling it, and on JAX
        # compile every op of that eager run on its own: ~1 s of first call.)
        self.built = model.built

    def features(self, x):
        """The features of a batch of inputs, in inference mode."""
        if self.extractor is not None:
            return self.extractor(x, training=False)
        with self.tap.capture():
            self.source(x, training=False)
            features = self.tap.captured
        if features is None:
            raise ValueError(
                f"FeatureTap {self.tap.name!r} was not called by the model."
            )
        return features

    def call(self, inputs):
        return self._reduce(self.features(inputs["x"]), inputs.get("extra"))
