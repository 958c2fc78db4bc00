"""EpochBatches refuses data and settings it cannot batch, at construction."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from keras_grok.data import EpochBatches

X, Y = np.arange(10).reshape(5, 2), np.arange(5)


def test_epoch_batches_refuse_empty_data():
    with pytest.raises(ValueError, match="at least one example"):
        EpochBatches(np.zeros((0, 2)), np.zeros(0), 8, 0)


def test_epoch_batches_refuse_a_batch_size_of_zero():
    with pytest.raises(ValueError, match="Received: batch_size=0"):
        EpochBatches(X, Y, batch_size=0, seed=0)


def test_epoch_batches_refuse_inputs_and_targets_of_different_lengths():
    with pytest.raises(ValueError, match=r"as many targets as inputs.*\(3,\)"):
        EpochBatches(np.zeros((4, 2)), np.zeros(3), 2, 0)


def test_epoch_batches_refuse_a_scalar_input():
    with pytest.raises(ValueError, match="one example per row"):
        EpochBatches(np.float32(1.0), Y, 2, 0)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"seed": -1}, "Received: seed=-1"),
        ({"seed": "0"}, "Received: seed='0'"),
        ({"seed": 0.5}, "Received: seed=0.5"),
        ({"seed": 0, "start_epoch": -1}, "Received: start_epoch=-1"),
        ({"seed": 0, "batch_size": True}, "Received: batch_size=True"),
        ({"seed": 0, "batch_size": 2.5}, "Received: batch_size=2.5"),
    ],
)
def test_epoch_batches_refuse_negative_fractional_and_non_number_settings(
    kwargs, fragment
):
    kwargs = {"batch_size": 2, **kwargs}
    with pytest.raises(ValueError, match=fragment):
        EpochBatches(X, Y, **kwargs)


def test_epoch_batches_refuse_an_index_before_step_zero():
    with pytest.raises(IndexError, match="Received: index=-1"):
        EpochBatches(X, Y, 2, 0)[-1]


@given(
    n=st.integers(1, 20),
    batch_size=st.integers(1, 25),
    seed=st.integers(0, 2**32 - 1),
    epoch=st.integers(0, 3),
)
def test_epoch_batches_cover_every_example_once_per_epoch(n, batch_size, seed, epoch):
    x = np.arange(n)
    batches = EpochBatches(x, x, batch_size, seed, start_epoch=epoch)
    seen = np.concatenate([batches[i][0] for i in range(batches.steps_per_epoch)])
    np.testing.assert_array_equal(np.sort(seen), x)
    np.testing.assert_array_equal(seen, batches.order(epoch))
