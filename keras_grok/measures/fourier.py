"""Fourier progress measures of modular addition (Nanda et al., arXiv 2301.05217).

Nanda, Chan, Lieberum, Smith & Steinhardt, *Progress measures for grokking via
mechanistic interpretability* (ICLR 2023), show that a network trained on
``a + b mod p`` computes with a few **key frequencies** ``w_k = 2 pi k / p``: it
embeds tokens as ``cos(w_k x)``, ``sin(w_k x)``, combines them into
``cos(w_k (a + b))``, ``sin(w_k (a + b))`` and reads out logits
``~ sum_k alpha_k cos(w_k (a + b - c))`` for class ``c``. The measures here follow
that circuit through training:

- the Fourier spectrum of the token embedding (``embedding_spectrum``), its key
  frequencies, sparsity and Gini coefficient;
- the total squared weight norm (``squared_weight_norm``);
- the restricted and excluded losses of the logit table over all pairs, in
  ``keras_grok.measures.fourier_losses``.

They are defined for ``a+b`` and ``a-b`` only (``a-b`` reads out
``cos(w_k (a - b - c))``); other operations raise ``ValueError``. Pure functions in
``keras.ops``: they compute in the dtype of their inputs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from keras_grok.measures.spectral import safe_scale, widen_half
from keras_grok.utils.argument_validation import (
    native_array,
    validate_float_dtype,
    validate_nonnegative_values,
)

FOURIER_OPERATIONS = ("a+b", "a-b")
_ALIASES = {"+": "a+b", "-": "a-b"}


def check_fourier_operation(op: str) -> str:
    """The canonical name of ``op`` if the Fourier measures are defined for it.

    Raises:
        ValueError: ``op`` is not ``a+b`` or ``a-b`` (``+``, ``-``).
    """
    name = _ALIASES.get(op, op)
    if name not in FOURIER_OPERATIONS:
        raise ValueError(
            "The Fourier progress measures are defined for a+b and a-b only (the "
            "logits of a-b read out cos(w_k(a-b-c)); a*b would need a discrete-log "
            f"relabelling). Received: op={op!r}"
        )
    return name


def _check_modulus(p: int) -> int:
    if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or p < 3:
        raise ValueError(f"p must be an integer >= 3. Received: p={p!r}")
    return int(p)


def num_frequencies(p: int) -> int:
    """The number of non-constant frequencies over Z_p: ``floor(p / 2)``."""
    return _check_modulus(p) // 2


def fourier_basis(p: int, dtype: str = "float32"):
    """The orthonormal Fourier basis over Z_p, one basis vector per row.

    Rows, in order (Nanda et al., arXiv 2301.05217, Section 4.1): the constant
    ``1 / sqrt(p)``, then for ``k = 1 .. floor(p / 2)`` the pair
    ``sqrt(2 / p) cos(w_k x)``, ``sqrt(2 / p) sin(w_k x)`` with ``w_k = 2 pi k / p``
    and ``x = 0 .. p - 1``. For even ``p`` the last frequency ``k = p / 2`` has its
    cosine ``cos(pi x) / sqrt(p)`` only (its sine is zero). The ``p x p`` matrix is
    orthogonal: ``B B^T = I``.

    Args:
        p: the modulus, an integer >= 3.
        dtype: the tensor's dtype. Defaults to `"float32"`.

    Returns:
        A ``(p, p)`` tensor.

    Example:
    ```python
    basis = fourier_basis(97)
    coefficients = ops.matmul(basis, embedding_table[:97])  # (97, d)
    ```
    """
    dtype = keras.backend.standardize_dtype(dtype)
    if not keras.backend.is_float_dtype(dtype):
        raise ValueError(
            "dtype must be a floating-point dtype (the basis holds cosines and "
            f"sines). Received: dtype={dtype!r}"
        )
    return ops.convert_to_tensor(_basis_numpy(_check_modulus(p)), dtype=dtype)


def _basis_numpy(p: int) -> np.ndarray:
    x = np.arange(p)
    rows = [np.full(p, 1.0 / math.sqrt(p))]
    for k in range(1, p // 2 + 1):
        angle = 2 * math.pi * k * x / p
        if 2 * k == p:
            rows.append(np.cos(angle) / math.sqrt(p))
        else:
            rows.append(np.cos(angle) * math.sqrt(2.0 / p))
            rows.append(np.sin(angle) * math.sqrt(2.0 / p))
    return np.stack(rows)


def _frequency_of_row(p: int) -> np.ndarray:
    # Row 0 of the basis is the constant (frequency 0); rows 2k-1, 2k are k.
    return np.array([0] + [(r + 1) // 2 for r in range(1, p)], dtype="int32")


def embedding_spectrum(embedding, p: int):
    """The norm of the token embedding at each frequency over Z_p.

    With ``W_E`` the embedding table (token rows ``0 .. p - 1`` are the numbers;
    further rows, such as the transformer's ``op`` and ``=`` tokens, are ignored)
    and ``C = B W_E`` its coefficients in the Fourier basis ``B``
    (``fourier_basis``), the norm of frequency ``k`` takes its cosine and sine
    rows together (Nanda et al., arXiv 2301.05217, Figure 3):
    ``n_k = sqrt(||C_cos_k||^2 + ||C_sin_k||^2)``, ``k = 1 .. floor(p / 2)``. The
    constant row (the mean embedding) is left out.

    Args:
        embedding: the ``(vocab, d)`` embedding table, ``vocab >= p``.
        p: the modulus.

    Returns:
        A ``(floor(p / 2),)`` tensor; entry ``k - 1`` is frequency ``k``.
    """
    p = _check_modulus(p)
    table = ops.convert_to_tensor(native_array(embedding))
    if len(table.shape) != 2 or table.shape[0] < p:
        raise ValueError(
            f"embedding must be a (vocab, d) table with vocab >= p = {p}. "
            f"Received: shape={tuple(table.shape)}"
        )
    # Norms scale with the table: computed on the table over its largest entry,
    # so squares of large entries (above about 1e19 in float32) do not overflow.
    numbers = table[:p]
    scale = safe_scale(ops.max(ops.abs(numbers)))
    coefficients = ops.matmul(fourier_basis(p, table.dtype), numbers / scale)
    energy = ops.sum(ops.square(coefficients), axis=1)
    frequency = ops.convert_to_tensor(_frequency_of_row(p))
    per_frequency = ops.segment_sum(energy, frequency, num_segments=p // 2 + 1)
    return ops.sqrt(per_frequency[1:]) * scale


def key_frequencies(norms, k: int = 5):
    """The ``k`` frequencies with the largest norms, largest first.

    Args:
        norms: the frequency norms (``embedding_spectrum``); entry ``i`` is
            frequency ``i + 1``.
        k: how many. Defaults to `5`.

    Returns:
        An int32 ``(k,)`` tensor of frequencies in ``1 .. len(norms)``.

    Raises:
        ValueError: ``norms`` holds a negative, NaN or infinite value (a
            diverged embedding has no key frequencies), or ``k`` is out of range.
    """
    validate_nonnegative_values(ops.convert_to_numpy(norms), "norms")
    return ranked_frequencies(norms, k)


def ranked_frequencies(norms, k: int = 5):
    """``key_frequencies`` without its input check: NaN norms rank last.

    For monitors, which must keep logging (NaN figures) when training diverges;
    the ranking is then the same on every backend.
    """
    norms = ops.convert_to_tensor(native_array(norms))
    k = _check_k(k, norms)
    finite = ops.where(ops.isnan(norms), ops.full_like(norms, -np.inf), norms)
    _, indices = ops.top_k(finite, k)
    return ops.cast(indices, "int32") + 1


def _check_k(k: int, norms) -> int:
    if isinstance(k, bool) or not 1 <= int(k) <= norms.shape[0]:
        raise ValueError(
            f"k must be in [1, {norms.shape[0]}] (the number of frequencies). "
            f"Received: k={k!r}"
        )
    return int(k)


def fourier_sparsity(norms, k: int = 5):
    """The fraction of the embedding's energy in its ``k`` key frequencies.

    ``sum_{top k} n_k^2 / sum_k n_k^2`` over the frequency norms ``n_k``
    (``embedding_spectrum``; squared, so the fractions add up over the
    orthonormal basis). 1 when at most ``k`` frequencies are present; ``k /
    floor(p / 2)`` for a flat spectrum. After grokking ~5 key frequencies hold
    most of it (Nanda et al., arXiv 2301.05217).

    Args:
        norms: the frequency norms.
        k: the number of key frequencies. Defaults to `5`.

    Returns:
        A scalar tensor in ``[k / len(norms), 1]`` (NaN for an all-zero table).
    """
    norms = ops.convert_to_tensor(native_array(norms))
    # A share is scale-free: squares of the norms over the largest.
    energy = ops.square(norms / safe_scale(ops.max(norms)))
    top, _ = ops.top_k(energy, _check_k(k, energy))
    # A share: rounding must not carry it past 1 (1.0000001 was seen in float32).
    return ops.clip(ops.sum(top) / ops.sum(energy), 0.0, 1.0)


def gini_coefficient(values):
    """The Gini coefficient of non-negative values (Nanda et al.'s sparsity).

    With ``x_(1) <= ... <= x_(n)`` sorted ascending,
    ``G = 2 sum_i i x_(i) / (n sum_i x_i) - (n + 1) / n``, which equals
    ``sum_i sum_j |x_i - x_j| / (2 n^2 mean(x))``: 0 when all are equal,
    ``1 - 1 / n`` when one holds everything. Nanda et al. (arXiv 2301.05217)
    track it for the Fourier norms of the embedding and of the neurons.

    Args:
        values: a 1-D tensor of non-negative numbers.

    Returns:
        A scalar tensor (NaN when all values are zero).

    Raises:
        ValueError: ``values`` is empty or holds a negative or non-finite
            number (the formula assumes shares of a non-negative total).
    """
    host = native_array(np.asarray(ops.convert_to_numpy(values)))  # any array-like
    if host.ndim != 1:
        raise ValueError(f"values must be a 1-D tensor. Received: shape={host.shape}")
    host = validate_nonnegative_values(host, "values")
    # G is scale-free, so divide by the largest value on the host first: values
    # that are all subnormal would otherwise sum to zero where a device flushes
    # subnormals (XLA on CPU does), giving NaN instead of G.
    # The dtype the backend gives these values (float64 where it has it), at
    # least float32.
    dtype = keras.backend.standardize_dtype(ops.convert_to_tensor(host[:1]).dtype)
    dtype = dtype if dtype in ("float32", "float64") else "float32"
    peak = float(np.max(host))
    if peak > 0.0:
        host = np.asarray(host, "float64") / peak
    x = ops.sort(ops.convert_to_tensor(host, dtype=dtype))
    n = x.shape[0]
    ranks = ops.cast(ops.arange(1, n + 1), x.dtype)
    gini = 2.0 * ops.sum(ranks * x) / (n * ops.sum(x)) - (n + 1.0) / n
    return ops.clip(gini, 0.0, 1.0)  # rounding must not carry it outside [0, 1]


def squared_weight_norm(weights: Sequence):
    """The total squared weight norm ``sum_W ||W||_F^2`` over ``weights``.

    Nanda et al. (arXiv 2301.05217) track it as a progress measure: it falls
    during "cleanup", when weight decay removes the memorizing components.

    Args:
        weights: tensors or ``keras.Variable`` objects (e.g. a model's
            ``trainable_weights``).

    Returns:
        A float32 scalar tensor.

    Raises:
        ValueError: a weight has an integer dtype (its square would overflow,
            e.g. int8); cast it to a float first.
    """
    total = ops.convert_to_tensor(0.0, "float32")
    for w in weights:
        w = validate_float_dtype(native_array(getattr(w, "value", w)), "weights")
        total = total + ops.cast(ops.sum(ops.square(widen_half(w))), "float32")
    return total
