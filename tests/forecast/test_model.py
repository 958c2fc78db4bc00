"""The forecaster's regression: fitted coefficients and conditional forecasts.

Checked against data drawn from the model itself (censored and truncated
log-normal steps with known weights) and against SciPy's truncated normal.
"""

import math

import numpy as np
import pytest
from scipy import stats

from keras_grok.forecast import SIGNALS, Forecaster, default_forecaster
from keras_grok.forecast.model import fit_forecaster

WEIGHTS = np.array([0.8, 0.3, 0.0, 0.0, -0.2, 0.1, 0.0, 0.4, -0.3])
INTERCEPT, SIGMA = 8.0, 0.25


def draw(n, seed=0, budget=9000.0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(SIGNALS)))
    log_g = x @ WEIGHTS + INTERCEPT + SIGMA * rng.normal(size=n)
    # cutoffs drawn without looking at G, kept only where t < G (as a corpus's
    # grid of cutoffs is): the selection the likelihood must condition on
    steps = np.exp(rng.uniform(INTERCEPT - 1.0, INTERCEPT + 0.5, size=n))
    keep = (steps < budget) & (np.log(steps) < log_g)
    outcome = [math.exp(g) if math.exp(g) <= budget else None for g in log_g]
    return x[keep], steps[keep].astype(int), [o for o, k in zip(outcome, keep) if k]


def test_fit_recovers_the_weights_of_censored_truncated_data():
    x, steps, outcome = draw(12000)
    assert 0.05 < np.mean([o is None for o in outcome]) < 0.5  # some censored
    fitted = fit_forecaster(x, steps, outcome, [9000] * len(x), ridge=0.0)
    weights = fitted.weights / fitted.scale  # back to unstandardized signals
    np.testing.assert_allclose(weights, WEIGHTS, atol=0.03)
    intercept = fitted.intercept - float(fitted.mean / fitted.scale @ fitted.weights)
    assert intercept == pytest.approx(INTERCEPT, abs=0.03)
    assert fitted.sigma == pytest.approx(SIGMA, rel=0.06)


def test_forecast_is_the_truncated_log_normal():
    forecaster = Forecaster(SIGNALS, np.zeros(9), np.ones(9), WEIGHTS, INTERCEPT, SIGMA)
    signals = np.linspace(-1, 1, 9)
    mu = float(signals @ WEIGHTS + INTERCEPT)
    for step in (500, 2000, 4000):
        a = (math.log(step) - mu) / SIGMA
        law = stats.truncnorm(a, np.inf, loc=mu, scale=SIGMA)
        f = forecaster.predict(signals, step, budget=5000)
        assert math.log(f.generalized_at) == pytest.approx(law.median(), abs=1e-9)
        assert math.log(f.low) == pytest.approx(law.ppf(0.1), abs=1e-9)
        assert math.log(f.high) == pytest.approx(law.ppf(0.9), abs=1e-9)
        assert f.probability == pytest.approx(law.cdf(math.log(5000)), abs=1e-9)
        assert step <= f.low <= f.generalized_at <= f.high


def test_probability_is_zero_past_the_budget_and_in_range_far_out():
    forecaster = Forecaster(SIGNALS, np.zeros(9), np.ones(9), WEIGHTS, 8.0, 0.25)
    assert forecaster.predict(np.zeros(9), 6000, budget=5000).probability == 0.0
    far = forecaster.predict(np.zeros(9), 10**9, budget=2 * 10**9)
    assert 0.0 <= far.probability <= 1.0
    assert far.generalized_at >= 10**9


def test_json_round_trip_and_the_shipped_forecaster(tmp_path):
    shipped = default_forecaster()
    assert shipped.signals == SIGNALS
    assert np.all(np.isfinite(shipped.weights)) and shipped.sigma > 0
    shipped.save(tmp_path / "f.json")
    again = Forecaster.load(tmp_path / "f.json")
    np.testing.assert_array_equal(again.weights, shipped.weights)
    data = again.to_json()
    data["signals"] = ["log_step"]
    with pytest.raises(ValueError, match="refit"):
        Forecaster.from_json(data)


def test_fit_refuses_too_few_examples():
    with pytest.raises(ValueError, match="more examples"):
        fit_forecaster(np.zeros((3, 9)), [1, 2, 3], [10, 20, None], [100] * 3)


def _fields(**changes):
    shipped = default_forecaster()
    fields = {
        "signals": SIGNALS,
        "mean": shipped.mean,
        "scale": shipped.scale,
        "weights": shipped.weights,
        "intercept": shipped.intercept,
        "sigma": shipped.sigma,
    }
    return {**fields, **changes}


@pytest.mark.parametrize(
    "changes, fragment",
    [
        ({"weights": np.full(len(SIGNALS), np.nan)}, "weights must hold finite"),
        ({"mean": np.full(len(SIGNALS), np.inf)}, "mean must hold finite"),
        ({"scale": np.zeros(len(SIGNALS))}, "Received: scale="),
        ({"scale": np.full(len(SIGNALS), np.nan)}, "scale must hold finite"),
        ({"weights": np.zeros(2)}, "Received: weights of shape"),
        ({"weights": ["a"] * len(SIGNALS)}, "Received: weights="),
        ({"intercept": math.nan}, "Received: intercept=nan"),
        ({"intercept": "8"}, "Received: intercept='8'"),
        ({"sigma": 0.0}, "Received: sigma=0.0"),
        ({"sigma": -1.0}, "Received: sigma=-1.0"),
        ({"sigma": math.inf}, "Received: sigma=inf"),
    ],
)
def test_a_forecaster_refuses_coefficients_that_cannot_forecast(changes, fragment):
    with pytest.raises(ValueError, match=fragment):
        Forecaster(**_fields(**changes))


def test_a_forecaster_refuses_signals_that_are_not_names():
    with pytest.raises(TypeError, match="Received: signals="):
        Forecaster(**_fields(signals=[1] * len(SIGNALS)))


def test_a_forecaster_of_lists_forecasts_as_one_of_arrays():
    arrays = Forecaster(**_fields())
    lists = Forecaster(**_fields(mean=list(arrays.mean), weights=list(arrays.weights)))
    signals = arrays.mean + 0.1
    assert lists.predict(signals, 100) == arrays.predict(signals, 100)
