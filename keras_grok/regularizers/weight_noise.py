"""WeightNoise: Gaussian noise on the weights in training; clean weights updated."""

from __future__ import annotations

import keras

from keras_grok.utils.argument_validation import (
    FLOAT32_MAX,
    validate_float_arg,
    validate_seed,
)


@keras.saving.register_keras_serializable(package="keras_grok")
class WeightNoise(keras.Model):
    """Wraps a model so that training sees noisy weights and updates clean ones.

    Paper B's regularized setting (DeMoss et al., arXiv 2412.09810) trains with
    Gaussian noise on the weights: at every training step each trainable weight
    ``w`` is replaced by ``w + n`` with a fresh ``n ~ N(0, stddev^2)`` (i.i.d.
    per entry) for that step's forward and backward pass, and the optimizer then
    applies the resulting gradient ``dL/dw evaluated at w + n`` to the clean
    ``w``. The noise is never written into the weights, so weight decay and the
    optimizer's state see the clean weights too. Precisely:

    - noisy: the forward pass of ``fit`` / ``train_on_batch`` (``training=True``),
      hence the logged training ``loss``, and the gradient;
    - clean: ``predict``, ``evaluate`` and any call with ``training=False``;
      weight regularizers (e.g. ``SpectralEntropy``), which Keras evaluates
      outside the forward pass; and the update itself.

    Trainable weights only (biases and norm scales included); non-trainable
    state such as batch-norm statistics is updated as usual. It works the same on
    JAX, TensorFlow and PyTorch: the noisy values are substituted for the
    variables with a ``keras.StatelessScope`` during the wrapped model's call.

    Compile and train the wrapper; its weights are the wrapped model's, which
    stays usable on its own (e.g. for saving or measuring). Compiling the wrapper
    also gives the wrapped model the wrapper's optimizer (one set of weights, one
    optimizer state), so ``save`` writes that state once and
    ``keras.saving.load_model`` restores it, whether the wrapper or the wrapped
    model is saved.

    Args:
        model: the model to train.
        stddev: the noise's standard deviation, >= 0 (0 trains normally).
            Paper B: 1e-2 for a+b and a*b, 1e-3 for the other operations.
            Defaults to `0.01`.
        seed: seed of the noise. Defaults to `None`.

    Example:
    ```python
    model = keras_grok.models.modular_mlp(97)
    noisy = keras_grok.regularizers.weight_noise.WeightNoise(model, stddev=1e-2)
    noisy.compile(keras.optimizers.AdamW(1e-3, weight_decay=1.0), loss=...)
    noisy.fit(x, y, epochs=100)
    model.predict(x)  # the clean weights
    ```
    """

    def __init__(
        self, model: keras.Model, stddev: float = 0.01, seed: int | None = None, **kw
    ):
        super().__init__(**kw)
        if not isinstance(model, keras.Model):
            raise ValueError(
                "model must be a keras.Model to wrap. "
                f"Received: model={model!r} of type {type(model).__name__}"
            )
        stddev = validate_float_arg(stddev, "stddev", maximum=FLOAT32_MAX)
        self.model = model
        self.stddev = stddev
        self.seed = validate_seed(seed)
        self.seed_generator = keras.random.SeedGenerator(seed)
        if model.built:
            # The weights exist already: a loaded wrapper can build its
            # optimizer (and so receive the saved optimizer state) at once.
            self.built = True

    def compile(self, *args, **kwargs):
        super().compile(*args, **kwargs)
        # Keras saves an object once, under the first attribute path it meets,
        # and walks "model" before "optimizer": with the wrapped model holding the
        # same optimizer, its state is written and read back under
        # "model/optimizer" alike (else it is written there, when the wrapped
        # model was compiled with it, and looked for under "optimizer").
        self.model.optimizer = self.optimizer

    def compile_from_config(self, config):
        # Keras' own would skip `compile` for a model that overrides it.
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def call(self, inputs, training=None):
        if not training or self.stddev == 0:
            return self.model(inputs, training=training)
        trainable = {id(v) for v in self.model.trainable_variables}
        mapping = []
        for variable in self.model.variables:
            value = variable.value
            if id(variable) in trainable:
                value = value + keras.random.normal(
                    variable.shape,
                    stddev=self.stddev,
                    dtype=variable.dtype,
                    seed=self.seed_generator,
                )
            mapping.append((variable, value))
        # Every variable of the wrapped model is in the mapping: on JAX this call
        # already runs inside the trainer's StatelessScope, and a nested scope does
        # not fall back to the outer one for variables it does not map.
        with keras.StatelessScope(mapping, collect_losses=True) as scope:
            initial = {id(v): scope.get_current_value(v) for v, _ in mapping}
            outputs = self.model(inputs, training=True)
        for variable, _ in mapping:
            value = scope.get_current_value(variable)
            if id(variable) not in trainable and value is not initial[id(variable)]:
                variable.assign(value)  # e.g. batch-norm moving statistics
        for loss in scope.losses:
            self.add_loss(loss)
        return outputs

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "model": keras.saving.serialize_keras_object(self.model),
            "stddev": self.stddev,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["model"] = keras.saving.deserialize_keras_object(
            config["model"], custom_objects=custom_objects
        )
        return cls(**config)
