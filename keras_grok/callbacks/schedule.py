"""When to measure: log-spaced schedules of training steps.

Grokking lives on a log time axis, so monitors measure at log-spaced steps rather
than every batch or every epoch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Schedule:
    """A sorted, duplicate-free set of training steps (counted from 1) to measure at.

    ``step in schedule`` is a set look-up, cheap enough for a per-batch hook.
    """

    steps: tuple[int, ...]
    _lookup: frozenset[int] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        steps = tuple(sorted({int(s) for s in self.steps}))
        if steps and steps[0] < 1:
            raise ValueError(f"Scheduled steps must be >= 1. Received: {steps[0]}")
        object.__setattr__(self, "steps", steps)
        object.__setattr__(self, "_lookup", frozenset(steps))

    def __contains__(self, step: object) -> bool:
        return step in self._lookup

    def __len__(self) -> int:
        return len(self.steps)


def geometric_schedule(total_steps: int, ratio: float = 1.3) -> Schedule:
    """Steps ``int(ratio**n)`` for n = 0, 1, ... up to ``total_steps``, plus the last.

    The schedule of paper B's code (it measures at epochs ``int(1.3**n)``).

    Args:
        total_steps: the last training step, always included.
        ratio: growth factor between consecutive measurements, > 1.
            Defaults to `1.3`.
    """
    if ratio <= 1:
        raise ValueError(f"ratio must be > 1. Received: ratio={ratio}")
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


def _check_total(total_steps: int) -> None:
    if int(total_steps) < 1:
        raise ValueError(f"total_steps must be >= 1. Received: {total_steps}")


ScheduleSpec = str | Schedule | Iterable[int] | Callable[[int], Schedule]


def resolve_schedule(spec: ScheduleSpec, total_steps: int) -> Schedule:
    """Turns a schedule spec into a ``Schedule`` for a run of ``total_steps`` steps.

    ``spec`` is a ``Schedule``; an iterable of steps; a callable
    ``total_steps -> Schedule``; or a string: ``"geometric"`` (ratio 1.3),
    ``"geometric:R"`` (ratio R) or ``"omnigrok"``.
    """
    if isinstance(spec, Schedule):
        return spec
    if isinstance(spec, str):
        name, _, argument = spec.partition(":")
        if name == "geometric":
            return geometric_schedule(total_steps, float(argument) if argument else 1.3)
        if name == "omnigrok" and not argument:
            return omnigrok_schedule(total_steps)
        raise ValueError(
            f"Unknown schedule {spec!r}. Allowed: 'geometric', 'geometric:RATIO', "
            "'omnigrok', a Schedule, a list of steps or a callable."
        )
    if callable(spec):
        return spec(total_steps)
    return Schedule(tuple(spec))
