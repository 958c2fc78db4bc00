"""The forecast's signals, checked against closed-form trajectories."""

import math

import numpy as np
import pytest

from keras_grok.forecast import SIGNALS, forecast, read_signals
from keras_grok.forecast.signals import memorized_step

ETA, LAMBDA = 1e-3, 0.5


def trajectory(rate=4e-4, fit=1000, norm_rate=1e-4, steps=range(100, 6001, 100)):
    rows = []
    for s in steps:
        rows.append(
            {
                "step": s,
                "train_accuracy": min(1.0, s / fit),
                "test_accuracy": 0.01,
                "test_rnc1": 0.3 * math.exp(-rate * s),
                "train_rnc1": 0.1 * math.exp(-rate * s),
                "test_mean_feature_norm": 20 * math.exp(-norm_rate * s),
                "test_loss": 9.0 * math.exp(-2e-4 * max(s - fit, 0)),
            }
        )
    return rows


def test_signals_of_a_closed_form_run():
    rows = trajectory()
    x = dict(zip(SIGNALS, read_signals(rows, 4000, ETA, LAMBDA)))
    assert x["log_inverse_rate"] == pytest.approx(math.log(1 / (ETA * LAMBDA)))
    assert x["log_fit"] == pytest.approx(math.log(1000))
    assert x["log_step"] == pytest.approx(math.log(4000))
    assert x["fitted"] == 1.0
    assert x["collapse_rate"] == pytest.approx(4e-4 / (ETA * LAMBDA), rel=1e-9)
    assert x["norm_rate"] == pytest.approx(1e-4 / (ETA * LAMBDA), rel=1e-9)
    # the test loss fell by 2e-4 per step from its peak at step 2000 (t/2)
    assert x["test_loss_fall"] == pytest.approx(2e-4 * 2000, rel=1e-9)
    assert x["collapse_gap"] == pytest.approx(math.log(3.0), rel=1e-9)
    assert x["test_progress"] == pytest.approx(0.01 / 0.99)
    halfway = read_signals(rows, 4000, ETA, LAMBDA, test_threshold=0.02)
    assert dict(zip(SIGNALS, halfway))["test_progress"] == pytest.approx(0.5)


def test_rows_after_the_step_are_not_read():
    rows = trajectory()
    cut = [r for r in rows if r["step"] <= 2500]
    np.testing.assert_array_equal(
        read_signals(rows, 2500, ETA, LAMBDA), read_signals(cut, 2500, ETA, LAMBDA)
    )


def test_before_the_fit_the_train_accuracy_projects_it():
    rows = trajectory(fit=3000)
    x = dict(zip(SIGNALS, read_signals(rows, 1000, ETA, LAMBDA)))
    assert x["fitted"] == 0.0
    assert x["log_fit"] == pytest.approx(math.log(0.99 * 3000), rel=1e-9)
    assert memorized_step(rows) == 3000


def test_every_signal_is_finite_with_one_row_and_missing_columns():
    x = read_signals([{"step": 1, "train_accuracy": 0.1}], 1, ETA, LAMBDA)
    assert np.all(np.isfinite(x))


@pytest.mark.parametrize(
    "rate, decay, name",
    [
        (0.0, 1.0, "learning_rate"),
        (1e-3, 0.0, "weight_decay"),
        (-1.0, 1.0, "learning_rate"),
        (True, 1.0, "learning_rate"),
        (math.inf, 1.0, "learning_rate"),
        (1e-200, 1e-200, "time scale"),
    ],
)
def test_refuses_a_run_without_a_time_scale(rate, decay, name):
    with pytest.raises(ValueError, match=name):
        read_signals(trajectory(), 100, rate, decay)


def test_a_generalized_run_reports_its_measured_step():
    rows = trajectory()
    rows[30]["test_accuracy"] = 0.995
    f = forecast(rows, ETA, LAMBDA, budget=5000)
    assert f.generalized_at == f.low == f.high == rows[30]["step"]
    assert f.probability == 1.0
    with pytest.raises(ValueError, match="rows"):
        forecast([], ETA, LAMBDA)
