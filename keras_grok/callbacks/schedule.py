"""When to measure: log-spaced and adaptive schedules of training steps.

Grokking lives on a log time axis, so monitors measure at log-spaced steps rather
than every batch or every epoch. A schedule answers one question,
``next_after(step, history)``: the next step to measure at, given the step just
measured and the merged records measured so far. Fixed schedules ignore the
history; ``AdaptiveSchedule`` measures densely while the watched metrics move and
sparsely while they are flat.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from keras_grok.utils.argument_validation import (
    ACCURACY_LEVEL,
    validate_float_arg,
    validate_int_arg,
)

NEVER = 2**62  # "no further measurement": beyond any run's last step


@dataclass(frozen=True)
class Schedule:
    """A sorted, duplicate-free set of training steps (counted from 1) to measure at.

    ``step in schedule`` is a set look-up, cheap enough for a per-batch hook.
    Steps are whole numbers >= 1; a fractional step (e.g. from
    ``np.geomspace``) is refused rather than truncated: round the steps first.
    """

    steps: tuple[int, ...]
    _lookup: frozenset[int] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        steps = tuple(sorted({_step(s) for s in self.steps}))
        object.__setattr__(self, "steps", steps)
        object.__setattr__(self, "_lookup", frozenset(steps))

    def __contains__(self, step: object) -> bool:
        return step in self._lookup

    def __len__(self) -> int:
        return len(self.steps)

    def next_after(self, step: int, history: Sequence[dict] = ()) -> int:
        """The first scheduled step after ``step`` (``NEVER`` past the last)."""
        index = bisect_right(self.steps, step)
        return self.steps[index] if index < len(self.steps) else NEVER


@dataclass(frozen=True)
class AdaptiveSchedule:
    """Measures densely while watched metrics move, sparsely while they are flat.

    After each measurement the next step is ``ceil(step * ratio)`` (at least
    ``step + 1``), with the ratio chosen so that each watched metric changes by
    about ``tolerance`` between measurements: if the last two measurements, a
    log-step ``g = log(s1 / s0)`` apart, differ by ``c`` (the largest absolute
    change of a watched metric), ``ratio = exp(g * tolerance / c)``, clipped to
    ``[min_ratio, max_ratio]``. While a watched metric lies within ``near`` below
    its level (e.g. test accuracy in [0.89, 0.99) for a level of 0.99), the ratio
    is ``min_ratio``, so the first step at or above the level is located to within
    a factor ``min_ratio`` (a fixed x1.1 schedule: within 1.1). Before two
    measurements exist, the ratio is ``start_ratio``. Stateless: the history
    carries everything, so one instance can serve several monitors.

    Args:
        total_steps: the run's last step; nothing is scheduled after it.
        levels: the watched metrics and the level each must reach (memorized /
            generalized). Defaults to
            `{"train_accuracy": 0.99, "test_accuracy": 0.99}`.
        tolerance: target change of a watched metric between measurements.
            Defaults to `0.1`.
        near: the band below a level measured at ``min_ratio``.
            Defaults to `0.1`.
        min_ratio: the densest spacing. Defaults to `1.05`.
        max_ratio: the sparsest spacing. Defaults to `1.5`.
        start_ratio: the spacing before two measurements exist.
            Defaults to `1.25`.

    Example:
    ```python
    schedule = AdaptiveSchedule(10_000, levels={"test_accuracy": 0.95})
    monitor = GrokkingMonitor(train, test, schedule=schedule)
    ```
    """

    total_steps: int
    levels: Mapping[str, float] = field(
        default_factory=lambda: {"train_accuracy": 0.99, "test_accuracy": 0.99}
    )
    tolerance: float = 0.1
    near: float = 0.1
    min_ratio: float = 1.05
    max_ratio: float = 1.5
    start_ratio: float = 1.25

    def __post_init__(self):
        _check_total(self.total_steps)
        for name in ("tolerance", "near", "min_ratio", "max_ratio", "start_ratio"):
            validate_float_arg(getattr(self, name), name)
        if not 1 < self.min_ratio <= self.start_ratio <= self.max_ratio:
            raise ValueError(
                "AdaptiveSchedule needs 1 < min_ratio <= start_ratio <= max_ratio. "
                f"Received: min_ratio={self.min_ratio}, start_ratio="
                f"{self.start_ratio}, max_ratio={self.max_ratio}"
            )
        if not self.tolerance > 0 or not self.near >= 0:
            raise ValueError(
                "AdaptiveSchedule needs tolerance > 0 and near >= 0. Received: "
                f"tolerance={self.tolerance}, near={self.near}"
            )
        if not isinstance(self.levels, Mapping) or not self.levels:
            raise ValueError(
                "levels must map one or more metric names to the level each must "
                f"reach. Received: levels={self.levels!r}"
            )
        for name, level in self.levels.items():
            ACCURACY_LEVEL.validate(level, f"levels[{name!r}]")

    def next_after(self, step: int, history: Sequence[dict] = ()) -> int:
        """The next step to measure at, after ``step``, from the measured history."""
        if step >= self.total_steps:
            return NEVER
        if step < 1:
            return 1
        watched = [r for r in history if r["step"] <= step and self._values(r)]
        ratio = self.start_ratio
        if len(watched) >= 2 and watched[-1]["step"] > watched[-2]["step"]:
            last, previous = watched[-1], watched[-2]
            gap = math.log(last["step"] / previous["step"])
            change = max(
                (
                    abs(last[k] - previous[k])
                    for k in self._values(last)
                    if k in self._values(previous)
                ),
                default=0.0,
            )
            ratio = math.exp(gap * self.tolerance / change) if change > 0 else math.inf
            ratio = min(max(ratio, self.min_ratio), self.max_ratio)
        if watched and any(
            level - self.near <= value < level
            for name, value in self._values(watched[-1]).items()
            for level in (self.levels[name],)
        ):
            ratio = self.min_ratio
        return min(max(step + 1, math.ceil(step * ratio)), self.total_steps)

    def _values(self, record: dict) -> dict[str, float]:
        return {
            name: record[name]
            for name in self.levels
            if isinstance(record.get(name), float) and math.isfinite(record[name])
        }


def geometric_schedule(total_steps: int, ratio: float = 1.3) -> Schedule:
    """Steps ``int(ratio**n)`` for n = 0, 1, ... up to ``total_steps``, plus the last.

    The schedule of paper B's code (it measures at epochs ``int(1.3**n)``).

    Args:
        total_steps: the last training step, always included.
        ratio: growth factor between consecutive measurements, > 1.
            Defaults to `1.3`.
    """
    ratio = validate_float_arg(ratio, "ratio", minimum=1.0, allow_minimum=False)
    _check_total(total_steps)
    count = int(np.log(total_steps) / np.log(ratio)) + 2
    steps = {int(ratio**n) for n in range(count)}
    return Schedule(tuple(s for s in steps if s <= total_steps) + (total_steps,))


def omnigrok_schedule(total_steps: int) -> Schedule:
    """Every step below 30, every 10th below 150, then every ``total_steps // 150``.

    The logging schedule of Omnigrok (Liu et al., 2023), used by paper A
    (Sakamoto & Sato, arXiv 2509.20829). The last step is always included.
    """
    _check_total(total_steps)
    stride = max(total_steps // 150, 1)
    steps = [*range(1, 30), *range(30, 150, 10), *range(150, total_steps + 1, stride)]
    return Schedule(tuple(s for s in steps if s <= total_steps) + (total_steps,))


def _step(step) -> int:
    """A scheduled step as an int; ValueError for a fractional or a step < 1."""
    try:
        return validate_int_arg(step, "step", minimum=1)
    except ValueError:
        raise ValueError(
            "Scheduled steps must be whole numbers >= 1 (round fractional steps, "
            f"e.g. np.unique(np.round(steps)).astype(int)). Received: step={step!r}"
        ) from None


def _check_total(total_steps: int) -> None:
    validate_int_arg(total_steps, "total_steps", minimum=1)


@dataclass(frozen=True)
class StrideSchedule:
    """Step 1, every ``stride``-th step and ``total_steps``, by arithmetic.

    What ``every_schedule`` gives when its steps are too many to list: a run of
    unknown length (a generator without ``steps_per_epoch``) is planned for
    2**31 - 1 steps, which ``every:1`` would list one by one.
    """

    total_steps: int
    stride: int

    def __contains__(self, step: object) -> bool:
        if not isinstance(step, (int, np.integer)) or not 1 <= step <= self.total_steps:
            return False
        return step in (1, self.total_steps) or step % self.stride == 0

    def __len__(self) -> int:
        listed = self.total_steps // self.stride
        return listed + (self.stride > 1) + (self.total_steps % self.stride != 0)

    def next_after(self, step: int, history: Sequence[dict] = ()) -> int:
        """The first scheduled step after ``step`` (``NEVER`` past the last)."""
        if step >= self.total_steps:
            return NEVER
        if step < 1:
            return 1
        return min((step // self.stride + 1) * self.stride, self.total_steps)


_MAX_LISTED_STEPS = 1_000_000


def every_schedule(total_steps: int, stride: int) -> Schedule | StrideSchedule:
    """Every ``stride``-th step, plus the first and the last: a dense reference.

    A ``Schedule``; a ``StrideSchedule`` (the same steps, not listed) when there
    are more than a million of them.
    """
    _check_total(total_steps)
    validate_int_arg(stride, "stride", minimum=1)
    if total_steps // stride > _MAX_LISTED_STEPS:
        return StrideSchedule(total_steps, stride)
    return Schedule((1, *range(stride, total_steps + 1, stride), total_steps))


ScheduleSpec = (
    str | Schedule | AdaptiveSchedule | Iterable[int] | Callable[[int], Schedule]
)
_SPECS = (
    "'adaptive', 'geometric', 'geometric:RATIO', 'every:N', 'omnigrok', a "
    "Schedule, an AdaptiveSchedule, a list of steps or a callable"
)


def resolve_schedule(
    spec: ScheduleSpec,
    total_steps: int,
    levels: Mapping[str, float] | None = None,
) -> Schedule | StrideSchedule | AdaptiveSchedule:
    """Turns a schedule spec into a schedule for a run of ``total_steps`` steps.

    ``spec`` is a ``Schedule`` or ``AdaptiveSchedule``; an iterable of steps; a
    callable ``total_steps -> Schedule``; or a string: ``"adaptive"`` (an
    ``AdaptiveSchedule`` watching ``levels``), ``"geometric"`` (ratio 1.3),
    ``"geometric:R"`` (ratio R), ``"every:N"`` or ``"omnigrok"``.

    Raises:
        ValueError: a spec of none of these forms; the message names the allowed
            forms.
    """
    if isinstance(spec, (Schedule, StrideSchedule, AdaptiveSchedule)):
        return spec
    if isinstance(spec, str):
        name, colon, argument = spec.partition(":")
        try:
            if name == "adaptive" and not colon:
                return AdaptiveSchedule(
                    total_steps, **({"levels": levels} if levels else {})
                )
            if name == "geometric" and (argument or not colon):
                ratio = float(argument) if argument else 1.3
                return geometric_schedule(total_steps, ratio)
            if name == "every" and argument:
                return every_schedule(total_steps, int(argument))
            if name == "omnigrok" and not colon:
                return omnigrok_schedule(total_steps)
        except ValueError as error:
            raise ValueError(f"Invalid schedule {spec!r}: {error}") from None
        raise ValueError(f"Unknown schedule {spec!r}. Allowed: {_SPECS}.")
    if callable(spec):
        return spec(total_steps)
    try:
        steps = tuple(spec)
    except TypeError:
        raise ValueError(f"Unknown schedule {spec!r}. Allowed: {_SPECS}.") from None
    if not steps:  # a monitor that never measures
        raise ValueError(
            f"A list of steps must hold at least one step. Received: schedule={spec!r}"
        )
    try:
        return Schedule(steps)
    except (TypeError, ValueError) as error:
        raise ValueError(f"Invalid schedule {spec!r}: {error}") from None
