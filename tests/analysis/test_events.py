"""The late phase's events, read off metrics rows with their documented definitions."""

from __future__ import annotations

import math

import pytest

from keras_grok.analysis.events import (
    LATE_PHASE_EVENTS,
    event_order,
    first_step_at,
    first_step_below,
    late_phase_events,
    peak_step,
    value_at,
)

NAN = math.nan


def _rows() -> list[dict]:
    # A textbook run: fit at 100; excluded loss rises from 0.1 (twice that at
    # 150); restricted loss halves from 4.0 at 800; test RNC1 from a
    # plateau of 0.4 (steps 100-200) to <= 0.2 at 1000; complexity peaks at 200
    # (1000 bits) and halves at 1600; nHSIC(Z;X) peaks at 400 (0.8) and is more
    # than 5% below that at 800 (0.7); test accuracy
    # reaches 0.99 at 2000. Lenses measured on their own schedules leave NaN.
    table = [
        # step, train_acc, test_acc, rnc1, bits, zx, excluded, restricted
        (1, 0.01, 0.01, 0.5, 100, 0.2, NAN, NAN),
        (100, 0.99, 0.02, 0.4, 800, 0.5, 0.1, 4.0),
        (150, 1.0, 0.02, 0.45, NAN, NAN, 0.5, 3.9),
        (200, 1.0, 0.03, 0.35, 1000, 0.6, 0.8, 3.5),
        (400, 1.0, 0.05, 0.3, 900, 0.8, 1.2, 3.0),
        (800, 1.0, 0.3, 0.25, 700, 0.7, 2.0, 1.5),
        (1000, 1.0, 0.6, 0.2, NAN, NAN, 1.5, 0.8),
        (1600, 1.0, 0.95, 0.05, 500, 0.5, 1.0, 0.1),
        (2000, 1.0, 0.99, 0.02, NAN, NAN, 0.9, 0.05),
    ]
    names = (
        "step",
        "train_accuracy",
        "test_accuracy",
        "test_rnc1",
        "complexity_bits",
        "test_nhsic_zx",
        "train_excluded_loss",
        "train_restricted_loss",
    )
    return [
        dict(zip(names, (float(v) for v in row))) | {"step": row[0]} for row in table
    ]


def test_each_event_follows_its_definition():
    events = late_phase_events(_rows())
    assert events == {
        "memorized": 100,
        "circuit_formation": 150,
        "complexity_peak": 200,
        "information_turn": 800,
        "collapse": 1000,
        "circuit_cleanup": 800,
        "complexity_halved": 1600,
        "generalized": 2000,
    }
    assert list(events) == list(LATE_PHASE_EVENTS)


def test_order_lists_events_that_happened_by_step_keeping_ties_in_order():
    order = event_order(late_phase_events(_rows()))
    assert order == [
        "memorized",
        "circuit_formation",
        "complexity_peak",
        "information_turn",
        "circuit_cleanup",
        "collapse",
        "complexity_halved",
        "generalized",
    ]
    assert event_order({"a": None, "b": 5, "c": 5, "d": 1}) == ["d", "b", "c"]


def test_unmeasured_lenses_and_unmet_conditions_give_none():
    rows = [
        {"step": s, "train_accuracy": a, "test_accuracy": 0.1}
        for s, a in ((1, 0.1), (10, 0.5))
    ]
    events = late_phase_events(rows)
    assert set(events.values()) == {None}
    assert event_order(events) == []


def test_a_turn_needs_a_real_fall_and_a_formation_a_real_rise():
    rows = _rows()
    for row in rows:
        if math.isfinite(row["test_nhsic_zx"]):
            row["test_nhsic_zx"] = 0.8 - 0.01 * (row["step"] > 400)  # 1% dip
        row["train_excluded_loss"] = 0.1 + 0.01 * (row["step"] > 100)
    events = late_phase_events(rows)
    assert events["information_turn"] is None
    assert events["circuit_formation"] is None


def test_thresholds_move_memorized_and_generalized():
    events = late_phase_events(_rows(), threshold=0.995, test_threshold=0.9)
    assert events["memorized"] == 150
    assert events["generalized"] == 1600


def test_helpers_skip_missing_and_nan_values():
    rows = [{"step": 1, "x": NAN}, {"step": 2}, {"step": 3, "x": 2.0}]
    rows.append({"step": 4, "x": 1.0})
    assert first_step_below(rows, "x", 1.5) == 4
    assert first_step_below(rows, "x", 5.0, after=4) == 4
    assert peak_step(rows, "x") == 3
    assert value_at(rows, "x", 1) == 2.0
    assert value_at(rows, "x", None) is None
    assert peak_step(rows, "x", after=5) is None
    assert first_step_at(rows, "y", 0.5, missing_ok=True) is None


@pytest.mark.parametrize(
    "call",
    [
        lambda rows: first_step_at(rows, "test_acc", 0.5),
        lambda rows: first_step_below(rows, "test_acc", 0.5),
        lambda rows: peak_step(rows, "test_acc"),
        lambda rows: value_at(rows, "test_acc", 1),
    ],
)
def test_helpers_refuse_a_key_no_row_holds(call):
    # A misspelt metric read as "never happened" would be silently wrong.
    rows = [{"step": 1, "test_accuracy": 0.2}, {"step": 2, "test_accuracy": 0.9}]
    with pytest.raises(
        ValueError, match=r"rows hold: test_accuracy\. Received: key='test_acc'"
    ):
        call(rows)
    assert first_step_at([], "test_acc", 0.5) is None  # no rows: nothing to check


def test_late_phase_events_read_rows_in_step_order_whatever_their_order():
    rows = _rows()
    shuffled = rows[::-1]
    assert late_phase_events(shuffled) == late_phase_events(rows)
    out_of_order = [
        {"step": 40, "train_accuracy": 1.0},
        {"step": 10, "train_accuracy": 1.0},
        {"step": 20, "train_accuracy": 0.5},
    ]
    assert late_phase_events(out_of_order)["memorized"] == 10
    assert out_of_order[0]["step"] == 40  # the caller's list is left as it was


def test_every_helper_reads_rows_in_step_order():
    rows = [{"step": 3, "x": 2.0}, {"step": 1, "x": 2.0}, {"step": 2, "x": 0.5}]
    assert first_step_at(rows, "x", 1.0) == 1
    assert first_step_below(rows, "x", 1.0) == 2
    assert peak_step(rows, "x") == 1
    assert value_at(rows, "x", 1) == 2.0


def test_rows_holding_one_step_twice_are_refused():
    rows = [{"step": 1, "x": 0.0}, {"step": 2, "x": 1.0}, {"step": 1, "x": 1.0}]
    with pytest.raises(ValueError, match="Received: two rows of step 1"):
        first_step_at(rows, "x", 0.5)
    with pytest.raises(ValueError, match="each step once"):
        late_phase_events(rows)


@pytest.mark.parametrize(
    "row", [{"x": 1.0}, {"step": "3"}, {"step": NAN}, {"step": True}, [3, 1.0]]
)
def test_a_row_without_a_number_step_is_refused_naming_it(row):
    with pytest.raises(ValueError, match=r"Received: rows\[1\]="):
        first_step_at([{"step": 1}, row], "x", 0.5)


def test_rows_that_are_not_a_list_of_rows_are_refused():
    with pytest.raises(TypeError, match="Received: rows of type dict"):
        first_step_at({"step": 1, "x": 1.0}, "x", 0.5)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"threshold": 0.0}, "Received: threshold=0.0"),
        ({"threshold": 1.5}, "Received: threshold=1.5"),
        ({"threshold": "0.9"}, "Received: threshold='0.9'"),
        ({"test_threshold": NAN}, "Received: test_threshold=nan"),
    ],
)
def test_late_phase_thresholds_must_lie_in_zero_to_one(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        late_phase_events(_rows(), **kwargs)


def test_helper_levels_must_be_finite_numbers():
    rows = _rows()
    with pytest.raises(ValueError, match="Received: threshold='high'"):
        first_step_at(rows, "train_accuracy", "high")
    with pytest.raises(ValueError, match="Received: level=nan"):
        first_step_below(rows, "test_rnc1", NAN)
    with pytest.raises(ValueError, match="Received: after='5'"):
        peak_step(rows, "complexity_bits", after="5")


def test_event_order_refuses_steps_that_are_not_numbers():
    with pytest.raises(ValueError, match="Received: events="):
        event_order({"memorized": 10, "generalized": "late"})
