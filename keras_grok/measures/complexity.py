"""Complexity of weights: the compressed size of their coarse-grained form.

Paper B (DeMoss, Sapora, Foerster, Hawes & Posner, *The Complexity Dynamics of
Grokking*, arXiv 2412.09810) measures a network's complexity as the compressed size
of its coarse-grained weights: each matrix is truncated to a low-rank SVD, every
stored number is rounded to a grid, and the result is compressed with bzip2. The
truncation threshold and the bin size are the coarsest ones whose loss stays within
``epsilon`` of the original loss. It also regularizes with the spectral entropy of
the weight matrices (``keras_grok.measures.spectral``).

Coarse-graining is a host-side compression step and runs in NumPy; the loss of the
coarse weights is evaluated with the model's compiled function.
"""

from __future__ import annotations

import bz2
import lzma
import math
import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import keras
import numpy as np

from keras_grok.measures.spectral import matrix_shape

CODECS: dict[str, Callable[[bytes], bytes]] = {
    "bzip2": lambda data: bz2.compress(data, 9),
    "lzma": lambda data: lzma.compress(data, preset=9),
    "zlib": lambda data: zlib.compress(data, 9),
}
"""Compressors by name; paper B uses bzip2."""

_FLOAT32_EPS = float(np.finfo(np.float32).eps)


# --------------------------------------------------------------------------------------
# Coarse-graining (host side, NumPy)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Factorization:
    """A weight prepared for coarse-graining: one SVD, reused for every threshold.

    ``mass[k - 1]`` is the fraction of singular-value mass in the first ``k`` values
    (``mass[-1] == 1``); singular values below ``sigma_max * max(m, n) * eps``
    (float32 eps) count as zero, so a float32 matrix of rank r has ``mass[r-1] == 1``.
    Vectors (and scalars) have ``u is None``.
    """

    original: np.ndarray
    u: np.ndarray | None = None
    s: np.ndarray | None = None
    vt: np.ndarray | None = None
    mass: np.ndarray | None = None

    @property
    def is_matrix(self) -> bool:
        return self.u is not None

    def rank_for(self, threshold: float) -> int:
        """The smallest k whose cumulative singular-value mass reaches ``threshold``."""
        if self.mass is None or self.mass.size == 0 or self.mass[-1] == 0:
            return 0
        if threshold <= 0:
            return 0
        return int(
            min(np.searchsorted(self.mass, threshold, side="left") + 1, len(self.s))
        )


def factorize(weights: Sequence) -> list[Factorization]:
    """One float64 SVD per matrix (2-D view as ``matrix_shape``), for ``coarse_grain``.

    Args:
        weights: arrays (or variables/tensors) in a fixed order, e.g.
            ``model.trainable_weights``.
    """
    result = []
    for index, weight in enumerate(weights):
        w = _finite_array(weight, index)
        if w.ndim < 2:
            result.append(Factorization(w.copy()))
            continue
        m, n = matrix_shape(w.shape)
        u, s, vt = np.linalg.svd(
            w.reshape(m, n).astype(np.float64), full_matrices=False
        )
        s = np.where(s > s[:1] * max(m, n) * _FLOAT32_EPS, s, 0.0) if s.size else s
        cumulative = np.cumsum(s)
        mass = (
            cumulative / cumulative[-1] if s.size and cumulative[-1] > 0 else cumulative
        )
        result.append(Factorization(w.copy(), u, s, vt, mass))
    return result


def _finite_array(weight, index: int) -> np.ndarray:
    w = np.asarray(keras.ops.convert_to_numpy(weight))
    if not np.all(np.isfinite(w)):
        name = getattr(weight, "path", None) or f"weight {index}"
        raise ValueError(
            f"Cannot coarse-grain {name}: it holds NaN or infinite values "
            "(has training diverged?)."
        )
    return w


def quantize(x, bin_size: float) -> np.ndarray:
    """``round(x / b) * b`` in float64, with -0 turned into 0 (paper B's grid)."""
    return codes_of(x, bin_size).astype(np.float64) * bin_size


def codes_of(x, bin_size: float) -> np.ndarray:
    """The grid indices ``round(x / b)`` as int64 (ties to even, as ``np.round``)."""
    if not bin_size > 0 or not math.isfinite(bin_size):
        raise ValueError(f"bin_size must be positive and finite. Received: {bin_size}")
    return np.round(np.asarray(x, dtype=np.float64) / bin_size).astype(np.int64)


@dataclass(frozen=True)
class CoarseGrained:
    """Coarse-grained weights: what is stored (integer grid codes) and what it means.

    Attributes:
        threshold: the singular-value mass threshold t.
        bin_size: the grid's bin size b.
        codes: per weight, a tuple of int64 arrays of grid indices: ``(A, B)`` for a
            matrix stored as factors ``A = U_k S_k`` (m x k) and ``B = V_k^T``
            (k x n), ``(W,)`` for a matrix or vector stored whole.
        ranks: per weight, the kept rank k for factored matrices, else None.
        weights: per weight, the float32 array the codes decode to, in the
            original shape (``quantize(A) @ quantize(B)`` or ``quantize(W)``).
    """

    threshold: float
    bin_size: float
    codes: tuple[tuple[np.ndarray, ...], ...]
    ranks: tuple[int | None, ...]
    weights: tuple[np.ndarray, ...]

    @property
    def stored_numbers(self) -> int:
        """How many numbers the coarse-grained weights store."""
        return sum(c.size for parts in self.codes for c in parts)


def coarse_grain(
    weights: Sequence,
    threshold: float,
    bin_size: float,
    factorizations: Sequence[Factorization] | None = None,
) -> CoarseGrained:
    """Coarse-grains weights by SVD truncation and quantization (paper B).

    For each matrix ``W`` (m x n, its 2-D view as ``matrix_shape``) with singular
    values ``s``: k is the smallest rank whose cumulative mass
    ``sum_{i<=k} s_i / sum_i s_i`` reaches ``threshold``. If ``k (m + n) < m n`` the
    factors ``U_k S_k`` and ``V_k^T`` are stored, otherwise ``W`` itself (a rank-k
    reconstruction would cost as much and be less exact). Every stored number is
    then quantized to ``round(x / b) * b`` (-0 becomes 0); vectors are only
    quantized. One bin size serves the whole network, as in paper B's code.

    Args:
        weights: arrays (or variables) in a fixed order.
        threshold: singular-value mass to keep, in [0, 1]; 1 keeps the numerical
            rank, 0 drops every matrix.
        bin_size: the grid's bin size b > 0.
        factorizations: ``factorize(weights)``, to reuse one SVD per matrix across
            many calls. Defaults to `None` (computed here).

    Returns:
        A ``CoarseGrained``.

    Example:
    ```python
    coarse = coarse_grain(model.get_weights(), threshold=0.9, bin_size=0.01)
    compressed_size(coarse)  # bytes
    ```
    """
    if not 0 <= threshold <= 1:
        raise ValueError(
            f"threshold must be in [0, 1]. Received: threshold={threshold}"
        )
    factors = list(factorizations) if factorizations is not None else factorize(weights)
    codes, ranks, decoded = [], [], []
    for f in factors:
        shape = f.original.shape
        k = f.rank_for(threshold) if f.is_matrix else None
        m, n = matrix_shape(shape) if f.is_matrix else (0, 0)
        if f.is_matrix and k * (m + n) < m * n:
            a = codes_of(f.u[:, :k] * f.s[:k], bin_size)
            b = codes_of(f.vt[:k], bin_size)
            codes.append((a, b))
            ranks.append(k)
            product = (a.astype(np.float64) * bin_size) @ (
                b.astype(np.float64) * bin_size
            )
            decoded.append(product.reshape(shape))
        else:
            c = codes_of(f.original, bin_size)
            codes.append((c,))
            ranks.append(None)
            decoded.append(c.astype(np.float64) * bin_size)
    weights_out = tuple(
        (d + 0.0).astype(
            f.original.dtype if f.original.dtype.kind == "f" else np.float32
        )
        for d, f in zip(decoded, factors)
    )
    return CoarseGrained(
        float(threshold), float(bin_size), tuple(codes), tuple(ranks), weights_out
    )


# --------------------------------------------------------------------------------------
# Serialization and compressed size
# --------------------------------------------------------------------------------------


def _zigzag(codes: np.ndarray) -> np.ndarray:
    """Maps signed to unsigned integers: 0, -1, 1, -2, ... -> 0, 1, 2, 3, ..."""
    codes = codes.astype(np.int64)
    return ((codes << 1) ^ (codes >> 63)).astype(np.uint64)


def _smallest_unsigned(values: np.ndarray) -> np.ndarray:
    top = int(values.max()) if values.size else 0
    for dtype in (np.uint8, np.uint16, np.uint32):
        if top <= np.iinfo(dtype).max:
            return values.astype(dtype)
    return values


def serialize(coarse: CoarseGrained) -> bytes:
    """A deterministic byte string of the coarse-grained weights.

    Header: the bin size (float64) and the number of arrays; then per stored array
    its rank, shape and integer width (little-endian int32s), then its grid codes,
    zig-zag encoded (0, -1, 1, -2 -> 0, 1, 2, 3) as the smallest unsigned integer
    type that holds them, little-endian. Small integers compress far better than
    the float bytes of the quantized values they stand for.
    """
    arrays = [c for parts in coarse.codes for c in parts]
    chunks = [struct.pack("<dI", coarse.bin_size, len(arrays))]
    for codes in arrays:
        packed = _smallest_unsigned(_zigzag(codes.ravel()))
        chunks.append(
            struct.pack(
                f"<{2 + codes.ndim}I", codes.ndim, packed.itemsize, *codes.shape
            )
        )
        chunks.append(packed.astype(packed.dtype.newbyteorder("<")).tobytes())
    return b"".join(chunks)


def _codec(name: str) -> Callable[[bytes], bytes]:
    if name not in CODECS:
        raise ValueError(f"Unknown codec {name!r}. Allowed: {', '.join(CODECS)}.")
    return CODECS[name]


def compressed_size(coarse: CoarseGrained, codec: str = "bzip2") -> int:
    """Bytes of ``serialize(coarse)`` compressed with ``codec`` (paper B: bzip2).

    Args:
        coarse: coarse-grained weights.
        codec: ``"bzip2"``, ``"lzma"`` or ``"zlib"``. Defaults to `"bzip2"`.
    """
    return len(_codec(codec)(serialize(coarse)))


def naive_size(weights: Sequence, codec: str = "bzip2") -> int:
    """Bytes of the raw float32 weights, compressed: paper B's naive baseline.

    Args:
        weights: arrays (or variables) in a fixed order.
        codec: ``"bzip2"``, ``"lzma"`` or ``"zlib"``. Defaults to `"bzip2"`.
    """
    raw = b"".join(
        np.ascontiguousarray(_finite_array(w, i), dtype="<f4").tobytes()
        for i, w in enumerate(weights)
    )
    return len(_codec(codec)(raw))


# --------------------------------------------------------------------------------------
# The search for the coarsest admissible (threshold, bin size)
# --------------------------------------------------------------------------------------

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
        threshold: the chosen singular-value mass threshold t.
        bin_size: the chosen bin size b; 0.0 when no coarse-graining met the
            bound and the estimate is the naive size of the exact weights.
        loss: the loss of the chosen coarse-grained weights on the data.
        base_loss: the loss of the original weights on the same data.
        epsilon: the admitted loss increase.
        evaluations: how many coarse-grained weight sets had their loss measured.
        compressions: how many coarse-grained weight sets were compressed.
        ranks: kept rank per weight (None where stored whole).
        weights: the chosen coarse-grained weights (as ``CoarseGrained.weights``).
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
    """The compiled model's loss as a callable ``(y, predictions) -> loss``."""
    loss = getattr(model, "loss", None)
    if loss is None:
        raise ValueError(
            "The model has no loss to measure: compile it with a loss or pass loss_fn."
        )
    return keras.losses.get(loss)


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
) -> ComplexityEstimate:
    """Compressed size of the coarsest weights whose loss is within ``epsilon``.

    Paper B's complexity (DeMoss et al., arXiv 2412.09810): minimise
    ``compressed_size(coarse_grain(W, t, b))`` over the threshold t and the bin
    size b subject to ``loss(coarse weights) <= loss(W) + epsilon`` on ``data``
    (one-sided, as in the paper's code). The paper searches with 62
    Bayesian-optimization points per epsilon, each compressed; this search uses
    the structure of the problem instead:

    - one SVD per matrix serves every threshold (``factorize``);
    - thresholds that give the same kept ranks are tried once;
    - the loss grows (nearly) monotonically with b while the size falls, so for
      each threshold the best b is the largest feasible one. For the first
      threshold it is bisected in log b over ``bin_range``; each smaller threshold
      (more truncation, less room for quantization) starts from the previous b
      and, if that is infeasible, halves it until feasible and bisects the last
      halving, to a factor of ``resolution``;
    - thresholds go from 1 down and the search stops at the first threshold
      where even the smallest bin size is infeasible;
    - only each threshold's best point is compressed, as small integers (see
      ``serialize``).

    Every candidate's loss is measured, so the returned point always meets the
    bound. If no coarse-graining does (e.g. ``epsilon=0``), the estimate is the
    naive size of the exact weights (``bin_size == 0.0``, ``loss == base_loss``).

    The model's weights are restored bit for bit before returning, also when an
    exception interrupts the search.

    Args:
        model: a compiled, built model (or pass ``loss_fn``). On JAX during
            ``fit``, call ``model.jax_state_sync()`` first.
        data: ``(x, y)``: the training batch the loss is measured on.
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

    Returns:
        A ``ComplexityEstimate``.

    Example:
    ```python
    estimate = estimate_complexity(model, (x_train[:512], y_train[:512]), 0.1)
    estimate.bits, estimate.threshold, estimate.bin_size
    ```
    """
    if not epsilon >= 0 or not math.isfinite(epsilon):
        raise ValueError(
            f"epsilon must be >= 0 and finite. Received: epsilon={epsilon}"
        )
    low, high = (float(b) for b in bin_range)
    if not 0 < low <= high or not math.isfinite(high):
        raise ValueError(
            f"bin_range must satisfy 0 < low <= high. Received: {bin_range}"
        )
    if not resolution > 1:
        raise ValueError(f"resolution must be > 1. Received: resolution={resolution}")
    _codec(codec)
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
        return _search(
            evaluate, factors, epsilon, thresholds, (low, high), resolution, codec
        )
    finally:
        evaluate.restore()


def _search(evaluate, factors, epsilon, thresholds, bin_range, resolution, codec):
    base_loss = evaluate.current()
    if not math.isfinite(base_loss):
        raise ValueError(f"The model's loss on the data is not finite: {base_loss}")
    bound = base_loss + epsilon
    best: tuple | None = None  # (size, coarse, loss)
    compressions = 0
    seen_ranks: set[tuple] = set()
    low, upper = bin_range
    for t in sorted({float(t) for t in thresholds}, reverse=True):
        if not 0 <= t <= 1:
            raise ValueError(f"thresholds must lie in [0, 1]. Received: {t}")
        ranks = tuple(f.rank_for(t) if f.is_matrix else None for f in factors)
        if ranks in seen_ranks:
            continue
        seen_ranks.add(ranks)

        def loss_at(b, t=t):
            coarse = coarse_grain(evaluate.original, t, b, factors)
            return coarse, evaluate(coarse.weights)

        found = _largest_feasible_bin(
            loss_at, bound, low, upper, bisect=best is None, resolution=resolution
        )
        if found is None:
            break  # coarser thresholds only add error
        coarse, loss = found
        upper = coarse.bin_size
        size = compressed_size(coarse, codec)
        compressions += 1
        if best is None or size < best[0]:
            best = (size, coarse, loss)
    if best is None:
        return ComplexityEstimate(
            size_bytes=naive_size(evaluate.original, codec),
            threshold=1.0,
            bin_size=0.0,
            loss=float(base_loss),
            base_loss=float(base_loss),
            epsilon=float(epsilon),
            evaluations=evaluate.calls,
            compressions=compressions + 1,
            ranks=tuple(None for _ in factors),
            weights=tuple(f.original.copy() for f in factors),
        )
    size, coarse, loss = best
    return ComplexityEstimate(
        size_bytes=int(size),
        threshold=coarse.threshold,
        bin_size=coarse.bin_size,
        loss=float(loss),
        base_loss=float(base_loss),
        epsilon=float(epsilon),
        evaluations=evaluate.calls,
        compressions=compressions,
        ranks=coarse.ranks,
        weights=coarse.weights,
    )


def _largest_feasible_bin(loss_at, bound, low, start, *, bisect, resolution):
    """The (near) largest b in ``[low, start]`` with ``loss_at(b) <= bound``.

    Tries ``start`` (feasible: done). Otherwise brackets a feasible b below it:
    with ``bisect`` the whole range ``[low, start]`` (``low`` infeasible: None),
    else by halving from ``start`` down to ``low``. Then bisects the bracket in
    log b until its ends are within ``resolution``. Returns ``(coarse, loss)`` of
    the largest feasible b evaluated, or None.
    """
    coarse, loss = loss_at(start)
    if loss <= bound:
        return coarse, loss
    feasible, hi_b = None, start
    if not bisect:
        b = start
        while b > low:
            b = max(b / 2, low)
            coarse, loss = loss_at(b)
            if loss <= bound:
                feasible = (coarse, loss)
                break
            hi_b = b
    elif start > low:
        coarse, loss = loss_at(low)
        if loss <= bound:
            feasible = (coarse, loss)
    if feasible is None:
        return None
    lo_b = feasible[0].bin_size
    while hi_b / lo_b > resolution:
        middle = math.sqrt(lo_b * hi_b)
        coarse, loss = loss_at(middle)
        if loss <= bound:
            feasible, lo_b = (coarse, loss), middle
        else:
            hi_b = middle
    return feasible


# --------------------------------------------------------------------------------------
# --------------------------------------------------------------------------------------
# Description length
# --------------------------------------------------------------------------------------


def data_bits(
    model: keras.Model, data: tuple, from_logits: bool = True, batch_size: int = 4096
) -> float:
    """``sum_i -log2 p(y_i | x_i)`` over ``data``: the bits to send the labels.

    The data part of a two-part code: given the model, each label costs
    ``-log2 p(y | x)`` bits with an arithmetic coder.

    Args:
        model: a classifier.
        data: ``(x, y)`` arrays with integer labels.
        from_logits: the model outputs logits (a log-softmax is applied), else
            probabilities. Defaults to `True`.
        batch_size: examples per inference call. Defaults to `4096`.
    """
    x, y = data
    y = np.asarray(y).reshape(-1).astype(np.int64)
    total = 0.0
    for i in range(0, len(x), batch_size):
        out = np.asarray(
            model.predict_on_batch(x[i : i + batch_size]), dtype=np.float64
        )
        rows = out.reshape(len(out), -1)
        if from_logits:
            shifted = rows - rows.max(-1, keepdims=True)
            log_p = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
        else:
            log_p = np.log(np.clip(rows, 1e-300, None))
        total -= log_p[np.arange(len(rows)), y[i : i + batch_size]].sum()
    return float(total / math.log(2))


def description_length(complexity_bits: float, label_bits: float) -> float:
    """Total description length in bits: model bits plus data-given-model bits.

    The two-part code of minimum description length (Rissanen, 1978; paper B,
    section on compression): ``L = complexity_bits + data_bits``.
    """
    return float(complexity_bits) + float(label_bits)
