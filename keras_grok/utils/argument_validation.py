"""Argument checks shared by every public class and function of keras-grok.

One validator per job, in the style of Keras' ``validate_float_arg``: each raises
``ValueError`` with the argument's name and the received value, so a user sees
what to change ("... Received: strength=-1").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


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


def native_array(value):
    """``value`` ready for a backend: a nested list or tuple as a NumPy array, and
    a NumPy array of the other byte order (``'>f8'``, as read from FITS or HDF5
    files) in this machine's, which JAX requires; anything else as it is."""
    if isinstance(value, (list, tuple)):
        value = np.asarray(value)
    if isinstance(value, np.ndarray) and not value.dtype.isnative:
        value = value.astype(value.dtype.newbyteorder("="))
    return value


_LOW_PRECISION_FLOATS = ("bfloat16", "float8_e4m3fn", "float8_e5m2")
"""ml_dtypes' float dtypes (a bfloat16 tensor as NumPy): floats NumPy does not know."""


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
    if array.dtype.name in _LOW_PRECISION_FLOATS:
        array = array.astype(np.float32)  # ml_dtypes' floats are not np.number
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
