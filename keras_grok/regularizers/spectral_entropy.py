"""SpectralEntropy: a penalty on the entropy of a weight matrix's singular values."""

from __future__ import annotations

import keras
import numpy as np

from keras_grok.measures.spectral import (
    DECOMPOSITIONS,
    spectral_entropy,
    weight_matrices,
)
from keras_grok.regularizers.lapack_threads import limit_on_first_use
from keras_grok.utils.argument_validation import (
    FLOAT32_MAX,
    validate_choice_arg,
    validate_float_arg,
)


@keras.saving.register_keras_serializable(package="keras_grok")
class SpectralEntropy(keras.regularizers.Regularizer):
    """Penalizes the spectral entropy of a weight: ``strength * H(W)``.

    With singular values ``s`` of the weight's 2-D view ``W``, ``p = s / sum(s)``
    and ``H(W) = -sum_i p_i log p_i`` (nats). ``H`` is 0 for a rank-1 matrix and
    ``log min(m, n)`` when all singular values are equal, so the penalty pushes
    toward low effective rank ``exp(H)``. It is paper B's regularizer (DeMoss et
    al., *The Complexity Dynamics of Grokking*, arXiv 2412.09810), used there with
    strength 0.1 on the mean over all weight matrices (see
    ``add_spectral_entropy``).

    The 2-D view (``keras_grok.measures.spectral.matrix_shape``): 2-D weights
    (``Dense`` kernels, ``Embedding`` tables) as they are; 4-D and higher
    (``Conv2D``/``Conv3D`` kernels) as ``(prod(shape[:-1]), filters)``; 3-D weights
    split where the view has the larger rank ``min(m, n)`` (later split on ties):
    an ``EinsumDense`` query/key/value kernel ``(d_model, heads, head_dim)``
    becomes ``(d_model, heads * head_dim)``, the attention output kernel
    ``(heads, head_dim, d_model)`` becomes ``(heads * head_dim, d_model)`` and a
    ``Conv1D`` kernel ``(width, in, filters)`` becomes ``(width * in, filters)``
    whenever ``filters > width``. ``split`` fixes the view instead.

    Gradients are finite for zero, rank-deficient and repeated-singular-value
    matrices on every backend: the gradient ``U diag(dH/ds) V^T``, with
    ``dH/ds_i = -(log p_i + H) / sum(s)`` and 0 for zero singular values, is
    formed from one decomposition taken outside autodiff (see
    ``keras_grok.measures.spectral.spectral_entropy``; singular values at
    float32 rounding-noise level count as zero).

    On JAX's CPU backend the first call caps OpenBLAS (behind JAX's CPU
    ``eigh`` and ``svd``) at one thread, as ``keras-grok run`` does with
    ``OPENBLAS_NUM_THREADS=1``, unless that variable is set; see
    ``keras_grok.regularizers.lapack_threads`` (``restore_lapack_threads()``
    undoes it).

    Args:
        strength: the factor on the entropy, >= 0. Defaults to `0.1`.
        split: if set, view the weight as ``(prod(shape[:split]),
            prod(shape[split:]))`` (e.g. ``-1`` for any conv kernel).
            Defaults to `None` (the view above).
        decomposition: ``"svd"`` (float32 SVD), ``"gram"`` (float64
            eigendecomposition of the smaller Gram matrix) or ``"auto"`` (the
            faster of the two for the backend, measured on a CPU; see
            ``keras_grok.measures.spectral.DECOMPOSITIONS``). Same value and
            gradient to ~1e-6. Defaults to `"auto"`.

    Example:
    ```python
    layer = keras.layers.Dense(
        64, kernel_regularizer=keras_grok.regularizers.SpectralEntropy(0.1)
    )
    ```
    """

    def __init__(
        self,
        strength: float = 0.1,
        split: int | None = None,
        decomposition: str = "auto",
    ):
        self.strength = validate_float_arg(strength, "strength", maximum=FLOAT32_MAX)
        self.split = _validated_split(split)
        self.decomposition = validate_choice_arg(
            decomposition, "decomposition", DECOMPOSITIONS
        )

    def __call__(self, x):
        limit_on_first_use()  # JAX on a CPU: one OpenBLAS thread (see module)
        x = _as_tensor(x)
        if len(x.shape) < 2:
            raise ValueError(
                "SpectralEntropy applies to weights of at least 2 axes (kernels, "
                f"embedding tables). Received a weight of shape {tuple(x.shape)}."
            )
        # Half-precision weights (mixed precision keeps float32 variables, but a
        # bfloat16 model has bfloat16 ones): decompose in float32, as torch has
        # no half-precision SVD on the CPU.
        wide = (
            x
            if keras.backend.standardize_dtype(x.dtype) not in ("float16", "bfloat16")
            else keras.ops.cast(x, "float32")
        )
        entropy = spectral_entropy(wide, self.split, self.decomposition)
        return keras.ops.cast(self.strength * entropy, x.dtype)

    def get_config(self) -> dict:
        return {
            "strength": self.strength,
            "split": self.split,
            "decomposition": self.decomposition,
        }


def _as_tensor(x):
    # TensorFlow cannot convert a NumPy array of ml_dtypes' bfloat16 directly
    # ("object __array__ method not producing an array"): go through float32.
    if isinstance(x, np.ndarray) and x.dtype.name == "bfloat16":
        return keras.ops.convert_to_tensor(x.astype(np.float32), dtype="bfloat16")
    return keras.ops.convert_to_tensor(x)


def add_spectral_entropy(
    model: keras.Model, strength: float = 0.1, decomposition: str = "auto"
) -> int:
    """Adds ``strength * mean over weight matrices of H(W)`` to a model's loss.

    Paper B's model-level form (DeMoss et al., arXiv 2412.09810): one strength
    times the mean spectral entropy over all weight matrices (every trainable
    weight with at least 2 axes: kernels and embedding tables; not biases or
    norm scales). With N matrices, each gets ``SpectralEntropy(strength / N)``,
    whose sum is exactly that mean times ``strength``. Conv kernels get the
    ``(prod(shape[:-1]), filters)`` view.

    The regularizers are set on the variables (so training sees them) and on the
    owning layers' ``kernel_regularizer`` / ``embeddings_regularizer`` attributes
    (so ``model.save`` keeps them and ``keras.models.load_model`` restores them).
    Call it on a built model before its first ``fit`` (a traced train step does
    not see later changes).

    Args:
        model: a built model.
        strength: the factor on the mean entropy, >= 0. Defaults to `0.1`.
        decomposition: how each matrix's spectrum is found (see
            ``SpectralEntropy``). Defaults to `"auto"`.

    Returns:
        N, the number of matrices regularized.

    Raises:
        ValueError: ``strength`` is negative or not a finite number, the model
            is not built, has no weight matrix, or a matrix already has a
            regularizer.

    Example:
    ```python
    model = keras_grok.models.modular_mlp(97)
    keras_grok.regularizers.add_spectral_entropy(model, 0.1)
    model.compile(...)
    ```
    """
    strength = validate_float_arg(strength, "strength", maximum=FLOAT32_MAX)
    decomposition = validate_choice_arg(decomposition, "decomposition", DECOMPOSITIONS)
    if not isinstance(model, keras.Model):
        raise TypeError(
            "model must be a keras.Model. "
            f"Received: model of type {type(model).__name__}"
        )
    if not model.built:
        raise ValueError("add_spectral_entropy needs a built model; build it first.")
    matrices = weight_matrices(model)
    if not matrices:
        raise ValueError("The model has no weight matrix (trainable, >= 2 axes).")
    taken = [v.path for v in matrices if v.regularizer is not None]
    if taken:
        raise ValueError(
            f"These weights already have a regularizer: {', '.join(taken)}. "
            "add_spectral_entropy does not combine regularizers."
        )
    owners = _owning_layers(model)
    for variable in matrices:
        layer, attribute = owners.get(id(variable), (None, None))
        conv = isinstance(layer, _CONV_LAYERS)
        regularizer = SpectralEntropy(
            strength / len(matrices), -1 if conv else None, decomposition
        )
        variable.regularizer = regularizer
        if layer is not None:
            setattr(layer, f"{attribute}_regularizer", regularizer)
    return len(matrices)


def _validated_split(split) -> int | None:
    """``split`` as a Python int, or None; ValueError naming it otherwise."""
    if split is None:
        return None
    whole = isinstance(split, (int, np.integer)) or (
        isinstance(split, float) and split.is_integer()
    )
    if isinstance(split, bool) or not whole:
        raise ValueError(f"split must be an integer or None. Received: split={split!r}")
    if split == 0:  # no weight has axes before its first
        raise ValueError(
            f"split must leave axes on both sides (e.g. -1). Received: split={split!r}"
        )
    return int(split)


_REGULARIZED_ATTRIBUTES = ("kernel", "embeddings", "depthwise_kernel")
_CONV_LAYERS = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)


def _owning_layers(model: keras.Model) -> dict[int, tuple[keras.Layer, str]]:
    """Maps ``id(variable)`` to the layer and attribute holding it (e.g. kernel)."""
    owners = {}
    # `_flatten_layers` is how Keras itself walks nested layers (e.g. the
    # EinsumDense layers inside MultiHeadAttention).
    for layer in model._flatten_layers(include_self=False):
        for attribute in _REGULARIZED_ATTRIBUTES:
            if not hasattr(layer, f"{attribute}_regularizer"):
                continue
            variable = getattr(layer, attribute, None)
            if isinstance(variable, keras.Variable):
                owners.setdefault(id(variable), (layer, attribute))
    return owners
