"""SpectralDensityMonitor: the ESD tail exponent of each weight matrix, scheduled."""

from __future__ import annotations

import math
import warnings

import keras
import numpy as np

from keras_grok.callbacks.measurement_requests import PassResults
from keras_grok.callbacks.schedule import ScheduleSpec
from keras_grok.callbacks.scheduled_monitor import ScheduledMonitor
from keras_grok.measures import spectral, spectral_density
from keras_grok.runs.figures import Panel
from keras_grok.utils.argument_validation import validate_int_arg


class SpectralDensityMonitor(ScheduledMonitor):
    """Fits the power-law tail of each weight matrix's ESD at scheduled steps.

    Martin & Mahoney (*Implicit Self-Regularization in Deep Neural Networks*,
    JMLR 22(165), 2021) fit the empirical spectral density of
    ``X = W^T W / N`` with a power law ``p(lambda) ~ lambda^-alpha`` and find
    ``alpha`` in ``[2, 4]`` for well-trained layers; random (untrained) ones
    have a Marchenko-Pastur bulk and a large ``alpha``. This monitor fits
    ``alpha`` as WeightWatcher does (``keras_grok.measures.spectral_density``)
    on the model's weights alone, without data.

    Logs, per measurement (and in the epoch-end ``logs``), without a data-set
    prefix since they are metrics of the weights:

    - ``esd_alpha/{path}`` and ``stable_rank/{path}`` for each matrix, named by
      its variable path (e.g. ``esd_alpha/hidden_0/kernel``);
    - ``esd_alpha``: the mean of the finite per-matrix ``alpha``.

    The matrices are the trainable weights of at least 2 axes (kernels and
    embeddings, in the 2-D view of ``keras_grok.measures.spectral.matrix_shape``)
    whose smaller side is at least ``min_dimension``: a ``d``-wide matrix has
    ``d`` eigenvalues, and the fit needs ``spectral_density.MIN_EIGENVALUES``
    (20) of them (WeightWatcher skips layers under 8 and fits those under 20
    with another estimator). They are fixed from ``model`` when the monitor is
    made, so the run's metrics have fixed columns; the weights are read from the
    trained model at each measurement. A non-finite matrix gets NaN.

    Each measurement costs one float64 SVD per matrix; no forward pass. A
    model without a matrix that large (e.g. a tiny test model) gets a warning
    that lists its weights' shapes, and ``esd_alpha`` is NaN.

    Args:
        model: the model whose matrices to watch (the one that is trained).
        schedule: when to measure (see ``ScheduledMonitor``).
            Defaults to `"geometric"`.
        min_dimension: the smallest ``min(N, M)`` of a matrix watched.
            Defaults to `20`.

    Example:
    ```python
    monitor = SpectralDensityMonitor(model, schedule="geometric:1.5")
    history = model.fit(x_train, y_train, epochs=100, callbacks=[monitor])
    history.history["esd_alpha"], history.history["esd_alpha/hidden_0/kernel"]
    ```
    """

    progress_keys = ("esd_alpha",)

    def __init__(
        self,
        model: keras.Model,
        schedule: ScheduleSpec = "geometric",
        min_dimension: int = spectral_density.MIN_EIGENVALUES,
    ):
        super().__init__(schedule)
        self.min_dimension = validate_int_arg(min_dimension, "min_dimension")
        self._model_made_for = model
        if not getattr(model, "built", True):
            raise ValueError(
                "SpectralDensityMonitor lists the model's weight matrices when it "
                "is made, and this model has none yet: build it first (give it an "
                "Input, call model.build(input_shape), or call it on a batch). "
                f"Received: model={getattr(model, 'name', model)!r}, not built"
            )
        self.matrices = tuple(
            w.path
            for w in spectral.weight_matrices(model)
            if min(spectral.matrix_shape(w.shape)) >= self.min_dimension
        )
        if not self.matrices:
            shapes = {w.path: tuple(w.shape) for w in model.trainable_weights}
            warnings.warn(
                "The model has no trainable weight matrix whose smaller side is "
                f">= min_dimension={self.min_dimension}, so esd_alpha will be NaN. "
                f"Its trainable weights: {shapes}",
                stacklevel=2,
            )
        self.metric_names = (
            "esd_alpha",
            *(f"esd_alpha/{path}" for path in self.matrices),
            *(f"stable_rank/{path}" for path in self.matrices),
        )

    def _check_model(self, model: keras.Model) -> None:
        super()._check_model(model)
        if model is not self._model_made_for:
            raise ValueError(
                "SpectralDensityMonitor measures the model it was made with, and "
                "another model is training. Received: made with model="
                f"{self._model_made_for.name!r}, fit on model={model.name!r}"
            )

    def panels(self) -> tuple[Panel, ...]:
        if not self.matrices:
            return ()
        keys = tuple(f"esd_alpha/{path}" for path in self.matrices)
        return (Panel("ESD alpha (2-4: well trained)", keys, log_y=True),)

    def measure(self, step: int, results: PassResults) -> dict[str, float]:
        weights = {w.path: w for w in self.trained_model.trainable_weights}
        missing = [path for path in self.matrices if path not in weights]
        if missing:
            raise ValueError(
                f"The trained model has no weights {missing}: this monitor was "
                f"made for another model. Its weights: {sorted(weights)}"
            )
        values = {}
        for path in self.matrices:
            w = weights[path]
            if bool(keras.ops.convert_to_numpy(keras.ops.all(keras.ops.isfinite(w)))):
                density = spectral_density.spectral_density(w)
                alpha = spectral_density.esd_power_law(density).alpha
                stable_rank = spectral_density.esd_stable_rank(density)
            else:  # a diverged matrix has no spectrum
                alpha = stable_rank = math.nan
            values[f"esd_alpha/{path}"] = alpha
            values[f"stable_rank/{path}"] = stable_rank
        alphas = [values[f"esd_alpha/{path}"] for path in self.matrices]
        finite = [a for a in alphas if math.isfinite(a)]
        values["esd_alpha"] = float(np.mean(finite)) if finite else math.nan
        return {name: float(values[name]) for name in self.metric_names}
