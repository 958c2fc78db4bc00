"""The restricted and excluded losses of modular arithmetic (Nanda et al.).

Nanda, Chan, Lieberum, Smith & Steinhardt, *Progress measures for grokking via
mechanistic interpretability* (arXiv 2301.05217, Section 5.1), split the logit
table over all ``p**2`` pairs into its part along the key-frequency directions
``cos(w_k (a + b - c))``, ``sin(w_k (a + b - c))`` (``key_frequency_component``)
and the rest. The loss of the part alone (``restricted_loss``) falls once the
Fourier circuit carries the answer; the loss without it (``excluded_loss``) rises
during circuit formation. Defined for ``a+b`` and ``a-b``
(``keras_grok.measures.fourier.check_fourier_operation``); pure functions in
``keras.ops``.
"""

from __future__ import annotations

import math

import numpy as np
from keras import ops

from keras_grok.measures.float64 import matmul_float64, mean_float64
from keras_grok.measures.fourier import check_fourier_operation
from keras_grok.utils.argument_validation import native_array, validate_choice_arg
from keras_grok.utils.labelled_data import validate_class_labels

DIRECTIONS = ("paper", "code")


def _key_directions(p: int, op: str, frequencies, dtype, directions: str):
    """Unit directions of the key-frequency terms, as (pair, c) factors.

    Every direction is ``u[s(a,b)] (x) v[c]`` summed over two products, so it is
    returned as matrices over the pairs ``U`` (``(p*p, m)``) and classes ``V``
    (``(p, m)``): ``paper``: ``m = 2 K`` directions
    ``cos(w(s-c)) = cos(ws)cos(wc) + sin(ws)sin(wc)`` and
    ``sin(w(s-c)) = sin(ws)cos(wc) - cos(ws)sin(wc)``; ``code``: the pair
    directions ``cos(ws)``, ``sin(ws)`` alone (``m = 2 K``), any function of c.
    """
    op = check_fourier_operation(op)
    validate_choice_arg(directions, "directions", DIRECTIONS)
    k = ops.cast(ops.convert_to_tensor(frequencies), dtype)
    a = np.repeat(np.arange(p), p)
    b = np.tile(np.arange(p), p)
    s = ops.convert_to_tensor((a + b if op == "a+b" else a - b) % p, dtype)
    c = ops.convert_to_tensor(np.arange(p), dtype)
    w = 2.0 * math.pi / p
    pair_angle = w * s[:, None] * k[None, :]  # (p*p, K)
    class_angle = w * c[:, None] * k[None, :]  # (p, K)
    return (
        ops.cos(pair_angle),
        ops.sin(pair_angle),
        ops.cos(class_angle),
        ops.sin(class_angle),
    )


def key_frequency_component(logits, p: int, op: str, frequencies, directions="paper"):
    """The part of a logit table carried by the key-frequency terms.

    ``logits`` holds ``L[a, b, c]`` for every pair, row ``a * p + b``. With ``s =
    a + b`` (``a - b`` for ``a-b``) and ``w = 2 pi k / p`` for each key frequency
    ``k``, the component is the orthogonal projection of ``L`` onto

    - ``directions="paper"`` (Nanda et al., arXiv 2301.05217, Section 5.1: "the
      directions cos(w_k(a+b-c)), sin(w_k(a+b-c))"): the two unit vectors
      ``sqrt(2 / p^3) cos(w (s - c))`` and ``sqrt(2 / p^3) sin(w (s - c))`` of
      ``R^(p^3)`` per key frequency;
    - ``directions="code"`` (their public code, ``get_component_cos_xpy``): the
      pair directions ``sqrt(2 / p^2) cos(w s)``, ``sqrt(2 / p^2) sin(w s)``,
      projected out for each class ``c`` separately (a superset of the above).

    The directions of distinct frequencies are orthogonal, so the projection is
    the sum of the projections on each (frequencies must be distinct and in
    ``1 .. (p - 1) / 2``).

    Returns:
        A ``(p*p, p)`` tensor.
    """
    logits = ops.convert_to_tensor(native_array(logits))
    _check_table(logits, p)
    frequencies = _check_frequencies(frequencies, p)
    cos_s, sin_s, cos_c, sin_c = _key_directions(
        p, op, frequencies, logits.dtype, directions
    )
    if directions == "code":
        scale = 2.0 / p**2
        return scale * (
            matmul_float64(cos_s, matmul_float64(ops.transpose(cos_s), logits))
            + matmul_float64(sin_s, matmul_float64(ops.transpose(sin_s), logits))
        )
    # <L, cos(w(s-c))> = sum_c [cos(wc) (cos_s^T L)_c + sin(wc) (sin_s^T L)_c].
    along_cos = ops.transpose(matmul_float64(ops.transpose(logits), cos_s))  # (K, p)
    along_sin = ops.transpose(matmul_float64(ops.transpose(logits), sin_s))  # (K, p)
    cos_t, sin_t = ops.transpose(cos_c), ops.transpose(sin_c)  # (K, p)
    coefficient_cos = ops.sum(along_cos * cos_t + along_sin * sin_t, axis=1)
    coefficient_sin = ops.sum(along_sin * cos_t - along_cos * sin_t, axis=1)
    scale = 2.0 / p**3
    # Sum over k of a_k cos(w(s-c)) + b_k sin(w(s-c)), expanded over (s, c).
    first = cos_s * coefficient_cos + sin_s * coefficient_sin  # (p*p, K)
    second = sin_s * coefficient_cos - cos_s * coefficient_sin
    return scale * (matmul_float64(first, cos_t) + matmul_float64(second, sin_t))


def _check_table(logits, p: int) -> None:
    if tuple(logits.shape) != (p * p, p):
        raise ValueError(
            "logits must hold one row per pair (a, b), row a * p + b, and one "
            f"column per class: shape ({p * p}, {p}). Received: "
            f"shape={tuple(logits.shape)}"
        )


def _check_frequencies(frequencies, p: int) -> np.ndarray:
    k = np.asarray(frequencies).astype("int64").ravel()
    if k.size == 0 or k.min() < 1 or 2 * k.max() >= p or len(set(k)) != k.size:
        raise ValueError(
            f"frequencies must be distinct integers in [1, {(p - 1) // 2}]. "
            f"Received: {k.tolist()}"
        )
    return k


def cross_entropy_of_pairs(logits, labels, pairs=None):
    """Mean cross-entropy of ``logits`` rows against integer ``labels``.

    ``mean_i [logsumexp(L_i) - L_i[y_i]]`` over the rows ``pairs``: row indices,
    or a boolean mask with one entry per row (its True rows); None: all rows.

    Raises:
        ValueError: ``logits`` is not a matrix, a label is out of range, or
            ``pairs`` selects no row or names one that does not exist.
    """
    logits = ops.convert_to_tensor(native_array(logits))
    shape = tuple(logits.shape)
    if len(shape) != 2:
        raise ValueError(
            f"logits must be an (n, classes) matrix. Received: shape={shape}"
        )
    labels = validate_class_labels(ops.convert_to_numpy(labels), "labels", shape[1])
    if labels.shape != (shape[0],):
        raise ValueError(
            f"labels must hold one label per row of logits ({shape[0]}). "
            f"Received: labels of shape {labels.shape}"
        )
    labels = ops.convert_to_tensor(labels.astype("int32"))
    if pairs is not None:
        index = _row_indices(pairs, shape[0])
        logits, labels = ops.take(logits, index, axis=0), ops.take(labels, index)
    picked = ops.take_along_axis(logits, labels[:, None], axis=1)[:, 0]
    losses = ops.logsumexp(logits, axis=1) - picked
    return ops.sum(losses) / losses.shape[0]  # ops.mean: float32 on torch


def _row_indices(pairs, rows: int):
    # The rows ``pairs`` selects, as int32 indices: a boolean mask selects its
    # True rows (NumPy's way), indices must name existing rows (a gather out of
    # range gives NaN on JAX, not an error).
    chosen = np.asarray(ops.convert_to_numpy(pairs))
    if chosen.ndim == 1 and chosen.dtype == bool:
        if chosen.shape[0] != rows:
            raise ValueError(
                f"pairs as a boolean mask must hold one entry per row of logits "
                f"({rows}). Received: a mask of {chosen.shape[0]} entries"
            )
        chosen = np.flatnonzero(chosen)
    if chosen.ndim != 1 or not chosen.size:
        raise ValueError(
            "pairs must be a 1-D list of one or more row indices, or a boolean mask "
            f"(a mean over no pairs is undefined). Received: pairs={pairs!r}"
        )
    if not np.issubdtype(chosen.dtype, np.integer):
        raise ValueError(
            "pairs must hold integer row indices or booleans. Received: pairs of "
            f"dtype {chosen.dtype}"
        )
    if chosen.min() < -rows or chosen.max() >= rows:
        raise ValueError(
            f"pairs must be row indices in [0, {rows}) of the {rows} rows of "
            f"logits. Received: pairs in [{chosen.min()}, {chosen.max()}]"
        )
    return ops.convert_to_tensor(chosen.astype("int32") % rows)


def restricted_loss(
    logits,
    labels,
    p: int,
    op: str,
    frequencies,
    pairs=None,
    directions: str = "paper",
    component=None,
):
    """The loss of the logits restricted to the key-frequency terms.

    Nanda et al. (arXiv 2301.05217, Section 5.1): keep only the components of the
    logit table along the key-frequency directions (``key_frequency_component``)
    plus the constant term over the pairs (each class's mean logit over all
    pairs, their "bias correction"), and take the cross-entropy:
    ``L_restricted = P_key(L) + mean_{a,b} L[a, b, :]``. It falls once the
    Fourier circuit alone carries the answer.

    Args:
        logits: the ``(p*p, p)`` logit table over all pairs, row ``a * p + b``.
        labels: ``(p*p,)`` integer labels, ``a op b mod p``.
        p: the modulus.
        op: ``"a+b"`` or ``"a-b"``.
        frequencies: the key frequencies (distinct, in ``1 .. (p - 1) / 2``).
        pairs: the rows the loss is averaged over (Nanda et al.: the training
            pairs), as indices or a boolean mask; None: all. Defaults to `None`.
        directions: ``"paper"`` or ``"code"`` (see ``key_frequency_component``).
            Defaults to `"paper"`.
        component: ``key_frequency_component(logits, p, op, frequencies,
            directions)`` if already computed (to share it between losses).
            Defaults to `None`.

    Returns:
        A scalar tensor, the mean cross-entropy in nats.

    Raises:
        ValueError: ``op`` is not ``a+b`` or ``a-b``, or bad shapes or
            frequencies.
    """
    logits = ops.convert_to_tensor(native_array(logits))
    if component is None:
        component = key_frequency_component(logits, p, op, frequencies, directions)
    constant = mean_float64(logits, axis=0)
    return cross_entropy_of_pairs(component + constant, labels, pairs)


def excluded_loss(
    logits,
    labels,
    p: int,
    op: str,
    frequencies,
    pairs=None,
    directions: str = "paper",
    component=None,
):
    """The loss of the logits with the key-frequency terms removed.

    Nanda et al. (arXiv 2301.05217, Section 5.1): subtract the components along
    the key-frequency directions (``key_frequency_component``) and take the
    cross-entropy on the training pairs: ``L_excluded = L - P_key(L)``. It rises
    during "circuit formation", while the training loss stays low, as the
    Fourier circuit takes over from memorization. A table made only of
    key-frequency terms has ``log p``, the loss of uniform logits.

    Args:
        logits: the ``(p*p, p)`` logit table over all pairs, row ``a * p + b``.
        labels: ``(p*p,)`` integer labels.
        p: the modulus.
        op: ``"a+b"`` or ``"a-b"``.
        frequencies: the key frequencies.
        pairs: the rows averaged over (the training pairs), as indices or a
            boolean mask; None: all. Defaults to `None`.
        directions: ``"paper"`` or ``"code"``. Defaults to `"paper"`.
        component: the key-frequency component if already computed.
            Defaults to `None`.

    Returns:
        A scalar tensor, the mean cross-entropy in nats.

    Raises:
        ValueError: ``op`` is not ``a+b`` or ``a-b``, or bad shapes or
            frequencies.
    """
    validate_choice_arg(directions, "directions", DIRECTIONS)
    logits = ops.convert_to_tensor(native_array(logits))
    if component is None:
        component = key_frequency_component(logits, p, op, frequencies, directions)
    return cross_entropy_of_pairs(logits - component, labels, pairs)
