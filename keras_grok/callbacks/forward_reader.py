"""Reading a model's outputs and named layers' features in one forward pass.

The monitors name a layer (``"features"``); ``find_layer`` finds it, nested models
included, and ``ForwardReader`` computes the model's outputs and any number of
named layers' outputs from one forward pass in inference mode: through a
multi-output ``keras.Model`` when the layers have symbolic outputs in the model's
graph (a functional model), and otherwise through ``FeatureTap`` layers, which keep
their input while the model runs.
"""

from __future__ import annotations

import contextlib

import keras

from keras_grok.layers.feature_tap import FeatureTap


def all_layers(model: keras.layers.Layer) -> list[keras.layers.Layer]:
    """Every layer inside ``model``, depth first, nested models included."""
    found = []
    for layer in getattr(model, "layers", []):
        found.append(layer)
        found.extend(all_layers(layer))
    return found


FEATURES_HINT = (
    "Name the features layer (e.g. Dense(..., name='features')) or, in a "
    "subclassed model, add keras_grok.layers.FeatureTap(name=...) there."
)


def find_layer(
    model: keras.Model, name: str, hint: str = FEATURES_HINT
) -> keras.layers.Layer:
    """The layer of ``model`` called ``name``, searched in nested models too.

    The shallowest such layer wins: a top-level layer before one of the same name
    inside a nested model (whose output is not in the outer model's graph).

    Args:
        model: the model.
        name: the layer's name.
        hint: what to do when it is missing, appended to the message.
            Defaults to naming the features layer.

    Raises:
        ValueError: no such layer; the message lists the model's layer names.
    """
    level = list(getattr(model, "layers", []))
    while level:  # breadth first
        for layer in level:
            if layer.name == name:
                return layer
        level = [inner for layer in level for inner in getattr(layer, "layers", [])]
    layers = all_layers(model)
    names = ", ".join(repr(layer.name) for layer in layers)
    raise ValueError(
        f"Model {model.name!r} has no layer named {name!r}. Its layers: {names}. "
        + hint
    )


class ForwardReader(keras.layers.Layer):
    """``x -> (outputs, {layer: features})`` from one inference-mode forward pass.

    Args:
        model: the monitored model (single input, single output).
        layers: names of the layers whose outputs to read.
    """

    def __init__(self, model: keras.Model, layers: tuple[str, ...]):
        super().__init__(name=f"forward_reader_{model.name}")
        found = [find_layer(model, name) for name in layers]
        self.layer_names = tuple(layers)
        self.model = model
        self.extractor = None
        self.taps: tuple[FeatureTap, ...] = ()
        if not found:
            return
        # A wrapper that computes in inference mode with the model it wraps
        # (keras_grok.regularizers.weight_noise.WeightNoise) reads from that
        # model's graph.
        graph = getattr(model, "model", model) if not _has_graph(model) else model
        for layer in found:
            calls = _calls_in(graph, layer)
            if calls > 1:
                raise ValueError(
                    f"Layer {layer.name!r} is called {calls} times in model "
                    f"{model.name!r} (shared), so which call's output holds the "
                    "features is ambiguous. Mark the output to measure with "
                    "keras_grok.layers.FeatureTap(name=...) after that call, and "
                    "name that. Received: layer="
                    f"{layer.name!r}"
                )
        for layer in found:
            try:
                output = layer.output
            except (AttributeError, ValueError):
                continue  # no symbolic output: handled below
            if isinstance(output, (list, tuple, dict)):
                raise ValueError(
                    f"Layer {layer.name!r} of model {model.name!r} has "
                    f"{len(output)} outputs (an LSTM with return_state=True, say), "
                    "so which holds the features is ambiguous. Mark the one to "
                    "measure with keras_grok.layers.FeatureTap(name=...) and name "
                    f"that. Received: layer={layer.name!r}"
                )
        try:
            inputs = graph.inputs
            self.extractor = keras.Model(
                inputs[0] if len(inputs) == 1 else inputs,
                [graph.outputs[0], *(layer.output for layer in found)],
            )
        except (AttributeError, ValueError, TypeError) as error:
            untapped = [
                layer.name for layer in found if not isinstance(layer, FeatureTap)
            ]
            if untapped:
                raise ValueError(
                    f"Layer {untapped[0]!r} of model {model.name!r} has no symbolic "
                    "output in the model's graph (a subclassed or nested model), so "
                    "no feature extractor can be built from it. Mark the features "
                    "with keras_grok.layers.FeatureTap(name=...) instead."
                ) from error
            self.taps = tuple(found)
        # Its variables are the monitored model's: nothing to build.
        self.built = True

    def call(self, x):
        if self.extractor is not None:
            outputs, *features = self.extractor(x, training=False)
            return outputs, dict(zip(self.layer_names, features))
        with contextlib.ExitStack() as stack:
            for tap in self.taps:
                stack.enter_context(tap.capture())
            outputs = self.model(x, training=False)
            features = {tap.name: tap.captured for tap in self.taps}
        missing = [name for name, value in features.items() if value is None]
        if missing:
            raise ValueError(f"FeatureTap {missing[0]!r} was not called by the model.")
        return outputs, features


def _calls_in(graph, layer) -> int:
    # How often ``layer`` is called in a functional graph (its nodes there); 1
    # where the graph does not list its nodes (Sequential, subclassed).
    nodes = getattr(graph, "_nodes_by_depth", None) or {}
    return sum(1 for ns in nodes.values() for n in ns if n.operation is layer) or 1


def _has_graph(model) -> bool:
    try:
        return bool(model.inputs)
    except (AttributeError, ValueError):
        return False
