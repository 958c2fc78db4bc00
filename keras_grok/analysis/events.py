"""Events of a run read off its metrics: the first step a metric crosses a level.

``late_phase_events`` reads the late phase's events (memorized, collapse,
complexity peak and halving, information-plane turn, circuit formation and
cleanup, generalized) off a run's ``metrics.csv`` rows, with the definitions in
its docstring; ``event_order`` orders them by step.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping

import numpy as np

from keras_grok.utils.argument_validation import (
    ACCURACY_LEVEL,
    validate_float_arg,
    validate_string_arg,
)


def _is_real(value) -> bool:
    # A real number (Python's or NumPy's), not a bool or a string.
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def in_step_order(rows) -> list[dict]:
    """``rows`` sorted by their ``"step"`` (a list; ``rows`` is left as it is).

    Raises:
        TypeError: ``rows`` is not a list (or other iterable) of rows.
        ValueError: a row that is not a dict with a finite number ``"step"``,
            or two rows of one step.
    """
    if isinstance(rows, (str, bytes, Mapping)) or not isinstance(rows, Iterable):
        raise TypeError(
            "rows must be a list of metrics rows (dicts with a 'step'). "
            f"Received: rows of type {type(rows).__name__}"
        )
    rows = list(rows)
    for index, row in enumerate(rows):
        step = row.get("step") if isinstance(row, Mapping) else None
        if not (_is_real(step) and math.isfinite(step)):
            raise ValueError(
                "rows must be dicts, each with a finite number 'step'. "
                f"Received: rows[{index}]={row!r}"
            )
    if any(b["step"] <= a["step"] for a, b in zip(rows, rows[1:])):
        rows = sorted(rows, key=lambda row: row["step"])
        for a, b in zip(rows, rows[1:]):
            if a["step"] == b["step"]:
                raise ValueError(
                    "rows must hold each step once (an event's step would "
                    f"depend on their order). Received: two rows of step {a['step']}"
                )
    return rows


def _level(value, name: str) -> float:
    # A finite number, of any sign.
    try:
        return validate_float_arg(value, name, minimum=-math.inf)
    except ValueError:
        raise ValueError(
            f"{name} must be a finite number. Received: {name}={value!r}"
        ) from None


def _check_key(rows, key: str, missing_ok: bool) -> None:
    # A key no row holds is a misspelt name (or a lens not measured): an event
    # of None would read as "never happened", so it is refused unless missing_ok.
    validate_string_arg(key, "key")
    rows = in_step_order(rows)
    if not missing_ok and rows and not any(key in row for row in rows):
        held = sorted({k for row in rows for k in row} - {"step"})
        raise ValueError(
            f"key must be a metric the rows hold: {', '.join(held) or 'none'}. "
            f"Received: key={key!r}"
        )


def first_step_at(
    rows: list[dict], key: str, threshold: float, *, missing_ok: bool = False
) -> int | None:
    """The step of the first row whose ``key`` is >= ``threshold``, or None.

    Rows are taken in step order (sorted by ``"step"`` if they are not);
    missing and NaN values never count.

    Args:
        rows: metrics rows, each with a ``"step"``.
        key: the metric.
        threshold: the level it must reach.
        missing_ok: return None when no row holds ``key`` (a lens that was not
            measured, such as a test accuracy without test data) instead of
            refusing it as a misspelt name. Defaults to `False`.

    Raises:
        ValueError: a row without a number ``"step"``, two rows of one step, a
            ``key`` that no row holds (unless ``missing_ok``), or a
            ``threshold`` that is not a finite number.
    """
    _check_key(rows, key, missing_ok)
    threshold = _level(threshold, "threshold")
    for row in in_step_order(rows):
        value = row.get(key, math.nan)
        if _is_real(value) and value >= threshold:
            return int(row["step"])
    return None


def _series(rows: list[dict], key: str, after: int = 0) -> list[tuple[int, float]]:
    # (step, value) of the rows at or after `after` with a finite `key`, in step
    # order.
    validate_string_arg(key, "key")
    return [
        (int(r["step"]), float(r[key]))
        for r in in_step_order(rows)
        if r["step"] >= after and _is_real(r.get(key)) and math.isfinite(r[key])
    ]


def first_step_below(
    rows: list[dict],
    key: str,
    level: float,
    after: int = 0,
    *,
    missing_ok: bool = False,
) -> int | None:
    """The step of the first row at or after ``after`` whose ``key`` is <= ``level``.

    Missing and NaN values never count; None if no row qualifies.
    ``missing_ok`` as in ``first_step_at``.

    Raises:
        ValueError: as ``first_step_at``.
    """
    _check_key(rows, key, missing_ok)
    level = _level(level, "level")
    after = _level(after, "after")
    return next((s for s, v in _series(rows, key, after) if v <= level), None)


def peak_step(
    rows: list[dict], key: str, after: int = 0, *, missing_ok: bool = False
) -> int | None:
    """The step of the largest ``key`` at or after ``after`` (the first if tied).

    ``missing_ok`` as in ``first_step_at``.

    Raises:
        ValueError: as ``first_step_at``.
    """
    _check_key(rows, key, missing_ok)
    after = _level(after, "after")
    series = _series(rows, key, after)
    return max(series, key=lambda sv: (sv[1], -sv[0]))[0] if series else None


def value_at(
    rows: list[dict], key: str, step: int | None, *, missing_ok: bool = False
) -> float | None:
    """``key`` at the first row at or after ``step`` where it is finite, or None.

    ``missing_ok`` as in ``first_step_at``.

    Raises:
        ValueError: as ``first_step_at``.
    """
    _check_key(rows, key, missing_ok)
    if step is None:
        return None
    step = _level(step, "step")
    series = _series(rows, key, step)
    return series[0][1] if series else None


LATE_PHASE_EVENTS = (
    "memorized",
    "circuit_formation",
    "complexity_peak",
    "information_turn",
    "collapse",
    "circuit_cleanup",
    "complexity_halved",
    "generalized",
)
"""The events of ``late_phase_events``, in the order the papers expect them."""


def late_phase_events(
    rows: list[dict], threshold: float = 0.99, test_threshold: float | None = None
) -> dict[str, int | None]:
    """The steps of the late phase's events in a run's metrics rows.

    Each event is read off ``metrics.csv`` rows (``RunFolder.read_metrics()``)
    at the measured steps; an event whose metric was not measured, or whose
    condition is never met, is None. With ``M`` the memorized step:

    - ``memorized``: the first step with ``train_accuracy >= threshold``;
    - ``generalized``: the first step with ``test_accuracy >= test_threshold``
      (``threshold`` when None);
    - ``collapse`` (paper A, Sakamoto & Sato, arXiv 2509.20829): the first step
      after ``M`` at which ``test_rnc1`` is <= half its post-fit plateau, the
      plateau being the median of ``test_rnc1`` over the steps in ``[M, 2M]``;
    - ``complexity_peak`` (paper B, DeMoss et al., arXiv 2412.09810): the step
      of the largest ``complexity_bits``; ``complexity_halved``: the first step
      after the peak with at most half the peak's bits;
    - ``information_turn`` (paper A): the first step at which ``test_nhsic_zx``
      (nHSIC(Z;X)) lies at least 5% below its largest value so far: I(Z;X) has
      turned to falling (a compression phase has begun);
    - ``circuit_formation`` (Nanda et al., arXiv 2301.05217): the first step
      after ``M`` at which ``train_excluded_loss`` is at least twice its lowest
      value since ``M``: it has turned up, removing the key frequencies now
      hurts the fit of the training pairs;
    - ``circuit_cleanup`` (Nanda et al.): the first step after ``M`` at which
      ``train_restricted_loss`` is <= half its value at ``M``.

    Args:
        rows: metrics rows, each with a ``"step"`` (sorted by step if they
            are not).
        threshold: train accuracy that counts as memorized. Defaults to `0.99`.
        test_threshold: test accuracy that counts as generalized; None takes
            ``threshold``. Defaults to `None`.

    Returns:
        ``{event: step or None}`` for every name in ``LATE_PHASE_EVENTS``.

    Raises:
        ValueError: a threshold outside (0, 1], a row without a number
            ``"step"``, or two rows of one step.
    """
    threshold = ACCURACY_LEVEL.validate(threshold, "threshold")
    test_threshold = (
        threshold
        if test_threshold is None
        else ACCURACY_LEVEL.validate(test_threshold, "test_threshold")
    )
    rows = in_step_order(rows)
    memorized = first_step_at(rows, "train_accuracy", threshold, missing_ok=True)
    events: dict[str, int | None] = dict.fromkeys(LATE_PHASE_EVENTS)
    events["memorized"] = memorized
    events["generalized"] = first_step_at(
        rows, "test_accuracy", test_threshold, missing_ok=True
    )
    peak = peak_step(rows, "complexity_bits", missing_ok=True)
    if peak is not None:
        events["complexity_peak"] = peak
        bits = value_at(rows, "complexity_bits", peak, missing_ok=True)
        events["complexity_halved"] = first_step_below(
            rows, "complexity_bits", bits / 2, after=peak + 1
        )
    highest = -math.inf
    for step, value in _series(rows, "test_nhsic_zx"):
        highest = max(highest, value)
        if value <= 0.95 * highest:
            events["information_turn"] = step
            break
    if memorized is None:
        return events
    plateau = [
        v for s, v in _series(rows, "test_rnc1", memorized) if s <= 2 * memorized
    ]
    if plateau:
        events["collapse"] = first_step_below(
            rows, "test_rnc1", float(np.median(plateau)) / 2, after=memorized
        )
    lowest = math.inf
    for step, value in _series(rows, "train_excluded_loss", memorized):
        lowest = min(lowest, value)
        if value >= 2 * lowest:
            events["circuit_formation"] = step
            break
    restricted = value_at(rows, "train_restricted_loss", memorized, missing_ok=True)
    if restricted is not None:
        events["circuit_cleanup"] = first_step_below(
            rows, "train_restricted_loss", restricted / 2, after=memorized
        )
    return events


def event_order(events: dict[str, int | None]) -> list[str]:
    """The names of the events that happened, by step (ties keep their order).

    Raises:
        ValueError: ``events`` is not a dict of steps (numbers) or None.
    """
    if not isinstance(events, Mapping) or not all(
        step is None or _is_real(step) for step in events.values()
    ):
        raise ValueError(
            "events must be a dict of event names to steps (or None). "
            f"Received: events={events!r}"
        )
    happened = [(step, i, name) for i, (name, step) in enumerate(events.items())]
    return [name for step, _, name in sorted(t for t in happened if t[0] is not None)]
