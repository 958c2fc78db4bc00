"""FeatureTap: an identity layer that marks the features a monitor should read."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import keras


@keras.saving.register_keras_serializable(package="keras_grok")
class FeatureTap(keras.layers.Layer):
    """Passes its input through unchanged and names it as the model's features.

    The collapse and information-plane monitors read the penultimate features
    from a layer found by name. In a functional model any named layer works
    (``layer="features"``). In a subclassed model, layers have no symbolic
    outputs to build a feature extractor from: put a ``FeatureTap`` where the
    features are and pass its name to the monitor. While a monitor measures, the
    tap keeps the tensor it passes (inside the monitor's own compiled function);
    at any other time it is a plain identity with no cost and no weights.

    Args:
        **kwargs: standard layer arguments, ``name`` above all (the monitors'
            default layer name is ``"features"``).

    Example:
    ```python
    class Classifier(keras.Model):
        def __init__(self):
            super().__init__()
            self.hidden = keras.layers.Dense(64, activation="relu")
            self.tap = keras_grok.layers.FeatureTap(name="features")
            self.out = keras.layers.Dense(10)

        def call(self, x):
            return self.out(self.tap(self.hidden(x)))

    monitor = keras_grok.callbacks.CollapseMonitor((x, y), layer="features")
    ```
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True
        self._capturing = False
        self.captured = None

    def call(self, inputs):
        if self._capturing:
            self.captured = inputs
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    @contextlib.contextmanager
    def capture(self) -> Iterator[FeatureTap]:
        """Keeps the tensor passed through the tap in ``captured`` while open.

        Read ``captured`` inside the block, in the same (possibly traced) function
        that called the model; it is cleared on exit.
        """
        self._capturing, self.captured = True, None
        try:
            yield self
        finally:
            self._capturing, self.captured = False, None
