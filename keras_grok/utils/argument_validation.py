"""Argument checks shared by every public class and function of keras-grok.

One validator per job, in the style of Keras' ``validate_float_arg``: each raises
``ValueError`` with the argument's name and the received value, so a user sees
what to change ("... Received: strength=-1").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from keras_grok.utils.tf_dataset import tf_dataset_as_pair


def validate_float_arg(
    value,
    name: str,
    *,
    minimum: float = 0.0,
    allow_minimum: bool = True,
    maximum: float | None = None,
    allow_maximum: bool = True,
) -> float:
    """Returns ``value`` as a Python float if it is finite and in range.

    Args:
        value: the argument.
        name: the argument's name, for the message.
        minimum: the smallest allowed value. Defaults to `0.0`.
        allow_minimum: whether ``minimum`` itself is allowed. Defaults to `True`.
        maximum: the largest allowed value, or None. Defaults to `None`.
        allow_maximum: whether ``maximum`` itself is allowed. Defaults to `True`.

    Raises:
        ValueError: not a real number, not finite, or out of range.
    """
    if isinstance(value, (bool, str, bytes)):  # a number, not its spelling
        number = math.nan
    else:
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
    low_ok = number >= minimum if allow_minimum else number > minimum
    high_ok = maximum is None or (
        number <= maximum if allow_maximum else number < maximum
    )
    if not (math.isfinite(number) and low_ok and high_ok):
        bound = ">=" if allow_minimum else ">"
        extra = ""
        if maximum is not None:
            extra = f" and {'<=' if allow_maximum else '<'} {maximum:g}"
        raise ValueError(
            f"{name} must be a finite number {bound} {minimum:g}{extra}. "
            f"Received: {name}={value!r}"
        )
    return number


FLOAT32_MAX = float(np.finfo(np.float32).max)
"""The largest float32: a strength above it becomes inf where weights are float32."""

MAX_SEED = 2**32 - 1


def validate_seed(value, name: str = "seed") -> int | None:
    """Returns ``value`` if it is None or an integer seed in ``[0, 2**32 - 1]``.

    Raises:
        ValueError: anything else (JAX's and NumPy's generators take 32 bits).
    """
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer))
        or not 0 <= int(value) <= MAX_SEED
    ):
        raise ValueError(
            f"{name} must be None or an integer in [0, {MAX_SEED}]. "
            f"Received: {name}={value!r}"
        )
    return int(value)


def validate_int_arg(value, name: str, *, minimum: int = 1) -> int:
    """Returns ``value`` as a Python int if it is an integer >= ``minimum``.

    Raises:
        ValueError: not an integer, or below ``minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        is_whole = isinstance(value, (float, np.floating)) and float(value).is_integer()
        if not is_whole:
            raise ValueError(
                f"{name} must be an integer >= {minimum}. Received: {name}={value!r}"
            )
    if int(value) < minimum:
        raise ValueError(
            f"{name} must be an integer >= {minimum}. Received: {name}={value!r}"
        )
    return int(value)


def validate_bool_arg(value, name: str) -> bool:
    """Returns ``value`` as a Python bool if it is one (NumPy's bool too).

    Raises:
        ValueError: anything else: a string such as ``"false"`` is truthy, so
            it would silently mean True.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False. Received: {name}={value!r}")
    return bool(value)


def validate_string_arg(value, name: str) -> str:
    """Returns ``value`` if it is a non-empty string (a name, such as a layer's).

    Raises:
        ValueError: not a string, or empty.
    """
    if not isinstance(value, str) or not value:
        raise ValueError(
            f"{name} must be a non-empty string. Received: {name}={value!r}"
        )
    return value


def validate_float_dtype(value, name: str):
    """Returns ``value`` if it is a floating-point array, tensor or variable.

    Spectra, norms and entropies of integer weights are meaningless (an int32
    spectral entropy comes out as 0, an int8 squared norm overflows), so measures
    and regularizers refuse them.

    Args:
        value: anything with a ``dtype`` (NumPy array, backend tensor,
            ``keras.Variable``).
        name: the argument's name, for the message.

    Raises:
        ValueError: the dtype is not a floating-point one, e.g. "weights must
            have a floating-point dtype (cast with keras.ops.cast(x, 'float32')).
            Received: weights of dtype int32".
    """
    import keras  # here, not at the top: the command line imports this module
    # before it chooses Keras' backend.

    dtype = keras.backend.standardize_dtype(getattr(value, "dtype", type(value)))
    if not keras.backend.is_float_dtype(dtype):
        raise ValueError(
            f"{name} must have a floating-point dtype (cast with "
            f"keras.ops.cast(x, 'float32')). Received: {name} of dtype {dtype}"
        )
    return value


def validate_label_vector_shape(shape, name: str = "labels") -> None:
    """Refuses labels of ``shape`` that are not ``(n,)`` or ``(n, 1)`` class
    indices, naming one-hot rows, the usual mistake."""
    shape = tuple(shape)
    if len(shape) > 1 and any(d != 1 for d in shape[1:]):
        raise ValueError(
            f"{name} must be (n,) integer class indices (take the argmax of one-hot "
            f"rows). Received: {name} of shape {shape}"
        )


def native_array(value):
    """``value`` ready for a backend: a nested list or tuple as a NumPy array, and
    a NumPy array of the other byte order (``'>f8'``, as read from FITS or HDF5
    files) in this machine's, which JAX requires; anything else as it is."""
    if isinstance(value, (list, tuple)):
        value = np.asarray(value)
    if isinstance(value, np.ndarray) and not value.dtype.isnative:
        value = value.astype(value.dtype.newbyteorder("="))
    return value


def validate_nonnegative_values(values, name: str) -> np.ndarray:
    """Returns ``values`` as a non-empty NumPy array of finite numbers >= 0.

    Args:
        values: an array, tensor or sequence.
        name: the argument's name, for the message.

    Raises:
        ValueError: empty, not numeric, or holding a negative, NaN or infinite
            value (the message shows the smallest one).
    """
    array = np.asarray(values)
    if array.size == 0:
        raise ValueError(
            f"{name} must hold at least one value. Received: {name} of shape "
            f"{array.shape}"
        )
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(
        array.dtype, np.complexfloating
    ):
        raise ValueError(
            f"{name} must hold real numbers. Received: {name} of dtype {array.dtype}"
        )
    bad = ~np.isfinite(array) | (array < 0)
    if np.any(bad):
        raise ValueError(
            f"{name} must hold finite numbers >= 0. Received: {name} with "
            f"{int(bad.sum())} such value(s), e.g. {array[bad].flat[0].item()!r}"
        )
    return array


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


def validate_choice_arg(value, name: str, allowed) -> object:
    """Returns ``value`` if it is one of ``allowed``.

    Args:
        value: the argument.
        name: the argument's (or config key's) name, for the message.
        allowed: the allowed values.

    Raises:
        ValueError: naming the allowed values and the received one, e.g.
            "mode must be one of global, per_matrix. Received: mode='x'".
    """
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(
            f"{name} must be one of {', '.join(map(str, allowed))}. "
            f"Received: {name}={value!r}"
        )
    return value


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
    x, y = (np.asarray(v) for v in data)
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


@dataclass(frozen=True)
class Range:
    """The numbers an argument or config key may hold: a declarative constraint.

    One ``Range`` serves both a constructor (``validate(value, name)``) and the
    recipe configs that set the same value (``keras_grok.experiments.
    config_checks``), so a value is checked by one rule, with one message.

    Args:
        kind: ``int`` or ``float`` (a float must be finite).
        minimum: the smallest value. Defaults to `0`.
        maximum: the largest value, or None. Defaults to `None`.
        open_minimum: whether ``minimum`` itself is refused. Defaults to `False`.
        open_maximum: whether ``maximum`` itself is refused. Defaults to `False`.

    Example:
    ```python
    ACCURACY_LEVEL.validate(0.99, "threshold")  # 0.99
    ```
    """

    kind: type
    minimum: float = 0
    maximum: float | None = None
    open_minimum: bool = False
    open_maximum: bool = False

    def validate(self, value, name: str):
        """Returns ``value`` (an int or float) if it lies in the range.

        Raises:
            ValueError: naming ``name`` and the value, if it does not.
        """
        if self.kind is int:
            low = int(self.minimum) + int(self.open_minimum)
            number = validate_int_arg(value, name, minimum=low)
            high = self.maximum
            if high is not None and self.open_maximum:
                high = math.ceil(high) - 1
            if high is not None and number > high:
                raise ValueError(
                    f"{name} must be an integer <= {high}. Received: {name}={value!r}"
                )
        else:
            number = validate_float_arg(
                value,
                name,
                minimum=self.minimum,
                allow_minimum=not self.open_minimum,
                maximum=self.maximum,
                allow_maximum=not self.open_maximum,
            )
        return number


ACCURACY_LEVEL = Range(float, maximum=1.0, open_minimum=True)
"""An accuracy that counts as reached (memorized, generalized): in ``(0, 1]``."""

PROBABILITY = Range(float, maximum=1.0)
"""A probability in ``[0, 1]`` (e.g. ``ForecastMonitor``'s ``stop_below``)."""


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
