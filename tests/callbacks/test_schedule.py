"""Measurement schedules."""

import pytest

from keras_grok.callbacks.schedule import (
    Schedule,
    geometric_schedule,
    omnigrok_schedule,
    resolve_schedule,
)


def test_geometric_schedule_grows_by_the_ratio_and_ends_at_the_last_step():
    schedule = geometric_schedule(10_000, ratio=1.3)
    assert schedule.steps[0] == 1 and schedule.steps[-1] == 10_000
    assert list(schedule.steps) == sorted(set(schedule.steps))
    large = [s for s in schedule.steps if s > 100]
    for previous, step in zip(large, large[1:-1]):
        assert 1.2 < step / previous < 1.4
    assert 30 <= len(schedule) <= 37  # log(1e4)/log(1.3) = 35.1, small ints repeat


def test_omnigrok_schedule_is_dense_early_and_linear_late():
    steps = omnigrok_schedule(15_000).steps
    assert [s for s in steps if s < 30] == list(range(1, 30))
    assert [s for s in steps if 30 <= s < 150] == list(range(30, 150, 10))
    late = [s for s in steps if s >= 150]
    assert {b - a for a, b in zip(late, late[1:-1])} == {100}
    assert steps[-1] == 15_000


def test_schedule_specs_resolve():
    assert resolve_schedule("geometric", 100) == geometric_schedule(100)
    assert resolve_schedule("geometric:2", 64).steps == (1, 2, 4, 8, 16, 32, 64)
    assert resolve_schedule("omnigrok", 300) == omnigrok_schedule(300)
    assert resolve_schedule([5, 1, 5, 3], 10).steps == (1, 3, 5)
    assert 3 in resolve_schedule(lambda total: Schedule((3, total)), 9)


@pytest.mark.parametrize(
    "spec",
    [
        "linear",
        "omnigrok:2",
        "geometric:x",
        "geometric:",
        "every:",
        "adaptive:",
        "omnigrok:",
    ],
)
def test_unknown_schedule_specs_raise(spec):
    with pytest.raises(ValueError):
        resolve_schedule(spec, 100)


def test_steps_start_at_one():
    with pytest.raises(ValueError, match=">= 1"):
        Schedule((0, 1))
    with pytest.raises(ValueError, match="ratio must be a finite number > 1"):
        geometric_schedule(10, ratio=1.0)


@pytest.mark.parametrize("total, stride", [(1, 1), (10, 3), (12, 4), (7, 1), (5, 9)])
def test_a_stride_schedule_holds_the_steps_every_schedule_lists(total, stride):
    from keras_grok.callbacks.schedule import StrideSchedule, every_schedule

    listed = every_schedule(total, stride)
    lazy = StrideSchedule(total, stride)
    assert [s for s in range(-1, total + 3) if s in lazy] == list(listed.steps)
    assert [lazy.next_after(s) for s in range(total + 2)] == [
        listed.next_after(s) for s in range(total + 2)
    ]
    if total >= stride:
        assert len(lazy) == len(listed)


def test_every_step_of_an_unknown_length_run_is_not_listed():
    from keras_grok.callbacks.schedule import StrideSchedule, every_schedule

    schedule = every_schedule(2**31 - 1, 1)  # a generator's run: 2**31 - 1 steps
    assert isinstance(schedule, StrideSchedule) and len(schedule) == 2**31 - 1
    assert schedule.next_after(41) == 42 and 2**31 - 1 in schedule


def test_a_monitor_on_a_generator_without_steps_per_epoch():
    import keras
    import numpy as np

    from keras_grok.callbacks import GrokkingMonitor

    x = np.random.default_rng(0).normal(size=(24, 4)).astype("float32")
    y = np.arange(24) % 3

    def batches():
        for i in range(0, 24, 8):
            yield x[i : i + 8], y[i : i + 8]

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3)(inputs))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    monitor = GrokkingMonitor((x, y), schedule="every:1")
    if keras.backend.backend() == "jax":
        with pytest.raises(ValueError, match="pass steps_per_epoch to fit"):
            model.fit(batches(), epochs=1, verbose=0, callbacks=[monitor])
        return
    model.fit(batches(), epochs=1, verbose=0, callbacks=[monitor])
    # Every step the optimizer counts (TensorFlow counts the call that found no
    # data too), each once.
    taken = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    assert taken >= 3
    assert [r["step"] for r in monitor.records] == list(range(1, taken + 1))
