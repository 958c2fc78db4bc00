"""Power-law fits of event times (paper A's time-scale law) on synthetic data."""

from __future__ import annotations

import math

import numpy as np
import pytest

from keras_grok.analysis.scaling import fit_power_law, time_scale_fits

LAMBDAS = np.array([1.0, 0.3, 0.1, 0.03])


def test_exact_power_law_gives_its_slope_with_a_zero_width_interval():
    fit = fit_power_law(LAMBDAS, 400.0 * LAMBDAS**-1.0)
    assert fit.slope == pytest.approx(-1.0, abs=1e-12)
    assert math.exp(fit.intercept) == pytest.approx(400.0)
    assert fit.slope_low == pytest.approx(-1.0, abs=1e-9)
    assert fit.slope_high == pytest.approx(-1.0, abs=1e-9)
    assert fit.r_squared == pytest.approx(1.0)


def test_interval_matches_the_textbook_formula_for_noisy_seeds():
    rng = np.random.default_rng(0)
    x = np.repeat(LAMBDAS, 3)
    y = 400.0 * x**-0.8 * np.exp(rng.normal(scale=0.2, size=x.size))
    fit = fit_power_law(x, y)
    u, v = np.log(x), np.log(y)
    slope, intercept = np.polyfit(u, v, 1)
    residuals = v - (intercept + slope * u)
    se = np.sqrt(residuals @ residuals / (len(u) - 2) / ((u - u.mean()) ** 2).sum())
    half = 2.2281388519649385 * se  # t_{0.975, 10}
    assert fit.slope == pytest.approx(slope, rel=1e-10)
    assert fit.slope_low == pytest.approx(slope - half, rel=1e-9)
    assert fit.slope_high == pytest.approx(slope + half, rel=1e-9)
    assert fit.points == 12


def test_95_percent_intervals_cover_the_true_slope_about_95_percent_of_the_time():
    rng = np.random.default_rng(1)
    x = np.repeat(LAMBDAS, 3)
    covered = 0
    draws = 2000
    for _ in range(draws):
        y = 50.0 * x**-1.0 * np.exp(rng.normal(scale=0.3, size=x.size))
        fit = fit_power_law(x, y)
        covered += fit.slope_low <= -1.0 <= fit.slope_high
    assert 0.93 <= covered / draws <= 0.97


def test_two_points_give_a_slope_without_an_interval():
    fit = fit_power_law([1.0, 0.1], [100.0, 1000.0])
    assert fit.slope == pytest.approx(-1.0)
    assert math.isnan(fit.slope_low) and math.isnan(fit.slope_high)


@pytest.mark.parametrize(
    "x, y, match",
    [
        ([1.0], [1.0], "at least 2 points"),
        ([1.0, 1.0], [1.0, 2.0], "2 distinct x"),
        ([1.0, -1.0], [1.0, 2.0], "finite and > 0"),
        ([1.0, 2.0], [1.0, math.nan], "finite and > 0"),
        ([1.0, 2.0], [1.0], "same length"),
    ],
)
def test_unfittable_points_are_refused_with_the_reason(x, y, match):
    with pytest.raises(ValueError, match=match):
        fit_power_law(x, y)


def _run(generalized: int, collapse: int) -> list[dict]:
    # Metrics rows: fit at step 100, test RNC1 halves at `collapse`, test
    # accuracy reaches 1 at `generalized`.
    steps = sorted({1, 100, 150, 200, collapse, generalized, 4 * generalized})
    return [
        {
            "step": s,
            "train_accuracy": 1.0 if s >= 100 else 0.1,
            "test_accuracy": 1.0 if s >= generalized else 0.1,
            "test_rnc1": 0.1 if s >= collapse else 0.5,
        }
        for s in steps
    ]


def test_sweep_slopes_are_read_off_each_runs_events():
    groups = {
        float(wd): [_run(int(2000 / wd), int(1000 / wd**0.5)) for _ in range(2)]
        for wd in (1.0, 0.3, 0.1)
    }
    groups[0.0] = [_run(50000, 20000)]  # lambda = 0 has no place on a log axis
    fits = time_scale_fits(groups, 0.99, 0.99)
    assert fits["generalized"]["slope"] == pytest.approx(-1.0, abs=1e-3)
    assert fits["collapse"]["slope"] == pytest.approx(-0.5, abs=1e-3)
    assert fits["generalized"]["points"] == 6


def test_an_event_reached_at_one_weight_decay_has_no_fit():
    never = [{**row, "test_accuracy": 0.2} for row in _run(5000, 1000)]
    groups = {1.0: [_run(2000, 1000)], 0.1: [never]}
    fits = time_scale_fits(groups, 0.99, 0.99)
    assert fits["generalized"] is None
    assert fits["collapse"]["slope"] == pytest.approx(0.0)


def test_a_value_that_is_not_positive_is_named_with_the_values_received():
    with pytest.raises(ValueError, match=r"Received: x=\[0, 0.1, 1\] \(x\[0\]=0\)"):
        fit_power_law([0, 0.1, 1], [100, 10, 1])
    with pytest.raises(ValueError, match=r"Received: y=\[1.0, nan\]"):
        fit_power_law([1.0, 2.0], [1.0, math.nan])


def test_empty_and_mismatched_inputs_are_refused_with_their_sizes():
    with pytest.raises(ValueError, match="Received: 0 points"):
        fit_power_law([], [])
    with pytest.raises(ValueError, match=r"Received: len\(x\)=3, len\(y\)=2"):
        fit_power_law([1, 2, 3], [1, 2])


@pytest.mark.parametrize(
    "x, y, fragment",
    [
        (["1", "2"], [1, 2], "Received: x="),
        ([1, 2], [True, False], "Received: y="),
        ("12", [1, 2], "Received: x='12'"),
        ([1, 2], [1, None], "Received: y="),
    ],
)
def test_values_that_are_not_numbers_are_a_type_error(x, y, fragment):
    with pytest.raises(TypeError, match=fragment):
        fit_power_law(x, y)


@pytest.mark.parametrize("confidence", [0, 1, 1.5, "0.9", math.nan])
def test_confidence_must_lie_strictly_between_zero_and_one(confidence):
    with pytest.raises(ValueError, match="Received: confidence="):
        fit_power_law([1, 2, 4], [1, 2, 4], confidence)


def test_time_scale_fits_check_their_thresholds_even_without_runs():
    with pytest.raises(ValueError, match="Received: test_threshold=2"):
        time_scale_fits({}, 0.9, 2)
    with pytest.raises(TypeError, match="Received: groups of type list"):
        time_scale_fits([], 0.9, 0.9)
