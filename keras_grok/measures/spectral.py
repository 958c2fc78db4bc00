"""Spectral measures of weight matrices: spectral entropy, effective and stable rank.

Paper B (DeMoss et al., *The Complexity Dynamics of Grokking*, arXiv 2412.09810)
regularizes with the spectral entropy of the weight matrices and reads the effective
rank ``exp(H)`` as a smooth measure of their complexity. Everything here is written
in ``keras.ops`` so it runs on device and is differentiable on every backend; it also
fixes the 2-D view of a weight of any rank (``matrix_shape``), shared with the
coarse-graining of ``keras_grok.measures.complexity``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from keras_grok.measures.float64 import float64_scope
from keras_grok.utils.argument_validation import (
    native_array,
    validate_choice_arg,
    validate_float_dtype,
    validate_int_arg,
    validate_nonnegative_values,
)

# --------------------------------------------------------------------------------------
# Matrix views
# --------------------------------------------------------------------------------------


def matrix_shape(shape: Sequence[int], split: int | None = None) -> tuple[int, int]:
    """The 2-D view ``(m, n)`` under which a weight of ``shape`` counts as a matrix.

    - 2-D weights (``Dense`` kernels, ``Embedding`` tables) are used as they are.
    - 3-D weights split where the view has the largest possible rank
      ``min(m, n)``, ties going to the later split. Keras' ``EinsumDense`` kernels
      in ``MultiHeadAttention`` are ``(d_model, heads, head_dim)`` for query, key and
      value and ``(heads, head_dim, d_model)`` for the output, so this gives
      ``(d_model, heads * head_dim)`` and ``(heads * head_dim, d_model)``; a
      ``Conv1D`` kernel ``(width, in, out)`` gives ``(width * in, out)`` whenever
      ``out > width``.
    - 4-D and higher weights (``Conv2D``/``Conv3D`` kernels) are
      ``(prod(shape[:-1]), filters)``: fan-in by fan-out.

    Args:
        shape: the weight's shape, at least 2-D.
        split: if given, view the weight as ``(prod(shape[:split]),
            prod(shape[split:]))`` instead. Defaults to `None`.

    Returns:
        ``(m, n)`` with ``m * n == prod(shape)``.
    """
    shape = tuple(int(d) for d in shape)
    if len(shape) < 2:
        raise ValueError(
            f"A weight matrix needs at least 2 axes. Received: shape={shape}"
        )
    if 0 in shape:  # no singular values: no spectrum to measure
        raise ValueError(f"A weight matrix must not be empty. Received: shape={shape}")
    if split is not None:
        split = validate_int_arg(split, "split", minimum=-len(shape))
        if not -len(shape) < split < len(shape) or split % len(shape) == 0:
            raise ValueError(
                f"split must leave axes on both sides of a {len(shape)}-axis weight "
                f"(1 to {len(shape) - 1}, or -1 to {1 - len(shape)}). "
                f"Received: split={split}, shape={shape}"
            )
        split = split % len(shape)
        return math.prod(shape[:split]), math.prod(shape[split:])
    if len(shape) == 2:
        return shape
    if len(shape) == 3:
        views = [(math.prod(shape[:i]), math.prod(shape[i:])) for i in (1, 2)]
        return max(views, key=lambda v: (min(v), views.index(v)))
    return math.prod(shape[:-1]), shape[-1]


def as_matrix(w, split: int | None = None):
    """``w`` reshaped to its 2-D view (see ``matrix_shape``), as a backend tensor."""
    w = ops.convert_to_tensor(native_array(w))
    return ops.reshape(w, matrix_shape(tuple(w.shape), split))


def singular_values(w, split: int | None = None):
    """Singular values of ``w``'s 2-D view, descending (``keras.ops``).

    Uses ``ops.svd(..., full_matrices=False, compute_uv=False)``: its gradient is
    ``U diag(ds) V^T`` on every backend, finite also for repeated or zero singular
    values (only the gradients of U and V have ``1 / (s_i^2 - s_j^2)`` terms).
    """
    matrix = widen_half(validate_float_dtype(as_matrix(w, split), "w"))
    return ops.svd(matrix, full_matrices=False, compute_uv=False)


def widen_half(x):
    """``x`` cast to float32 if it is float16 or bfloat16, else ``x`` as it is.

    Half-precision sums of squares overflow past 65504, and no backend's CPU SVD
    takes half-precision matrices, so measures compute them in float32.
    """
    if keras.backend.standardize_dtype(x.dtype) in ("float16", "bfloat16"):
        return ops.cast(x, "float32")
    return x


def safe_scale(peak):
    """``peak`` where it is > 0, else 1: a divisor that brings values to at most 1
    in size (so their float32 squares do not overflow) and leaves zeros alone."""
    return ops.where(peak > 0, peak, ops.ones_like(peak))


# --------------------------------------------------------------------------------------
# Spectral measures (keras.ops, differentiable)
# --------------------------------------------------------------------------------------


def entropy_of_spectrum(s):
    """Entropy ``H = -sum_i p_i log p_i`` of ``p = s / sum(s)``, with safe gradients.

    Terms with ``p_i = 0`` count as 0, and an all-zero ``s`` has entropy 0. Both
    cases go through the "double where" pattern (the log only ever sees positive
    numbers), so the gradient is finite everywhere: 0 for a zero ``s``, and
    ``dH/ds_i = -(log p_i + H) / sum(s)`` for each ``s_i > 0``.

    ``s`` holds singular values (or other non-negative weights): a host array or
    list is checked for that; a tensor is not, so the function traces under jit.

    Raises:
        ValueError: a host array or list ``s`` holds a negative or non-finite
            value, or is empty.
    """
    if isinstance(s, (list, tuple, np.ndarray)):
        s = validate_nonnegative_values(s, "s")
    return _entropy_and_gradient(ops.convert_to_tensor(s))[0]


def _entropy_and_gradient(s):
    """``(H, dH/ds)`` of a spectrum ``s >= 0``; ``dH/ds_i = 0`` where ``s_i = 0``."""
    total = ops.sum(s)
    nonzero_total = total > 0
    safe_total = ops.where(nonzero_total, total, ops.ones_like(total))
    p = s / safe_total
    positive = p > 0
    log_p = ops.log(ops.where(positive, p, ops.ones_like(p)))
    terms = ops.where(positive, p * log_p, ops.zeros_like(p))
    entropy = ops.where(nonzero_total, -ops.sum(terms), ops.zeros_like(total))
    grad_s = ops.where(positive, -(log_p + entropy) / safe_total, ops.zeros_like(p))
    return entropy, grad_s


ZERO_TOLERANCE = float(np.finfo(np.float32).eps)
"""Singular values ``<= sigma_max * max(m, n) * ZERO_TOLERANCE`` count as zero.

The numerical-rank rule of ``numpy.linalg.matrix_rank`` at float32 precision (the
precision of the weights): below it a singular value is rounding noise, whose
``-(log p + H)`` gradient would push along arbitrary null-space directions.
"""


def numerical_spectrum(s, shape: tuple[int, int]):
    """``s`` with the singular values at rounding-noise level set to exactly 0.

    Args:
        s: the singular values of an ``(m, n)`` matrix.
        shape: ``(m, n)``.

    Returns:
        ``s`` where ``s > max(s) * max(m, n) * ZERO_TOLERANCE``, else 0.
    """
    s = ops.convert_to_tensor(s)
    tolerance = ops.max(s) * (max(shape) * ZERO_TOLERANCE)
    return ops.where(s > tolerance, s, ops.zeros_like(s))


DECOMPOSITIONS = ("auto", "svd", "gram")
"""How ``spectral_entropy`` finds the spectrum and its gradient direction.

- ``"svd"``: one float32 SVD, ``W = U diag(s) V^T``; the direction is
  ``U diag(dH/ds) V^T``.
- ``"gram"``: one float64 symmetric eigendecomposition of the smaller Gram
  matrix, ``W^T W = V diag(s^2) V^T`` (or ``W W^T`` when ``W`` is wide); the
  direction is ``W V diag(dH/ds / s) V^T``. Squaring the matrix squares its
  condition number, which float64 absorbs: the Gram matrix of float32 weights is
  formed to ~1e-16 relative, so a singular value ``s_i`` comes out within
  ``~1e-16 (s_max / s_i)^2`` relative, ~1e-7 at the zero threshold of a 256-wide
  matrix. It is at least as accurate as the float32 SVD (more, for
  ill-conditioned matrices: gradient errors ~4e-8 against ~1e-4 at condition
  number 1e4).
- ``"auto"``: the one measured faster for a training step on the backend
  (``benchmarks/bench_spectral_entropy_step.py``; see ``AUTO_DECOMPOSITION``).
"""

AUTO_DECOMPOSITION = {"jax": "gram", "tensorflow": "gram", "torch": "svd"}
"""``"auto"``'s choice per backend, measured on a 2-core CPU with one thread.

The modadd MLP's regularized step over a plain one (four matrices, up to
256 x 256): JAX 3.83x with ``"gram"`` against 5.38x with ``"svd"``, TensorFlow
2.45x against 2.55x, torch 3.27x against 2.72x (its float64 ``eigh`` is slower than
its float32 SVD). Not measured on a GPU, where float64 may be slow: pass
``decomposition`` explicitly there.
"""


def spectral_entropy(w, split: int | None = None, decomposition: str = "auto"):
    """Spectral entropy of a weight matrix: the entropy of its normalized spectrum.

    With singular values ``s`` of ``W``, ``p = s / sum(s)`` and
    ``H(W) = -sum_i p_i log p_i`` in nats (paper B, DeMoss et al., arXiv
    2412.09810). ``H`` is 0 for a rank-1 (and a zero) matrix and ``log n`` for an
    ``n x n`` orthogonal one. Singular values at rounding-noise level (see
    ``ZERO_TOLERANCE``) count as zero, so an exactly rank-deficient matrix gets
    the entropy of its nonzero spectrum.

    Gradients are finite for zero, rank-deficient and repeated-singular-value
    matrices: the gradient is ``dH/dW = U diag(dH/ds) V^T`` with
    ``dH/ds_i = -(log p_i + H) / sum(s)`` where ``s_i > 0`` and 0 where
    ``s_i = 0``, from one decomposition taken outside autodiff (only first
    derivatives are meaningful; repeated singular values share one ``dH/ds`` so
    the arbitrary basis of their subspace does not matter).

    Args:
        w: a weight of at least 2 axes (any backend tensor, variable or array).
        split: overrides the 2-D view (see ``matrix_shape``). Defaults to `None`.
        decomposition: ``"svd"``, ``"gram"`` or ``"auto"`` (see
            ``DECOMPOSITIONS``); the value and gradient agree to ~1e-6.
            Defaults to `"auto"`.

    Returns:
        A scalar tensor of ``w``'s dtype.

    Raises:
        ValueError: ``w`` has an integer dtype (its spectrum would be rounded;
            cast it to a float first), fewer than 2 axes, or ``decomposition``
            is unknown.

    Example:
    ```python
    spectral_entropy(np.eye(4, dtype="float32"))  # log(4) = 1.386...
    ```
    """
    matrix = widen_half(validate_float_dtype(as_matrix(w, split), "w"))
    validate_choice_arg(decomposition, "decomposition", DECOMPOSITIONS)
    if decomposition == "auto":
        decomposition = AUTO_DECOMPOSITION.get(keras.backend.backend(), "svd")
    if decomposition == "gram":
        entropy, direction = _gram_entropy_and_direction(ops.stop_gradient(matrix))
    else:
        entropy, direction = _svd_entropy_and_direction(ops.stop_gradient(matrix))
    # The gradient dH/dW is put in by hand through a surrogate whose value is 0:
    # ``y - stop_gradient(y)`` with ``y = sum(W * G)`` has gradient ``G``.
    # Differentiating ``ops.svd`` instead costs several times more (JAX's SVD
    # derivative also forms U and V's derivatives) for the same gradient.
    y = ops.sum(matrix * ops.stop_gradient(direction))
    return ops.stop_gradient(entropy) + (y - ops.stop_gradient(y))


def _svd_entropy_and_direction(matrix):
    """``(H, U diag(dH/ds) V^T)`` from one SVD in the matrix's dtype."""
    u, s, vt = ops.svd(matrix, full_matrices=False)
    entropy, grad_s = _entropy_and_gradient(numerical_spectrum(s, matrix.shape))
    return entropy, ops.matmul(u * grad_s[None, :], vt)


def _gram_entropy_and_direction(matrix):
    """``(H, U diag(dH/ds) V^T)`` from the float64 eigendecomposition of the
    smaller Gram matrix, cast back to the matrix's dtype.

    For a tall ``W`` (``m >= n``): ``W^T W = V diag(s^2) V^T`` and ``U = W V
    diag(1 / s)`` on the nonzero spectrum, so ``U diag(g) V^T = W V diag(g / s)
    V^T``; a wide ``W`` uses ``W W^T = U diag(s^2) U^T`` and ``U diag(g / s)
    U^T W``. Zero singular values have ``g = 0`` and drop out.
    """
    m, n = matrix.shape
    with float64_scope():
        x = ops.cast(matrix, "float64")
        tall = m >= n
        gram = ops.einsum("ki,kj->ij" if tall else "ik,jk->ij", x, x)
        squares, vectors = ops.eigh(gram)
        s = numerical_spectrum(ops.sqrt(ops.relu(squares)), (m, n))
        entropy, grad_s = _entropy_and_gradient(s)
        positive = s > 0
        scale = ops.where(positive, grad_s / ops.where(positive, s, 1.0), 0.0)
        core = ops.einsum("ik,jk->ij", vectors * scale[None, :], vectors)
        if tall:
            direction = ops.einsum("ik,kj->ij", x, core)
        else:
            direction = ops.einsum("ik,kj->ij", core, x)
        dtype = matrix.dtype
        return ops.cast(entropy, dtype), ops.cast(direction, dtype)


def effective_rank(w, split: int | None = None):
    """Effective rank ``exp(H(W))`` (Roy & Vetterli, 2007; used by paper B).

    Between 1 (rank 1) and ``min(m, n)`` (all singular values equal); 1 for a zero
    matrix.

    Args:
        w: a weight of at least 2 axes.
        split: overrides the 2-D view (see ``matrix_shape``). Defaults to `None`.

    Example:
    ```python
    effective_rank(np.eye(4, dtype="float32"))  # 4.0
    ```
    """
    return ops.exp(spectral_entropy(w, split))


def stable_rank(w, split: int | None = None):
    """Stable rank ``||W||_F^2 / sigma_max(W)^2`` (Rudelson & Vershynin, 2007).

    Between 1 and ``rank(W)``; 0 for a zero matrix.

    Args:
        w: a weight of at least 2 axes.
        split: overrides the 2-D view (see ``matrix_shape``). Defaults to `None`.

    Example:
    ```python
    stable_rank(np.eye(4, dtype="float32"))  # 4.0
    ```
    """
    s = singular_values(w, split)
    top = s[0]
    # sum((s / s_max)^2): the ratio first, so squares of large singular values
    # (above about 1e19 in float32) do not overflow.
    return ops.where(top > 0, ops.sum((s / safe_scale(top)) ** 2), 0 * top)


def weight_matrices(model: keras.Model) -> list[keras.Variable]:
    """The model's trainable weights with at least 2 axes (kernels and embeddings)."""
    if not isinstance(model, keras.Model):
        raise TypeError(
            "model must be a keras.Model. "
            f"Received: model of type {type(model).__name__}"
        )
    return [v for v in model.trainable_weights if len(v.shape) >= 2]


def spectral_entropies(weights: Sequence) -> np.ndarray:
    """The spectral entropy of each weight with >= 2 axes, as a float64 array.

    For measuring, not training: one SVD of singular values only per matrix, no
    gradient; rounding-noise singular values count as zero as in
    ``spectral_entropy``. ``np.exp`` of the result gives the effective ranks.
    """
    entropies = []
    for w in weights:
        shape = tuple(ops.shape(w))
        if len(shape) < 2:
            continue
        validate_float_dtype(w, "weights")
        s = numerical_spectrum(singular_values(w), matrix_shape(shape))
        entropies.append(float(ops.convert_to_numpy(entropy_of_spectrum(s))))
    return np.array(entropies, dtype=np.float64)
