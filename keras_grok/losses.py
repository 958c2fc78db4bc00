"""Losses of the papers' image experiments: squared error against one-hot targets.

Omnigrok (Liu et al., 2023) and paper A (Sakamoto & Sato, arXiv 2509.20829) train
their image models with the squared error between the outputs and one-hot targets,
summed over the batch and the classes (not averaged):

    L = sum_i sum_k (f_k(x_i) - onehot(y_i)_k)^2

Cross-entropy is Keras' own ``keras.losses.SparseCategoricalCrossentropy``.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import ops

from keras_grok.utils.argument_validation import native_array, validate_bool_arg
from keras_grok.utils.labelled_data import validate_class_labels


@keras.saving.register_keras_serializable(package="keras_grok")
def squared_error_one_hot(y_true, y_pred, sparse: bool = True):
    """Per-example squared error against one-hot targets, summed over classes.

    ``sum_k (y_pred[i, k] - onehot(y_true[i])[k])^2`` for each example i.

    Args:
        y_true: integer labels ``(batch,)`` or ``(batch, 1)`` if ``sparse``, else
            one-hot (or any target) rows ``(batch, K)``.
        y_pred: model outputs ``(batch, K)``.
        sparse: whether ``y_true`` holds integer labels. Defaults to `True`.

    Returns:
        A ``(batch,)`` tensor. With ``sparse``, an example whose label is not a
        class index of the outputs (negative, fractional or ``>= K``) gets NaN,
        so a wrong label column shows as a NaN loss instead of training against
        an all-zero target.

    Raises:
        ValueError: when called eagerly (outside a traced step, e.g. in a test or
            on NumPy arrays) with such labels, naming their range.
    """
    y_pred = ops.convert_to_tensor(native_array(y_pred))
    y_true = ops.convert_to_tensor(native_array(y_true))
    if len(y_pred.shape) != 2:
        raise ValueError(
            "y_pred must be (batch, K) outputs, one score per class. "
            f"Received: y_pred of shape {tuple(y_pred.shape)}"
        )
    if not sparse:
        if not _shapes_agree(tuple(y_true.shape), tuple(y_pred.shape)):
            raise ValueError(
                "y_true must have the shape of y_pred: (batch, K) target rows. "
                f"Received: y_true of shape {tuple(y_true.shape)}, y_pred of shape "
                f"{tuple(y_pred.shape)}"
            )
        targets = ops.cast(y_true, y_pred.dtype)
        return ops.sum(ops.square(y_pred - targets), axis=-1)
    if len(y_true.shape) >= 2 and y_true.shape[-1] not in (1, None):
        raise ValueError(
            "y_true must be (batch,) integer labels with sparse=True; for one-hot "
            "target rows use SumSquaredError(sparse=False). Received: y_true of "
            f"shape {tuple(y_true.shape)}"
        )
    classes = ops.shape(y_pred)[-1]
    batch = (tuple(y_true.shape) or (1,))[0]
    if not _shapes_agree((batch,), tuple(y_pred.shape)[:1]):
        raise ValueError(
            "y_true must hold one label per row of y_pred. Received: y_true of "
            f"shape {tuple(y_true.shape)}, y_pred of shape {tuple(y_pred.shape)}"
        )
    raw = ops.reshape(y_true, (-1,))
    concrete = _concrete_numpy(raw)
    if concrete is not None:
        validate_class_labels(concrete, "y_true", int(classes))
    as_float = ops.cast(raw, "float32")
    valid = (as_float >= 0) & (as_float < classes) & (as_float == ops.round(as_float))
    labels = ops.where(valid, ops.cast(raw, "int32"), 0)
    targets = ops.one_hot(labels, classes, dtype=y_pred.dtype)
    errors = ops.sum(ops.square(y_pred - targets), axis=-1)
    return ops.where(valid, errors, ops.cast(float("nan"), errors.dtype))


def _shapes_agree(a: tuple, b: tuple) -> bool:
    """Equal shapes, where an unknown (None) dimension agrees with any."""
    return len(a) == len(b) and all(
        i is None or j is None or i == j for i, j in zip(a, b, strict=True)
    )


def _concrete_numpy(x):
    """``x`` as a NumPy array if it holds values now, None inside a traced step."""
    if keras.backend.backend() == "jax":
        import jax  # jax is the backend here, so it is already imported

        if isinstance(x, jax.core.Tracer):
            return None
    elif keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if not tf.executing_eagerly():
            return None
    elif keras.backend.backend() == "torch" and x.device.type != "cpu":
        return None  # reading it would wait for the device at every step
    try:
        return ops.convert_to_numpy(x)
    except Exception:  # a symbolic tensor: torch.compile, a KerasTensor, ...
        return None


@keras.saving.register_keras_serializable(package="keras_grok")
class SumSquaredError(keras.losses.Loss):
    """Squared error against one-hot targets, summed over classes and the batch.

    The loss of Omnigrok's and paper A's image experiments (MLP with init scale
    alpha = 8, AdamW): ``L = sum_i sum_k (f_k(x_i) - onehot(y_i)_k)^2``. With the
    default ``reduction="sum"`` the gradient grows with the batch size, as in the
    papers; ``reduction="sum_over_batch_size"`` gives the per-example mean.

    Args:
        sparse: whether targets are integer labels (one-hot encoded here) rather
            than one-hot rows. Defaults to `True`.
        reduction: Keras loss reduction over the batch. Defaults to `"sum"`.
        name: the loss's name. Defaults to `"sum_squared_error"`.
        dtype: the loss computation's dtype. Defaults to `None`.

    Example:
    ```python
    model.compile(optimizer="adamw", loss=keras_grok.losses.SumSquaredError())
    model.fit(x_train, y_train_integer_labels)
    ```
    """

    def __init__(
        self,
        sparse: bool = True,
        reduction: str = "sum",
        name: str = "sum_squared_error",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.sparse = validate_bool_arg(sparse, "sparse")

    def call(self, y_true, y_pred):
        return squared_error_one_hot(y_true, y_pred, self.sparse)

    def get_config(self):
        return {**super().get_config(), "sparse": self.sparse}


def _single_loss(loss):
    # A one-output model may be compiled with its loss in a structure keyed by
    # the output (``{"logits": loss}`` or ``[loss]``): that loss is the model's.
    if isinstance(loss, dict) and len(loss) == 1:
        return next(iter(loss.values()))
    if isinstance(loss, (list, tuple)) and len(loss) == 1:
        return loss[0]
    return loss


def per_example_loss(loss) -> Callable | None:
    """A compiled model's loss as ``(y_true, y_pred) -> (batch,)`` values, unreduced.

    The one way keras-grok reads a model's loss: the monitors sum it over their
    data sets (so a set's loss is the mean over its examples, whatever the loss's
    own reduction: ``SumSquaredError`` gives the per-example squared error) and
    the complexity search averages it over its batch. Inputs are converted as
    ``keras.losses.Loss.__call__`` converts them (to the loss's dtype), so the
    values equal the loss's own before its reduction; extra axes are averaged.

    Args:
        loss: what ``model.compile`` received (``model.loss``): a
            ``keras.losses.Loss``, a loss function or its registered name.

    Returns:
        The function, or None when ``loss`` is None or is a structure of losses
        (dict or list: one per output), which keras-grok does not evaluate; a
        structure of one loss (a one-output model's ``{"logits": loss}``) is
        that loss. None too for a loss with ``ignore_class``, whose mean is
        over the rows it keeps.

    Raises:
        ValueError: a name Keras does not know.
    """
    loss = _single_loss(loss)
    if loss is None or isinstance(loss, (dict, list, tuple)):
        return None
    resolved = keras.losses.get(loss)
    if getattr(resolved, "ignore_class", None) is not None:
        return None  # its mean is over the rows it keeps: not a per-example sum
    if isinstance(resolved, keras.losses.Loss):
        dtype = resolved.dtype

        def values(y_true, y_pred):
            y_pred = ops.convert_to_tensor(y_pred, dtype=dtype)
            y_true = ops.convert_to_tensor(y_true, dtype=dtype)
            return _per_example(resolved.call(y_true, y_pred))

    else:

        def values(y_true, y_pred):
            y_pred = ops.convert_to_tensor(y_pred)
            y_true = ops.convert_to_tensor(y_true)
            return _per_example(resolved(y_true, y_pred))

    return values


_SPARSE_LOSSES = ("sparse_categorical_crossentropy", "squared_error_one_hot")


def is_sparse_loss(loss) -> bool:
    """Whether a compiled loss takes integer class indices rather than one-hot rows.

    True for ``keras.losses.SparseCategoricalCrossentropy`` and its function,
    and for ``SumSquaredError(sparse=True)`` and ``squared_error_one_hot`` (by
    name, as ``model.compile`` receives them); False for everything else,
    including None and structures of losses.
    """
    loss = _single_loss(loss)
    if loss is None or isinstance(loss, (dict, list, tuple)):
        return False
    if isinstance(loss, SumSquaredError):
        return loss.sparse
    if isinstance(loss, keras.losses.SparseCategoricalCrossentropy):
        return True
    if isinstance(loss, keras.losses.Loss):
        function = getattr(loss, "fn", None)
        return getattr(function, "__name__", None) in _SPARSE_LOSSES
    if isinstance(loss, str):
        return loss in _SPARSE_LOSSES or loss.endswith(">squared_error_one_hot")
    return getattr(loss, "__name__", None) in _SPARSE_LOSSES


def _per_example(values):
    values = ops.convert_to_tensor(values)
    if len(values.shape) > 1:
        values = ops.mean(ops.reshape(values, (ops.shape(values)[0], -1)), axis=1)
    return values
