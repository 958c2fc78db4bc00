"""Events located to the step: refinement against trajectories known in closed form."""

from __future__ import annotations

import math

import pytest

from keras_grok.analysis.refine import refine_events, tolerance
from keras_grok.runs.run_folder import merge_rows

MEMORIZED, GENERALIZED, COLLAPSED = 1234, 4321, 2900


def truth(step: int) -> dict:
    """A run whose events are known: step functions and a smooth RNC1 decay."""
    return {
        "step": step,
        "train_accuracy": 1.0 if step >= MEMORIZED else 0.5,
        "test_accuracy": 1.0 if step >= GENERALIZED else 0.01,
        # Flat at 0.3 until 2000, then halves every 900 steps: at most half the
        # plateau (0.15) from step 2900 on.
        "test_rnc1": 0.3 * (0.5 ** (max(step - 2000, 0) / 900)),
    }


def sparse_rows() -> list[dict]:
    steps = sorted({int(1.5**n) for n in range(25)} | {6000})
    return [truth(s) for s in steps if s <= 6000]


class Replayer:
    """Measures the closed-form run at any step, counting what it was asked."""

    def __init__(self):
        self.asked: list[tuple[str, int]] = []

    def __call__(self, wanted):
        steps = sorted({s for group in wanted.values() for s in group})
        self.asked.extend((lens, s) for lens, group in wanted.items() for s in group)
        return [truth(s) for s in steps]


def test_every_event_is_located_to_one_percent_of_its_step():
    replayer = Replayer()
    table, rows = refine_events(sparse_rows(), replayer, steps_per_epoch=8)
    for event, step in (
        ("memorized", MEMORIZED),
        ("generalized", GENERALIZED),
        ("collapse", COLLAPSED),
    ):
        found = table[event]
        need = tolerance(found["step"], 0.01, 8)
        assert found["resolution"] <= need
        # The true first step lies in (step - resolution, step].
        assert found["step"] - found["resolution"] < step <= found["step"]
    assert table["memorized"]["measured_step"] != table["memorized"]["step"]
    assert table["information_turn"] is None  # its lens was never measured
    assert {lens for lens, _ in replayer.asked} == {"accuracy", "collapse"}


def test_an_event_already_resolved_asks_for_nothing():
    rows = [truth(s) for s in range(8, 6001, 8)]  # measured every epoch
    replayer = Replayer()
    table, _ = refine_events(rows, replayer, steps_per_epoch=8)
    assert replayer.asked == []
    assert table["memorized"] == {
        "step": 1240,
        "resolution": 8,
        "measured_step": 1240,
        "lens": "accuracy",
    }


def test_the_resolution_is_never_finer_than_an_epoch():
    table, _ = refine_events(sparse_rows(), Replayer(), steps_per_epoch=100)
    assert table["memorized"]["resolution"] <= 100
    assert table["memorized"]["step"] % 1 == 0


def test_merged_rows_keep_every_step_once_in_order():
    merged = merge_rows(
        [{"step": 5, "a": 1.0}],
        [{"step": 2, "b": 2.0}, {"step": 5, "a": math.nan, "b": 3.0}],
    )
    assert [r["step"] for r in merged] == [2, 5]
    assert merged[1] == {"step": 5, "a": 1.0, "b": 3.0}  # NaN: not measured there


@pytest.mark.parametrize("relative", [0.05, 0.01, 0.002])
def test_a_finer_resolution_costs_more_measurements(relative):
    replayer = Replayer()
    table, _ = refine_events(
        sparse_rows(), replayer, steps_per_epoch=1, relative=relative
    )
    assert table["generalized"]["resolution"] <= math.ceil(relative * GENERALIZED)
    assert len(replayer.asked) < 3 * (1 / relative) * 3
