"""Labelled data checked once: class labels, ``(x, y)`` pairs and class counts.

What every monitor and measure that reads labels refuses before it measures:
labels that are not class indices (fractional, negative, out of range, one-hot
rows where indices are wanted), pairs of different lengths, non-finite inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from keras_grok.utils.argument_validation import validate_int_arg
from keras_grok.utils.tf_dataset import tf_dataset_as_pair


def validate_label_vector_shape(shape, name: str = "labels") -> None:
    """Refuses labels of ``shape`` that are not ``(n,)`` or ``(n, 1)`` class
    indices, naming one-hot rows, the usual mistake."""
    shape = tuple(shape)
    if len(shape) > 1 and any(d != 1 for d in shape[1:]):
        raise ValueError(
            f"{name} must be (n,) integer class indices (take the argmax of one-hot "
            f"rows). Received: {name} of shape {shape}"
        )


MAX_CLASS_INDEX = int(np.iinfo(np.int32).max)
"""The largest class index: the measures hold labels as int32."""


def validate_class_labels(
    labels, name: str, num_classes: int | None = None
) -> np.ndarray:
    """Returns ``labels`` as an int64 NumPy array of class indices.

    Integer dtypes, or floats that are whole numbers (as Keras passes integer
    labels to a loss), are accepted.

    Args:
        labels: ``(N,)`` (or any shape of) class indices.
        name: the argument's name, for the message.
        num_classes: if given, labels must lie in ``[0, num_classes)``.
            Defaults to `None`.

    Raises:
        ValueError: labels that are not numbers, fractional, non-finite,
            negative, ``>= num_classes`` or beyond int32 (``MAX_CLASS_INDEX``).
    """
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer):
        numeric = np.issubdtype(labels.dtype, np.number) and not np.issubdtype(
            labels.dtype, np.complexfloating
        )
        if (
            not numeric
            or not np.all(np.isfinite(labels))
            or np.any(labels != np.round(labels))
        ):
            raise ValueError(
                f"{name} must be integer class indices (or one-hot rows). "
                f"Received: {labels.dtype} values such as "
                f"{labels.reshape(-1)[:3].tolist()}"
            )
    if labels.size and np.abs(labels).max() > MAX_CLASS_INDEX:
        # Measures index classes in int32: a larger label would wrap around.
        raise ValueError(
            f"{name} must be class indices below {MAX_CLASS_INDEX + 1}. Received: "
            f"a label of {labels.reshape(-1)[np.argmax(np.abs(labels))].item()!r}"
        )
    labels = labels.astype(np.int64)
    if labels.size and (
        labels.min() < 0 or (num_classes is not None and labels.max() >= num_classes)
    ):
        bound = f"lie in [0, {num_classes})" if num_classes is not None else "be >= 0"
        raise ValueError(
            f"{name} must {bound}. Received: labels in [{labels.min()}, {labels.max()}]"
        )
    return labels


@dataclass(frozen=True, eq=False)
class LabelledData:
    """An ``(x, y)`` pair checked once: inputs, targets as given, class indices.

    Attributes:
        x: ``(N, ...)`` inputs.
        y: ``(N,)`` integer labels or ``(N, K)`` one-hot rows, as given.
        labels: ``(N,)`` int32 class indices.
    """

    x: np.ndarray
    y: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.x)

    @property
    def key(self) -> tuple:
        """Identifies the arrays (their memory), so monitors can share a pass."""
        return (_identity(self.x), _identity(self.y))


def _identity(array: np.ndarray) -> tuple:
    return (
        array.__array_interface__["data"][0],
        array.shape,
        array.dtype.str,
        array.strides,
    )


def _check_target_rows(y: np.ndarray, name: str) -> None:
    # (N, K) targets are one-hot or soft rows (each in [0, 1], summing to 1);
    # anything else, such as a sequence model's per-token labels, is not one
    # label per example, and its argmax would be meaningless.
    if not np.issubdtype(y.dtype, np.number) or np.issubdtype(
        y.dtype, np.complexfloating
    ):
        return  # validate_class_labels names the dtype
    rows = np.asarray(y, np.float64)
    if (
        (rows.min() < 0)
        or (rows.max() > 1)
        or not np.allclose(rows.sum(axis=1), 1.0, atol=1e-2)
    ):
        raise ValueError(
            f"{name} labels of shape {y.shape} are neither (N,) class indices nor "
            "(N, K) one-hot (or soft) rows, which hold values in [0, 1] that sum "
            "to 1: the monitors measure one label per example (a sequence "
            "model's per-token labels are not supported). Received: values in "
            f"[{rows.min():g}, {rows.max():g}]"
        )


def _host_array(value, name: str) -> np.ndarray:
    # A NumPy array of ``value``; a tensor NumPy cannot read (torch's bfloat16)
    # as float32 values.
    try:
        return np.asarray(value)
    except TypeError:
        import keras  # only for tensors, which need Keras anyway

        try:
            return np.asarray(
                keras.ops.convert_to_numpy(keras.ops.cast(value, "float32"))
            )
        except Exception:
            raise ValueError(
                f"{name} must be an array or tensor NumPy can read. Received: "
                f"{type(value).__name__} of dtype {getattr(value, 'dtype', None)}"
            ) from None


def validate_labelled_pair(
    data, name: str, num_classes: int | None = None
) -> LabelledData:
    """Checks an ``(x, y)`` pair of a labelled data set and returns it as arrays.

    ``y`` holds integer class indices (any integer dtype, or floats that are whole
    numbers), ``(N, 1)`` columns of them, or ``(N, K)`` one-hot rows.

    Args:
        data: the pair.
        name: the argument's name, for messages (e.g. ``"train_data"``).
        num_classes: if given, labels must lie in ``[0, num_classes)``.
            Defaults to `None`.

    Raises:
        ValueError: not a pair, empty, lengths that differ, inputs that are not
            finite, labels that are not class indices, or labels out of range.
    """
    data = tf_dataset_as_pair(data, name)
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ValueError(
            f"{name} must be an (x, y) pair of arrays or a finite tf.data.Dataset "
            f"of (x, y). Received: {type(data).__name__}"
        )
    for part, value in zip(("x", "y"), data):
        if isinstance(value, dict) or (  # Keras' multi-input forms
            isinstance(value, (tuple, list))
            and value
            and all(hasattr(v, "shape") and len(v.shape) for v in value)
        ):
            what = (
                f"dict with keys {sorted(value)}"
                if isinstance(value, dict)
                else (f"{type(value).__name__} of {len(value)} arrays")
            )
            raise ValueError(
                f"{name}'s {part} must be one array: the monitors measure models of "
                f"one input and one output. Received: a {what}"
            )
    x, y = (_host_array(v, f"{name}'s {part}") for v, part in zip(data, "xy"))
    if x.ndim == 0 or y.ndim == 0 or len(x) != len(y) or len(x) == 0:
        raise ValueError(
            f"{name} must hold as many labels as inputs, at least one. Received: "
            f"{len(x) if x.ndim else 0} inputs, {len(y) if y.ndim else 0} labels"
        )
    if y.ndim == 2 and y.shape[1] > 1:
        _check_target_rows(y, name)
        labels = y.argmax(axis=1)
    elif y.ndim <= 2:
        labels = y.reshape(len(y))
    else:
        raise ValueError(
            f"{name} labels must be (N,) class indices or (N, K) one-hot rows. "
            f"Received shape {y.shape}"
        )
    labels = validate_class_labels(labels, f"{name} labels", num_classes)
    if np.issubdtype(x.dtype, np.inexact) and not np.isfinite(x).all():
        # A model's outputs on them would be NaN, read as a diverged run.
        bad = int(np.size(x) - np.isfinite(x).sum())
        raise ValueError(
            f"{name}'s x must hold finite numbers: it holds {bad} NaN or infinite "
            f"value(s), e.g. in row {int(np.argwhere(~np.isfinite(x))[0][0])}. "
            "Clean or drop those rows."
        )
    if np.issubdtype(y.dtype, np.unsignedinteger):
        y = y.astype(np.int64)  # torch has no uint64 (and few unsigned) tensors
    return LabelledData(x, y, labels.astype(np.int32))


def validate_num_classes(num_classes, data: dict[str, LabelledData]) -> int:
    """The number of classes: ``num_classes`` if it covers every label, else K.

    Args:
        num_classes: the argument, or None for one more than the largest label.
        data: the labelled sets by split (``{"train": ...}``, named
            ``train_data`` in messages).

    Raises:
        ValueError: ``num_classes`` is not an integer >= 1, a label is not
            below it, or ``data`` holds no labels.
    """
    if num_classes is not None:
        num_classes = validate_int_arg(num_classes, "num_classes")
    if not data or any(len(d.labels) == 0 for d in data.values()):
        raise ValueError(
            "data must hold labelled examples to count or check the classes by. "
            f"Received: data with splits {sorted(data or ())}"
        )
    largest = max(int(d.labels.max()) for d in data.values())
    if num_classes is None:
        return largest + 1
    for split, labelled in data.items():
        top = int(labelled.labels.max())
        if top >= num_classes:
            raise ValueError(
                f"{split}_data labels must lie in [0, {num_classes}) for "
                f"num_classes={num_classes}: pass num_classes >= {largest + 1}, or "
                f"None to count them. Received: labels in "
                f"[{int(labelled.labels.min())}, {top}]"
            )
    return num_classes
