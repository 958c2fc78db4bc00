"""The forecast's corpus and fit refuse bad arguments by name."""

import numpy as np
import pytest

from keras_grok import forecast as forecasting
from keras_grok.forecast import SIGNALS, fit_forecaster
from keras_grok.forecast.corpus import corpus_runs

STEPS = (1, 2, 5, 10, 20, 50, 100, 150, 200)


def test_corpus_runs_refuses_an_unknown_operation():
    with pytest.raises(ValueError, match="Unknown operation.*Received: op='a\\*\\*b'"):
        corpus_runs(ops=["a**b"])


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"ops": "a+b"}, TypeError, "ops must be a list"),
        ({"seeds": 3}, TypeError, "seeds must be a list"),
        ({"seeds": []}, ValueError, "seeds must list one or more"),
        ({"seeds": [0, 0]}, ValueError, "seeds must list distinct"),
        ({"ops": ["a+b", "+"]}, ValueError, "ops must list distinct"),
        ({"seeds": [-1]}, ValueError, "Received: seeds=-1"),
    ],
)
def test_corpus_runs_refuses_bad_ops_and_seeds(kwargs, error, match):
    with pytest.raises(error, match=match):
        corpus_runs(**kwargs)


def test_corpus_runs_keeps_its_default_corpus():
    assert len(corpus_runs()) == 3 * 6 * 3 + 4 * 3
    assert len(corpus_runs(ops=[])) == 12


def _examples():
    n = len(SIGNALS) + 3
    signals = np.random.default_rng(0).random((n, len(SIGNALS)))
    return signals, [10] * n, [100.0] * n, [1000] * n


def test_fit_forecaster_refuses_a_negative_ridge_before_the_examples():
    with pytest.raises(ValueError, match="Received: ridge=-1"):
        fit_forecaster(np.zeros((2, 2)), [], [], [], ridge=-1)


def test_fit_forecaster_refuses_a_negative_weight_and_bad_info():
    signals, steps, outcomes, budgets = _examples()
    weights = [-1.0] + [1.0] * (len(steps) - 1)
    with pytest.raises(ValueError, match="Received: weights=-1"):
        fit_forecaster(signals, steps, outcomes, budgets, weights=weights)
    with pytest.raises(TypeError, match="info must be a dict"):
        fit_forecaster(signals, steps, outcomes, budgets, info="corpus")


def test_a_step_between_measured_rows_forecasts_from_the_rows_up_to_it():
    rows = [
        {"step": s, "train_accuracy": min(1.0, s / 20), "test_accuracy": 0.1,
         "test_loss": 1.0 / s}
        for s in STEPS
    ]  # fmt: skip
    at_30 = forecasting.forecast(rows, 1e-3, 1.0, step=30)
    later_changed = [
        {**r, "test_accuracy": 0.5, "test_loss": 9.0} if r["step"] > 30 else r
        for r in rows
    ]
    assert at_30.step == 30
    assert forecasting.forecast(later_changed, 1e-3, 1.0, step=30) == at_30
    with pytest.raises(ValueError, match=r"\(200, the largest step of the 9 rows"):
        forecasting.forecast(rows, 1e-3, 1.0, step=300)


def test_fit_forecaster_names_a_bad_budget_before_counting_the_examples():
    with pytest.raises(ValueError, match="budgets must be an integer >= 1"):
        fit_forecaster(
            np.ones((3, len(SIGNALS))), [10, 20, 30], [100, None, 300], [0, 1000, 1000]
        )
