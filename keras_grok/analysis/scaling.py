"""Power laws of event times: paper A's time-scale law, with a confidence interval.

Paper A (Sakamoto & Sato, arXiv 2509.20829) explains the delay of grokking by two
time scales: fitting the training set, and a slower collapse of the features whose
rate is set by the weight decay. Under decoupled weight decay the weights shrink at
a rate ``learning_rate * lambda``, so at a fixed learning rate the step at which
collapse (and grokking) completes should scale like ``1 / lambda``: a slope near -1
of ``log(step)`` against ``log(lambda)``. ``fit_power_law`` measures that slope,
``time_scale_fits`` does it for the runs of a weight-decay sweep.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from keras_grok.analysis.events import late_phase_events
from keras_grok.utils.argument_validation import ACCURACY_LEVEL, Range


@dataclass(frozen=True)
class PowerLawFit:
    """An ordinary-least-squares fit of ``log(y) = intercept + slope * log(x)``.

    Attributes:
        slope: the fitted exponent.
        intercept: the fitted ``log(y)`` at ``x = 1`` (natural log).
        slope_low: lower end of the slope's confidence interval (NaN with fewer
            than 3 points).
        slope_high: upper end of the slope's confidence interval.
        confidence: the interval's level, e.g. 0.95.
        points: the number of ``(x, y)`` points fitted.
        r_squared: the fraction of the variance of ``log(y)`` explained.
    """

    slope: float
    intercept: float
    slope_low: float
    slope_high: float
    confidence: float
    points: int
    r_squared: float

    def as_dict(self) -> dict:
        """The fit as a dict of Python numbers (for ``summary.json``)."""
        return asdict(self)


def fit_power_law(
    x: Sequence[float], y: Sequence[float], confidence: float = 0.95
) -> PowerLawFit:
    """Fits ``y ~ C x^slope`` by least squares on ``log(y)`` against ``log(x)``.

    With ``u = log x``, ``v = log y`` over ``n`` points: ``slope = S_uv / S_uu``,
    ``intercept = mean(v) - slope mean(u)``; the residual variance is
    ``s^2 = sum(residuals^2) / (n - 2)`` and the slope's standard error
    ``s / sqrt(S_uu)``; the interval is ``slope +- t_{(1+confidence)/2, n-2} *
    se`` with Student's t (``scipy.stats.t``). Replicates at one ``x`` (seeds)
    are separate points.

    Args:
        x: positive values (e.g. weight decays lambda).
        y: positive values (e.g. the steps of an event).
        confidence: the interval's level, in (0, 1). Defaults to `0.95`.

    Returns:
        A ``PowerLawFit``.

    Raises:
        ValueError: fewer than 2 points, fewer than 2 distinct ``x``, lengths
            that differ, a value that is not finite and positive, or
            ``confidence`` outside (0, 1).
        TypeError: ``x`` or ``y`` that does not hold numbers.

    Example:
    ```python
    fit = fit_power_law([1, 0.3, 0.1], [400, 1300, 4100])
    fit.slope, (fit.slope_low, fit.slope_high)  # about -1
    ```
    """
    from scipy import stats

    u, v = _positive_values(x, "x"), _positive_values(y, "y")
    if u.shape != v.shape:
        raise ValueError(
            f"x and y must have the same length. Received: len(x)={u.size}, "
            f"len(y)={v.size}"
        )
    confidence = CONFIDENCE.validate(confidence, "confidence")
    if u.size < 2 or np.unique(u).size < 2:
        raise ValueError(
            "A power law needs at least 2 points at 2 distinct x. Received: "
            f"{u.size} points at {np.unique(u).size} distinct x"
        )
    u, v = np.log(u), np.log(v)
    su = u - u.mean()
    s_uu = float(su @ su)
    slope = float(su @ (v - v.mean())) / s_uu
    intercept = float(v.mean() - slope * u.mean())
    residuals = v - (intercept + slope * u)
    total = float(((v - v.mean()) ** 2).sum())
    r_squared = 1.0 - float(residuals @ residuals) / total if total > 0 else 1.0
    n = u.size
    if n < 3:
        low = high = math.nan
    else:
        se = math.sqrt(float(residuals @ residuals) / (n - 2) / s_uu)
        half = float(stats.t.ppf((1 + confidence) / 2, n - 2)) * se
        low, high = slope - half, slope + half
    return PowerLawFit(slope, intercept, low, high, confidence, n, r_squared)


CONFIDENCE = Range(float, maximum=1.0, open_minimum=True, open_maximum=True)
"""A confidence level: in (0, 1)."""


def _positive_values(values, name: str) -> np.ndarray:
    # The values as a flat float64 array, each a finite number > 0 (no bools,
    # no strings).
    if isinstance(values, (str, bytes)):
        raise TypeError(
            f"{name} must be a sequence of numbers. Received: {name}={values!r}"
        )
    try:
        array = np.asarray(values)
    except ValueError:  # ragged
        array = np.asarray(values, dtype=object)
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.integer)
        or np.issubdtype(array.dtype, np.floating)
    ):
        raise TypeError(
            f"{name} must hold real numbers. Received: {name}={_shown(values)}"
        )
    array = array.astype(np.float64).ravel()
    bad = ~np.isfinite(array) | (array <= 0)
    if np.any(bad):
        raise ValueError(
            f"x and y must be finite and > 0 to fit a power law. Received: "
            f"{name}={_shown(values)} ({name}[{int(np.argmax(bad))}]="
            f"{float(array[bad][0]):g})"
        )
    return array


def _shown(values, most: int = 8) -> str:
    # The values for a message, cut after `most` of them.
    items = np.asarray(values, dtype=object).ravel().tolist()
    text = ", ".join(repr(v) for v in items[:most])
    return f"[{text}{', ...' if len(items) > most else ''}]"


def time_scale_fits(
    groups: dict[float, list[list[dict]]],
    threshold: float,
    test_threshold: float,
    confidence: float = 0.95,
) -> dict[str, dict | None]:
    """Paper A's time-scale law over a weight-decay sweep: slopes of event steps.

    For each run (its ``metrics.csv`` rows) the steps of ``generalized`` and
    ``collapse`` are read with ``keras_grok.analysis.events.late_phase_events``; each
    event's steps over all runs with ``lambda > 0`` that reached it are fitted
    against lambda with ``fit_power_law`` (paper A's prediction: slope near -1).

    Args:
        groups: ``{lambda: [rows of each seed's run]}`` (``read_groups`` of
            ``keras_grok.sweeps.sweep_results``).
        threshold: train accuracy that counts as memorized.
        test_threshold: test accuracy that counts as generalized.
        confidence: the slopes' interval level. Defaults to `0.95`.

    Returns:
        ``{"generalized": fit, "collapse": fit}``, each fit a dict
        (``PowerLawFit.as_dict()``) or None when the runs that reached the event
        span fewer than 2 weight decays.
    """
    if not isinstance(groups, dict):
        raise TypeError(
            "groups must be a dict of runs' metrics rows by weight decay. "
            f"Received: groups of type {type(groups).__name__}"
        )
    threshold = ACCURACY_LEVEL.validate(threshold, "threshold")
    test_threshold = ACCURACY_LEVEL.validate(test_threshold, "test_threshold")
    confidence = CONFIDENCE.validate(confidence, "confidence")
    steps: dict[str, list[tuple[float, int]]] = {"generalized": [], "collapse": []}
    for value, runs in groups.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(
                "groups must be keyed by weight decay (a number). "
                f"Received: a key {value!r}"
            )
        if not value > 0:
            continue
        for rows in runs:
            events = late_phase_events(rows, threshold, test_threshold)
            for name, points in steps.items():
                if events[name] is not None and events[name] > 0:
                    points.append((float(value), events[name]))
    fits: dict[str, dict | None] = {}
    for name, points in steps.items():
        if len({x for x, _ in points}) < 2:
            fits[name] = None
            continue
        xs, ys = zip(*points)
        fits[name] = fit_power_law(xs, ys, confidence).as_dict()
    return fits
