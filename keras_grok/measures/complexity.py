"""Complexity of weights: the compressed size of their coarse-grained form.

Paper B (DeMoss, Sapora, Foerster, Hawes & Posner, *The Complexity Dynamics of
Grokking*, arXiv 2412.09810) measures a network's complexity as the compressed size
of its coarse-grained weights: each matrix is truncated to a low-rank SVD, every
stored number is rounded to a grid, and the result is compressed with bzip2. The
truncation threshold and the bin size are the coarsest ones whose loss stays within
``epsilon`` of the original loss. This module holds that estimate
(``estimate_complexity``); its parts live beside it: ``coarse_graining``
(``factorize``, ``coarse_grain``, ``quantize``), ``weight_codec`` (``CODECS``,
``serialize``, ``compressed_size``, ``naive_size``), ``complexity_search`` (the
searches) and ``description_length``.

Coarse-graining is a host-side compression step and runs in NumPy; the loss of the
coarse weights is evaluated with the model's compiled function.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import keras
import numpy as np

from keras_grok import losses as grok_losses  # a module: see utils/registration
from keras_grok.measures.coarse_graining import Factorization, factorize
from keras_grok.measures.complexity_search import global_search, per_matrix_search
from keras_grok.measures.weight_codec import compressor, naive_size
from keras_grok.utils.argument_validation import (
    native_array,
    validate_choice_arg,
    validate_float_arg,
)
from keras_grok.utils.labelled_data import validate_class_labels

MODES = ("global", "per_matrix")
"""Search modes of ``estimate_complexity``: paper B's one (t, b), or one per weight."""

DEFAULT_THRESHOLDS = (
    1.0,
    0.99,
    0.97,
    0.95,
    0.9,
    0.85,
    0.8,
    0.7,
    0.6,
    0.5,
    0.4,
    0.3,
    0.2,
)
"""Thresholds ``estimate_complexity`` tries, from exact to coarse."""


@dataclass(frozen=True)
class ComplexityEstimate:
    """The result of ``estimate_complexity``.

    Attributes:
        size_bytes: compressed size of the chosen coarse-grained weights.
        threshold: the chosen singular-value mass threshold t (per-matrix
            mode: the largest of ``thresholds``).
        bin_size: the chosen bin size b (per-matrix mode: the smallest of
            ``bin_sizes``); 0.0 when no coarse-graining met the bound and the
            estimate is the naive size of the exact weights.
        loss: the loss of the chosen coarse-grained weights on the data.
        base_loss: the loss of the original weights on the same data.
        epsilon: the admitted loss increase.
        evaluations: how many coarse-grained weight sets had their loss (or,
            in per-matrix mode, their outputs) measured.
        compressions: how many coarse-grained weight sets were compressed.
        ranks: kept rank per weight (None where stored whole).
        weights: the chosen coarse-grained weights (as ``CoarseGrained.weights``).
        mode: the search mode, ``"global"`` or ``"per_matrix"``.
        thresholds: the threshold of each weight (all equal in global mode).
        bin_sizes: the bin size of each weight (all equal in global mode).
        balanced: per weight, whether its factors split the singular values
            evenly (per-matrix mode may choose it; see ``coarse_grain``).
    """

    size_bytes: int
    threshold: float
    bin_size: float
    loss: float
    base_loss: float
    epsilon: float
    evaluations: int
    compressions: int
    ranks: tuple[int | None, ...]
    weights: tuple[np.ndarray, ...]
    mode: str = "global"
    thresholds: tuple[float, ...] = ()
    bin_sizes: tuple[float, ...] = ()
    balanced: tuple[bool, ...] = ()

    @property
    def bits(self) -> float:
        """The complexity in bits (8 x bytes)."""
        return 8.0 * self.size_bytes


class WeightLoss:
    """The loss of a model on fixed data for given values of its trainable weights.

    Assigns the values to the model's trainable variables and runs the model's
    compiled ``predict_on_batch`` (traced once, reused for every call), then
    applies ``loss_fn``. ``restore()`` puts back the exact original values, which
    are kept as NumPy copies; use it in a ``finally`` block.

    Args:
        model: a built model. On JAX during ``fit``, sync its state first.
        data: ``(x, y)`` arrays: the batch the loss is measured on.
        loss_fn: ``loss_fn(y, predictions) -> scalar``. Defaults to `None`
            (the compiled model's loss).
    """

    def __init__(
        self, model: keras.Model, data: tuple, loss_fn: Callable | None = None
    ):
        self.model = model
        self.x, self.y = data
        self.loss_fn = loss_fn if loss_fn is not None else model_loss(model)
        self.variables = list(model.trainable_weights)
        self.original = [
            np.array(keras.ops.convert_to_numpy(v)) for v in self.variables
        ]
        self.calls = 0

    def __call__(self, values: Sequence[np.ndarray]) -> float:
        for variable, value in zip(self.variables, values):
            variable.assign(value)
        self.calls += 1
        return self.current()

    def outputs(self, values: Sequence[np.ndarray]) -> np.ndarray:
        """The model's outputs on the data with its weights set to ``values``."""
        for variable, value in zip(self.variables, values):
            variable.assign(value)
        self.calls += 1
        return np.asarray(
            keras.ops.convert_to_numpy(self.model.predict_on_batch(self.x)),
            dtype=np.float64,
        )

    def current(self) -> float:
        """The loss of the weights the model holds now (mean over examples)."""
        predictions = self.model.predict_on_batch(self.x)
        loss = keras.ops.convert_to_numpy(self.loss_fn(self.y, predictions))
        return float(np.mean(loss))

    def restore(self) -> None:
        """Assigns the original weights back, bit for bit."""
        for variable, value in zip(self.variables, self.original):
            variable.assign(value)


def model_loss(model: keras.Model) -> Callable:
    """The compiled model's loss as ``(y, predictions) -> (batch,)`` values.

    ``keras_grok.losses.per_example_loss`` of ``model.loss``: the same loss the
    monitors read, averaged over the batch by ``WeightLoss``.

    Raises:
        ValueError: the model has no single loss to measure.
    """
    values = grok_losses.per_example_loss(getattr(model, "loss", None))
    if values is None:
        raise ValueError(
            "The model has no single loss to measure (none, one per output, or "
            "one with ignore_class): compile it with one loss or pass loss_fn. "
            f"Received: loss={getattr(model, 'loss', None)!r}"
        )
    return values


def estimate_complexity(
    model: keras.Model,
    data: tuple,
    epsilon: float,
    *,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    bin_range: tuple[float, float] = (1e-3, 1.0),
    resolution: float = 1.1,
    codec: str = "bzip2",
    loss_fn: Callable | None = None,
    factorizations: Sequence[Factorization] | None = None,
    mode: str = "global",
) -> ComplexityEstimate:
    """Compressed size of the coarsest weights whose loss is within ``epsilon``.

    Paper B's complexity (DeMoss et al., arXiv 2412.09810): minimise
    ``compressed_size(coarse_grain(W, t, b))`` over the threshold t and the bin
    size b subject to ``loss(coarse weights) <= loss(W) + epsilon`` on ``data``
    (one-sided, as in the paper's code). The paper searches with 62
    Bayesian-optimization points per epsilon, each compressed; this search uses
    the structure of the problem instead (one SVD per matrix serves every
    threshold; for each threshold the best b is the largest feasible one, found by
    bisection in log b; see ``complexity_search.global_search``) and compresses
    grid codes as small integers (``weight_codec.serialize``).

    ``mode="per_matrix"`` then gives each matrix its own t and b, and a choice of
    balanced factors (see ``coarse_graining.coarse_grain``), under the same one
    loss bound (``complexity_search.per_matrix_search``: output errors of single
    coarse-grained matrices, combined by a Lagrangian trade of size against
    error and checked by measuring the joint loss), never larger than the
    global point's size. It is a tighter upper bound on the same quantity, not
    paper B's number.

    Every candidate's loss is measured, and the returned point's loss is the
    one measured for exactly its weights, so it always meets the bound. If no
    coarse-graining does (e.g. ``epsilon=0``), the estimate is the naive size of
    the exact weights (``bin_size == 0.0``, ``loss == base_loss``).

    The model's weights are restored bit for bit before returning, also when an
    exception interrupts the search.

    Args:
        model: a compiled, built model (or pass ``loss_fn``). On JAX during
            ``fit``, call ``model.jax_state_sync()`` first.
        data: ``(x, y)``: the training batch the loss is measured on. With a
            sparse loss (integer labels), ``y`` must hold class indices of the
            model's outputs.
        epsilon: the admitted loss increase (in the loss's units, nats for
            cross-entropy), >= 0.
        thresholds: the thresholds to try, in [0, 1].
            Defaults to `DEFAULT_THRESHOLDS`.
        bin_range: the smallest and largest bin size. Defaults to `(1e-3, 1.0)`
            (the paper's range).
        resolution: the bin size is found to within this factor, > 1.
            Defaults to `1.1`.
        codec: compressor for the size. Defaults to `"bzip2"`.
        loss_fn: ``loss_fn(y, predictions) -> loss`` (averaged if it returns one
            value per example). Defaults to `None` (the compiled model's loss).
        factorizations: ``factorize(model.trainable_weights)``, if already
            computed. Defaults to `None`.
        mode: ``"global"`` (paper B: one t and one b for the network) or
            ``"per_matrix"`` (one t and b, and the factor split, per matrix).
            Defaults to `"global"`.

    Returns:
        A ``ComplexityEstimate``.

    Example:
    ```python
    estimate = estimate_complexity(model, (x_train[:512], y_train[:512]), 0.1)
    estimate.bits, estimate.threshold, estimate.bin_size
    ```
    """
    epsilon = validate_float_arg(epsilon, "epsilon")
    low, high = validate_search_space(thresholds, bin_range, resolution)
    validate_choice_arg(mode, "mode", MODES)
    _check_pair(data)
    data = tuple(native_array(v) for v in data)  # lists: one input, not many
    compressor(codec)
    if not model.trainable_weights:
        raise ValueError(
            "estimate_complexity measures a model's trainable weights, and this "
            f"model has none. Received: model={model.name!r} with no trainable "
            "weights"
        )
    if loss_fn is None and grok_losses.is_sparse_loss(getattr(model, "loss", None)):
        _check_labels(model, data)
    evaluate = WeightLoss(model, data, loss_fn)
    try:
        factors = (
            list(factorizations)
            if factorizations is not None
            else factorize(evaluate.original)
        )
        if len(factors) != len(evaluate.original):
            raise ValueError(
                f"factorizations has {len(factors)} entries for "
                f"{len(evaluate.original)} trainable weights."
            )
        base_loss = evaluate.current()
        if not math.isfinite(base_loss):
            raise ValueError(f"The model's loss on the data is not finite: {base_loss}")
        bound = base_loss + epsilon
        result = global_search(
            evaluate, factors, bound, thresholds, (low, high), resolution, codec
        )
        if mode == "per_matrix" and result is not None:
            result = per_matrix_search(
                evaluate, factors, bound, result, (low, high), codec
            )
        return _result_estimate(
            result, evaluate, factors, base_loss, epsilon, mode, codec
        )
    finally:
        evaluate.restore()


def validate_search_space(
    thresholds: Sequence[float],
    bin_range: tuple[float, float],
    resolution: float = 1.1,
) -> tuple[float, float]:
    """Checks the search's thresholds, bin range and resolution; returns the range.

    Raises:
        ValueError: a threshold outside ``[0, 1]``, a bin range that is not
            ``0 < low <= high < inf``, or a resolution not above 1.
    """
    low, high = (float(b) for b in bin_range)
    if not 0 < low <= high or not math.isfinite(high):
        raise ValueError(
            f"bin_range must satisfy 0 < low <= high. Received: {bin_range}"
        )
    resolution = validate_float_arg(resolution, "resolution", minimum=1.0)
    if not resolution > 1:
        raise ValueError(f"resolution must be > 1. Received: resolution={resolution}")
    if isinstance(thresholds, (str, bytes)) or not len(thresholds):
        raise ValueError(
            "thresholds must list one or more numbers in [0, 1]. "
            f"Received: thresholds={thresholds!r}"
        )
    for t in thresholds:
        if isinstance(t, (bool, str)) or not 0 <= t <= 1:
            raise ValueError(f"thresholds must lie in [0, 1]. Received: {t}")
    return low, high


def _check_pair(data) -> None:
    """``data`` is an ``(x, y)`` pair of as many targets as inputs, at least one."""
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ValueError(
            f"data must be an (x, y) pair of arrays. Received: {type(data).__name__}"
        )
    sizes = [len(v) if hasattr(v, "__len__") else 0 for v in data]
    if sizes[0] != sizes[1] or sizes[0] == 0:
        raise ValueError(
            "data must hold as many targets as inputs, at least one. Received: "
            f"{sizes[0]} inputs, {sizes[1]} targets"
        )


def _check_labels(model: keras.Model, data: tuple) -> None:
    """Refuses labels a sparse loss would misread: fractional, negative, >= K."""
    try:
        width = int(model.outputs[0].shape[-1])
    except (AttributeError, IndexError, TypeError, ValueError):
        width = None  # a subclassed model: its width is known only once it runs
    validate_class_labels(np.asarray(data[1]), "data labels", width)


def _result_estimate(result, evaluate, factors, base_loss, epsilon, mode, codec):
    if result is None:
        return ComplexityEstimate(
            size_bytes=naive_size(evaluate.original, codec),
            threshold=1.0,
            bin_size=0.0,
            loss=float(base_loss),
            base_loss=float(base_loss),
            epsilon=float(epsilon),
            evaluations=evaluate.calls,
            compressions=1,
            ranks=tuple(None for _ in factors),
            weights=tuple(f.original.copy() for f in factors),
            mode=mode,
            thresholds=tuple(1.0 for _ in factors),
            bin_sizes=tuple(0.0 for _ in factors),
            balanced=tuple(False for _ in factors),
        )
    coarse = result.coarse
    return ComplexityEstimate(
        size_bytes=int(result.size_bytes),
        threshold=max(coarse.thresholds),
        bin_size=min(coarse.bin_sizes),
        loss=float(result.loss),
        base_loss=float(base_loss),
        epsilon=float(epsilon),
        evaluations=evaluate.calls,
        compressions=result.compressions,
        ranks=coarse.ranks,
        weights=coarse.weights,
        mode=mode,
        thresholds=coarse.thresholds,
        bin_sizes=coarse.bin_sizes,
        balanced=coarse.balanced,
    )
