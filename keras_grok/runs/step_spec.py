"""The steps a measurement asks for, from a command line or a Python value.

``keras-grok measure RUN --steps 2000:2040:10`` and ``measure_run(..., steps=...)``
take the same forms: ``"START:STOP:STRIDE"`` (STOP included), ``"A,B,C"``, ``"N"``,
an int or a sequence of ints. Imports no Keras.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MAX_REPLAY_STEPS = 100_000
"""Most steps one ``measure`` request may list (each is a measurement pass)."""


def parse_steps(spec) -> tuple[int, ...]:
    """Steps from ``"START:STOP:STRIDE"`` (STOP included), ``"A,B,C"`` or ``"N"``.

    An int ``N`` or a sequence of ints (a list, tuple, range or NumPy array;
    whole floats such as ``10.0`` count as ints) is taken as it is. The steps
    come back sorted, each once.

    Raises:
        TypeError: ``spec`` is neither a string, an int nor a sequence of ints.
        ValueError: a string of none of these forms, no step at all, a step < 1,
            a fractional step, or more than ``MAX_REPLAY_STEPS`` steps.
    """
    return as_steps(spec, MAX_REPLAY_STEPS)


def as_steps(spec, most: int | None) -> tuple[int, ...]:
    """``parse_steps`` with at most ``most`` steps (None: no limit)."""
    if isinstance(spec, str):
        steps = _parse_step_string(spec)
    elif _is_number(spec):
        steps = [spec]
    elif isinstance(spec, (Sequence, np.ndarray)) and not isinstance(
        spec, (bytes, bytearray)
    ):
        steps = list(np.ravel(spec)) if isinstance(spec, np.ndarray) else spec
    else:
        steps = None
    if steps is None or not (
        isinstance(steps, range) or all(_is_number(v) for v in steps)
    ):
        raise TypeError(
            "steps must be a string (START:STOP:STRIDE, A,B,C or N), an int or a "
            f"sequence of ints. Received: steps={_shown(spec)}"
        )
    if not isinstance(steps, range):
        if not all(float(v).is_integer() for v in steps):
            raise ValueError(
                f"steps must be whole numbers. Received: steps={_shown(spec)}"
            )
        steps = [int(v) for v in steps]
    if most is not None and len(steps) > most:  # a range is counted, not listed
        raise ValueError(
            f"steps lists {len(steps):,} steps, more than the {most:,} one request "
            f"may measure; use a larger STRIDE. Received: steps={_shown(spec)}"
        )
    if not len(steps):
        raise ValueError(
            f"steps must list at least one step. Received: steps={_shown(spec)}"
        )
    steps = tuple(sorted(set(steps)))
    if steps[0] < 1:
        raise ValueError(f"steps must be >= 1. Received: steps={_shown(spec)}")
    return steps


def _is_number(value) -> bool:
    # An int or float of Python or NumPy (not a bool, a string or None).
    return isinstance(value, (int, float, np.integer, np.floating)) and not (
        isinstance(value, (bool, np.bool_))
    )


def _parse_step_string(spec: str):
    # The steps of a string spec: a range (not yet listed) or a list.
    try:
        if ":" in spec:
            start, stop, *stride = (int(v) for v in spec.split(":"))
            if len(stride) > 1 or (stride and stride[0] < 1) or stop < start:
                raise ValueError
            return range(start, stop + 1, stride[0] if stride else 1)
        if not spec.strip():
            return []  # no step: refused below
        return [int(v) for v in spec.split(",")]  # an empty item is refused
    except ValueError:
        raise ValueError(
            "steps must be START:STOP:STRIDE (STOP included), a list A,B,C or one "
            f"step N. Received: steps={spec!r}"
        ) from None


def _shown(spec, most: int = 10) -> str:
    # ``spec`` for a message: a long sequence is cut after ``most`` items.
    if isinstance(spec, (str, range)) or not hasattr(spec, "__len__"):
        return repr(spec)
    items = np.ravel(spec).tolist() if isinstance(spec, np.ndarray) else list(spec)
    if len(items) <= most:
        return repr(items if not isinstance(spec, tuple) else tuple(items))
    shown = ", ".join(repr(v) for v in items[:most])
    return f"[{shown}, ...] ({len(items):,} items)"
