"""Coarse-graining of weights: SVD truncation and quantization to a grid.

Paper B (DeMoss, Sapora, Foerster, Hawes & Posner, *The Complexity Dynamics of
Grokking*, arXiv 2412.09810) coarse-grains a network before compressing it: each
matrix is truncated to the smallest rank whose cumulative singular-value mass
reaches a threshold t, and every stored number is rounded to a grid of bin size b.
This is a host-side compression step and runs in NumPy (one float64 SVD per matrix,
reused for every threshold). ``weight_codec`` turns the result into bytes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np

from keras_grok.measures.spectral import matrix_shape
from keras_grok.utils.argument_validation import validate_float_arg

_FLOAT32_EPS = float(np.finfo(np.float32).eps)


def finite_array(weight, index: int) -> np.ndarray:
    """``weight`` as a NumPy array; ValueError naming it if it holds NaN or inf.

    Args:
        weight: an array, tensor or variable.
        index: its position, named in the message when it has no ``path``.
    """
    w = np.asarray(keras.ops.convert_to_numpy(weight))
    if not np.all(np.isfinite(w)):
        name = getattr(weight, "path", None) or f"weight {index}"
        raise ValueError(
            f"Cannot coarse-grain {name}: it holds NaN or infinite values "
            "(has training diverged?)."
        )
    return w


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
        w = finite_array(weight, index)
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


def quantize(x, bin_size: float) -> np.ndarray:
    """``round(x / b) * b`` in float64, with -0 turned into 0 (paper B's grid)."""
    return codes_of(x, bin_size).astype(np.float64) * bin_size


def codes_of(x, bin_size: float) -> np.ndarray:
    """The grid indices ``round(x / b)`` as int64 (ties to even, as ``np.round``)."""
    bin_size = validate_float_arg(bin_size, "bin_size", allow_minimum=False)
    x = np.asarray(x, dtype=np.float64)
    codes = np.round(x / bin_size)
    # Beyond int64 (or not finite) a code would wrap to an arbitrary integer.
    if not np.all(np.abs(codes) < 2.0**63):
        raise ValueError(
            "x must hold finite values within 2**63 bins of 0 (weights this large "
            "are a diverged model's; or choose a coarser bin_size). Received: "
            f"values in [{np.min(x)}, {np.max(x)}], bin_size={bin_size}"
        )
    return codes.astype(np.int64)


@dataclass(frozen=True)
class CoarseGrained:
    """Coarse-grained weights: what is stored (integer grid codes) and what it means.

    Attributes:
        thresholds: per weight, the singular-value mass threshold t it used.
        bin_sizes: per weight, the grid's bin size b.
        codes: per weight, a tuple of int64 arrays of grid indices: ``(A, B)`` for a
            matrix stored as factors ``A = U_k S_k`` (m x k) and ``B = V_k^T``
            (k x n), ``(W,)`` for a matrix or vector stored whole.
        ranks: per weight, the kept rank k for factored matrices, else None.
        weights: per weight, the float32 array the codes decode to, in the
            original shape (``quantize(A) @ quantize(B)`` or ``quantize(W)``).
        balanced: per weight, whether factors were split as ``U_k S_k^(1/2)``,
            ``S_k^(1/2) V_k^T`` instead of paper B's ``U_k S_k``, ``V_k^T``.
    """

    thresholds: tuple[float, ...]
    bin_sizes: tuple[float, ...]
    codes: tuple[tuple[np.ndarray, ...], ...]
    ranks: tuple[int | None, ...]
    weights: tuple[np.ndarray, ...]
    balanced: tuple[bool, ...] = ()

    @property
    def threshold(self) -> float:
        """The threshold shared by every weight (paper B's one t); NaN if mixed."""
        return _common(self.thresholds)

    @property
    def bin_size(self) -> float:
        """The bin size shared by every weight (paper B's one b); NaN if mixed."""
        return _common(self.bin_sizes)

    @property
    def stored_numbers(self) -> int:
        """How many numbers the coarse-grained weights store."""
        return sum(c.size for parts in self.codes for c in parts)


def _common(values: tuple[float, ...]) -> float:
    return values[0] if values and all(v == values[0] for v in values) else math.nan


def _per_weight(value, count: int, name: str) -> tuple[float, ...]:
    """A scalar repeated ``count`` times, or a sequence of ``count`` floats."""
    if np.ndim(value) == 0:
        return (float(value),) * count
    values = tuple(float(v) for v in value)
    if len(values) != count:
        raise ValueError(
            f"{name} needs one value per weight ({count}). Received {len(values)}."
        )
    return values


def coarse_grain(
    weights: Sequence,
    threshold: float | Sequence[float],
    bin_size: float | Sequence[float],
    factorizations: Sequence[Factorization] | None = None,
    balanced: bool | Sequence[bool] = False,
) -> CoarseGrained:
    """Coarse-grains weights by SVD truncation and quantization (paper B).

    For each matrix ``W`` (m x n, its 2-D view as ``matrix_shape``) with singular
    values ``s``: k is the smallest rank whose cumulative mass
    ``sum_{i<=k} s_i / sum_i s_i`` reaches ``threshold``. If ``k (m + n) < m n`` the
    factors ``U_k S_k`` and ``V_k^T`` are stored, otherwise ``W`` itself (a rank-k
    reconstruction would cost as much and be less exact). Every stored number is
    then quantized to ``round(x / b) * b`` (-0 becomes 0); vectors are only
    quantized. Paper B's code uses one threshold and one bin size for the whole
    network; a sequence gives each weight its own. ``balanced`` splits the
    singular values evenly between the factors (``U_k S_k^(1/2)`` and
    ``S_k^(1/2) V_k^T``): the same rank-k product, but both factors' entries on
    one scale, so one bin size quantizes them about equally well (not paper B's
    choice; the decoded weight is still the product of the quantized factors).

    Args:
        weights: arrays (or variables) in a fixed order.
        threshold: singular-value mass to keep, in [0, 1] (or one per weight);
            1 keeps the numerical rank, 0 drops every matrix.
        bin_size: the grid's bin size b > 0 (or one per weight).
        factorizations: ``factorize(weights)``, to reuse one SVD per matrix across
            many calls. Defaults to `None` (computed here).
        balanced: split the singular values evenly between the factors (or one
            flag per weight). Defaults to `False` (paper B's ``U_k S_k``).

    Returns:
        A ``CoarseGrained``.

    Example:
    ```python
    coarse = coarse_grain(model.get_weights(), threshold=0.9, bin_size=0.01)
    compressed_size(coarse)  # bytes (keras_grok.measures.weight_codec)
    ```
    """
    factors = list(factorizations) if factorizations is not None else factorize(weights)
    thresholds = _per_weight(threshold, len(factors), "threshold")
    bin_sizes = _per_weight(bin_size, len(factors), "bin_size")
    splits = tuple(bool(v) for v in _per_weight(balanced, len(factors), "balanced"))
    for t in thresholds:
        if not 0 <= t <= 1:
            raise ValueError(f"threshold must be in [0, 1]. Received: threshold={t}")
    codes, ranks, decoded = [], [], []
    for f, t, b, even in zip(factors, thresholds, bin_sizes, splits):
        parts, rank, value = _coarse_grain_one(f, t, b, even)
        codes.append(parts)
        ranks.append(rank)
        decoded.append(value)
    weights_out = tuple(
        (d + 0.0).astype(
            f.original.dtype if f.original.dtype.kind == "f" else np.float32
        )
        for d, f in zip(decoded, factors)
    )
    return CoarseGrained(
        thresholds, bin_sizes, tuple(codes), tuple(ranks), weights_out, splits
    )


def _coarse_grain_one(
    f: Factorization, threshold: float, bin_size: float, balanced: bool
):
    """``(codes, rank, decoded float64 value)`` of one weight."""
    shape = f.original.shape
    if f.is_matrix:
        k = f.rank_for(threshold)
        m, n = matrix_shape(shape)
        if k * (m + n) < m * n:
            s = f.s[:k]
            left, right = (np.sqrt(s), np.sqrt(s)) if balanced else (s, np.ones_like(s))
            a = codes_of(f.u[:, :k] * left, bin_size)
            b = codes_of(right[:, None] * f.vt[:k], bin_size)
            product = (a.astype(np.float64) * bin_size) @ (
                b.astype(np.float64) * bin_size
            )
            return (a, b), k, product.reshape(shape)
    c = codes_of(f.original, bin_size)
    return (c,), None, c.astype(np.float64) * bin_size
