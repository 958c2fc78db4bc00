"""ComplexityMonitor: paper B's complexity of the weights at scheduled steps."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import keras
import numpy as np

from keras_grok.callbacks.measurement_requests import PassResults
from keras_grok.callbacks.schedule import ScheduleSpec
from keras_grok.callbacks.scheduled_monitor import ScheduledMonitor
from keras_grok.measures import coarse_graining, complexity, spectral, weight_codec
from keras_grok.runs.figures import Panel
from keras_grok.utils.argument_validation import validate_choice_arg, validate_float_arg
from keras_grok.utils.labelled_data import validate_labelled_pair

COMPLEXITY = Panel("complexity (bits)", ("complexity_bits",), log_y=True)


class ComplexityMonitor(ScheduledMonitor):
    """Measures the complexity of the weights at scheduled steps (paper B).

    Complexity (DeMoss et al., *The Complexity Dynamics of Grokking*, arXiv
    2412.09810) is the compressed size of the coarsest coarse-grained weights
    whose loss on ``data`` is within ``epsilon`` of the weights' own loss (see
    ``keras_grok.measures.complexity.estimate_complexity``). Paper B finds it
    rises while a network memorizes and falls when it generalizes, if
    regularized.

    Logs, per measurement (and in the epoch-end ``logs``), without a data-set
    prefix since they are metrics of the weights:

    - ``complexity_bits``, ``complexity_threshold``, ``complexity_bin_size``:
      the complexity in bits and the chosen threshold and bin size, for the
      first epsilon; with several epsilons also ``complexity_bits_eps{e}``,
      ``complexity_threshold_eps{e}`` and ``complexity_bin_size_eps{e}`` for each
      (e formatted with ``:g``, e.g. ``complexity_bits_eps0.5``);
    - ``naive_bits``: bzip2 of the raw float32 trainable weights, in bits;
    - ``compression_ratio``: ``naive_bits / complexity_bits``;
    - ``spectral_entropy`` and ``effective_rank``: means over the weight
      matrices (trainable weights with at least 2 axes).

    One SVD per matrix per measurement serves every epsilon. The weights are
    left bit-identical. Each measurement costs some tens of loss evaluations on
    ``data``, so keep the schedule sparse (e.g. ``"geometric:1.5"``).

    Args:
        train_data: ``(x, y)``: the training batch the loss bound is measured on
            (paper B's code: one training mini-batch).
        epsilons: the admitted loss increases, in the loss's units.
            Defaults to `(0.1,)`.
        schedule: when to measure (see ``ScheduledMonitor``).
            Defaults to `"geometric:1.5"`.
        thresholds: thresholds the search tries.
            Defaults to `complexity.DEFAULT_THRESHOLDS`.
        bin_range: smallest and largest bin size. Defaults to `(1e-3, 1.0)`.
        codec: ``"bzip2"``, ``"lzma"`` or ``"zlib"``. Defaults to `"bzip2"`.
        loss_fn: ``loss_fn(y, predictions) -> loss``. Defaults to `None` (the
            compiled model's loss).
        mode: ``"global"`` (paper B: one threshold and bin size for the whole
            network) or ``"per_matrix"`` (ours: one of each per weight, a
            tighter bound at a few times the cost). Defaults to `"global"`.

    Example:
    ```python
    monitor = ComplexityMonitor((x_train[:512], y_train[:512]),
                                epsilons=(0.1, 1.0))
    history = model.fit(x_train, y_train, epochs=100, callbacks=[monitor])
    history.history["complexity_bits"], history.history["compression_ratio"]
    ```
    """

    progress_keys = ("complexity_bits",)

    def __init__(
        self,
        train_data: tuple,
        epsilons: Sequence[float] = (0.1,),
        schedule: ScheduleSpec = "geometric:1.5",
        thresholds: Sequence[float] = complexity.DEFAULT_THRESHOLDS,
        bin_range: tuple[float, float] = (1e-3, 1.0),
        codec: str = "bzip2",
        loss_fn: Callable | None = None,
        mode: str = "global",
    ):
        super().__init__(schedule)
        data = validate_labelled_pair(train_data, "train_data")
        epsilons = (epsilons,) if isinstance(epsilons, (int, float)) else epsilons
        epsilons = tuple(validate_float_arg(e, "epsilons") for e in epsilons)
        if not epsilons:
            raise ValueError("epsilons must hold at least one number >= 0.")
        if codec not in weight_codec.CODECS:
            raise ValueError(
                f"Unknown codec {codec!r}. Allowed: {', '.join(weight_codec.CODECS)}."
            )
        self.data = (data.x, data.y)
        self.epsilons = epsilons
        complexity.validate_search_space(thresholds, bin_range)
        self.thresholds = tuple(thresholds)
        self.bin_range = tuple(bin_range)
        validate_choice_arg(mode, "mode", complexity.MODES)
        self.codec = codec
        if loss_fn is not None and not callable(loss_fn):
            raise ValueError(
                "loss_fn must be a callable loss_fn(y, predictions) -> loss (e.g. "
                "keras.losses.MeanSquaredError()), or None for the model's loss. "
                f"Received: loss_fn={loss_fn!r}"
            )
        self.loss_fn = loss_fn
        self.mode = mode
        self.estimates: dict[float, complexity.ComplexityEstimate] = {}
        self.metric_names = (
            "complexity_bits",
            "complexity_threshold",
            "complexity_bin_size",
            *(
                f"{name}_eps{e:g}"
                for e in (epsilons if len(epsilons) > 1 else ())
                for name in (
                    "complexity_bits",
                    "complexity_threshold",
                    "complexity_bin_size",
                )
            ),
            "naive_bits",
            "compression_ratio",
            "spectral_entropy",
            "effective_rank",
        )

    def panels(self) -> tuple[Panel, ...]:
        return (COMPLEXITY,)

    def measure(self, step: int, results: PassResults) -> dict[str, float]:
        weights = self.trained_model.trainable_weights
        if not all(_is_finite(w) for w in weights):
            # A diverged model: nothing to compress, nor a loss to bound.
            return {name: math.nan for name in self.metric_names}
        factors = coarse_graining.factorize(weights)
        values = {"naive_bits": 8.0 * weight_codec.naive_size(weights, self.codec)}
        for index, epsilon in enumerate(self.epsilons):
            try:
                estimate = complexity.estimate_complexity(
                    self.trained_model,
                    self.data,
                    epsilon,
                    thresholds=self.thresholds,
                    bin_range=self.bin_range,
                    codec=self.codec,
                    loss_fn=self.loss_fn,
                    mode=self.mode,
                    factorizations=factors,
                )
            except ValueError as error:
                if "not finite" not in str(error):
                    raise
                # Finite weights, non-finite loss (overflowing outputs): NaN.
                return {name: math.nan for name in self.metric_names}
            self.estimates[epsilon] = estimate
            figures = {
                "complexity_bits": estimate.bits,
                "complexity_threshold": estimate.threshold,
                "complexity_bin_size": estimate.bin_size,
            }
            if index == 0:
                values.update(figures)
            if len(self.epsilons) > 1:
                values.update({f"{k}_eps{epsilon:g}": v for k, v in figures.items()})
        values["compression_ratio"] = values["naive_bits"] / values["complexity_bits"]
        entropies = spectral.spectral_entropies(weights)
        empty = entropies.size == 0
        values["spectral_entropy"] = math.nan if empty else entropies.mean()
        values["effective_rank"] = math.nan if empty else np.exp(entropies).mean()
        return {k: float(v) for k, v in values.items()}


def _is_finite(variable) -> bool:
    return bool(np.all(np.isfinite(keras.ops.convert_to_numpy(variable))))
