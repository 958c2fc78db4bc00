"""Events to the step: refine each late-phase event by measuring densely where it is.

A run measures sparsely while it trains (log-spaced, adaptive), so an event read
off ``metrics.csv`` is only known to lie between the measured step before it and
the one at which it is seen. ``refine_events`` closes that bracket: for every
event whose bracket is wider than ``max(relative * step, one epoch)``, it asks
its ``measure`` function for the event's lens on a grid of that spacing inside
the bracket (steps replayed exactly from the run's checkpoint history, see
``keras_grok.runs.replay``), reads the events again off the in-line and the
replayed rows together (``late_phase_events``, the same definitions), and
repeats until every event is resolved: the first step that meets the event's
definition is then known to within its resolution. Costly lenses (complexity,
information, Fourier; ``GRID_POINTS``) are refined coarse to fine, a few grid
points a round, so a bracket of ``n`` resolutions costs ``O(log n)`` rounds of a
few measurements rather than ``n`` measurements.

Each event is reported as ``{"step", "resolution", "measured_step", "lens"}``:
``step`` is the first measured step that meets the definition, and the true
first step lies in ``(step - resolution, step]``; ``measured_step`` is the step
the in-line measurements alone gave.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from keras_grok.analysis.events import LATE_PHASE_EVENTS, late_phase_events
from keras_grok.runs.run_folder import merge_rows
from keras_grok.utils.argument_validation import validate_float_arg, validate_int_arg

EVENT_LENS = {
    "memorized": "accuracy",
    "generalized": "accuracy",
    "collapse": "collapse",
    "complexity_peak": "complexity",
    "complexity_halved": "complexity",
    "information_turn": "information",
    "circuit_formation": "fourier",
    "circuit_cleanup": "fourier",
}
"""The lens that measures each event of ``LATE_PHASE_EVENTS``."""

EVENT_METRIC = {
    "memorized": "train_accuracy",
    "generalized": "test_accuracy",
    "collapse": "test_rnc1",
    "complexity_peak": "complexity_bits",
    "complexity_halved": "complexity_bits",
    "information_turn": "test_nhsic_zx",
    "circuit_formation": "train_excluded_loss",
    "circuit_cleanup": "train_restricted_loss",
}
"""The metric each event is read off."""

GRID_POINTS = {"complexity": 6, "information": 6, "fourier": 10}
"""Lenses costly to measure are refined coarse to fine: at most this many grid
points a round in a bracket (the others: a grid at the resolution asked, in one
round)."""

Measure = Callable[[dict[str, list[int]]], list[dict]]


def _measured_steps(rows: Sequence[dict], metric: str) -> list[int]:
    return [
        int(r["step"])
        for r in rows
        if isinstance(r.get(metric), (int, float)) and math.isfinite(r[metric])
    ]


def tolerance(step: int, relative: float, steps_per_epoch: int) -> int:
    """The resolution an event at ``step`` needs: ``max(relative * step, epoch)``."""
    step = validate_int_arg(step, "step", minimum=0)
    relative = validate_float_arg(relative, "relative", allow_minimum=False)
    steps_per_epoch = validate_int_arg(steps_per_epoch, "steps_per_epoch")
    return max(math.ceil(relative * step), steps_per_epoch, 1)


def refine_events(
    rows: Sequence[dict],
    measure: Measure,
    *,
    steps_per_epoch: int,
    threshold: float = 0.99,
    test_threshold: float | None = None,
    relative: float = 0.01,
    max_rounds: int = 6,
    events: Sequence[str] = LATE_PHASE_EVENTS,
) -> tuple[dict[str, dict | None], list[dict]]:
    """Locates every event of ``rows`` to ``max(relative * step, one epoch)``.

    Args:
        rows: the run's in-line metrics rows, in step order.
        measure: ``measure({lens: steps}) -> rows`` measures each lens of
            ``EVENT_LENS`` at its steps (by replay: one replay a round serves
            every lens) and returns the rows.
        steps_per_epoch: the run's steps per epoch (the finest resolution asked).
        threshold: train accuracy that counts as memorized. Defaults to `0.99`.
        test_threshold: test accuracy that counts as generalized; None takes
            ``threshold``. Defaults to `None`.
        relative: the resolution asked, relative to the event's step.
            Defaults to `0.01`.
        max_rounds: the most rounds of measuring (an event whose definition
            keeps moving is reported with the resolution reached); 0 measures
            nothing and reports the in-line resolution. Defaults to `6`.
        events: which events to refine. Defaults to every late-phase event.

    Returns:
        ``(table, rows)``: ``{event: {"step", "resolution", "measured_step",
        "lens"} or None}`` (None: it did not happen), and the merged in-line and
        replayed rows the table was read off.
    """
    measured = late_phase_events(rows, threshold, test_threshold)
    extra: list[dict] = []
    asked: set[tuple[str, int]] = set()
    for round_ in range(max_rounds + 1):
        merged = merge_rows(rows, extra)
        found = late_phase_events(merged, threshold, test_threshold)
        wanted: dict[str, set[int]] = {}
        table: dict[str, dict | None] = {}
        for event in events:
            step = found.get(event)
            if step is None:
                table[event] = None
                continue
            metric, lens = EVENT_METRIC[event], EVENT_LENS[event]
            steps = _measured_steps(merged, metric)
            need = tolerance(step, relative, steps_per_epoch)
            before = max((s for s in steps if s < step), default=0)
            sides = [(before, step)]
            if event == "complexity_peak":  # a peak is bracketed on both sides
                after = min((s for s in steps if s > step), default=step)
                sides.append((step, after))
            resolution = max(b - a for a, b in sides)
            table[event] = {
                "step": step,
                "resolution": resolution,
                "measured_step": measured.get(event),
                "lens": lens,
            }
            for a, b in sides:
                if b - a > need:
                    points = GRID_POINTS.get(lens)
                    spacing = need if points is None else max(need, (b - a) // points)
                    grid = range(a + spacing, b, spacing)
                    wanted.setdefault(lens, set()).update(
                        s for s in grid if s >= 1 and (lens, s) not in asked
                    )
        wanted = {lens: steps for lens, steps in wanted.items() if steps}
        if not wanted or round_ == max_rounds:
            break
        for lens, steps in wanted.items():
            asked.update((lens, s) for s in steps)
        extra = merge_rows(
            extra, measure({lens: sorted(steps) for lens, steps in wanted.items()})
        )
    return table, merge_rows(rows, extra)
