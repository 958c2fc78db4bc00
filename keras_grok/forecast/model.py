"""The forecaster: a censored log-normal regression of the generalization step.

log(generalized_at) = w . standardized(signals) + b + sigma * noise, noise ~ N(0, 1).

Fitted by maximum likelihood on a corpus of runs at several cutoff steps ``t``
each (``keras_grok.forecast.evaluation``): a run that generalized contributes its
density, a run that did not within its budget ``B`` its survival P(G > B) (a
censored observation, Tobit style), and every example is conditioned on what the
forecast knows at ``t``, G > t (truncation). A small ridge penalty keeps the
weights of correlated signals finite. The forecast at ``t`` is the same
conditional law: its median is the predicted step, its 10% and 90% quantiles the
80% interval, and P(G <= B | G > t) the probability of generalizing within a
budget ``B``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import optimize, special

from keras_grok.forecast.signals import SIGNALS
from keras_grok.utils.argument_validation import validate_float_arg, validate_int_arg

INTERVAL = (0.1, 0.9)
"""Quantiles of the forecast's interval (80%)."""

REACH = 3.0
"""How many corpus standard deviations a standardized signal may lie out."""


@dataclass(frozen=True)
class Forecast:
    """A forecast of a run's generalization step, made at ``step``.

    ``generalized_at`` is the median, ``low``/``high`` the 80% interval,
    ``probability`` P(generalized within ``budget``) (None without a budget).
    """

    step: int
    generalized_at: float
    low: float
    high: float
    budget: int | None = None
    probability: float | None = None
    signals: dict = field(default_factory=dict)


def _iterable(value, name: str):
    # ``value`` if it can be iterated, else a TypeError naming it.
    try:
        return list(value)
    except TypeError:
        raise TypeError(
            f"{name} must be a sequence. Received: {name}={value!r}"
        ) from None


def _coefficients(value, name: str, signals) -> np.ndarray:
    # One finite float per signal, as a float64 array.
    try:
        array = np.asarray(value)
    except ValueError:  # ragged
        array = np.asarray(value, dtype=object)
    if array.dtype.kind not in "iuf":  # not bools, strings or objects
        raise ValueError(
            f"{name} must hold one number per signal. Received: {name}={value!r}"
        )
    array = array.astype(np.float64)
    if array.shape != (len(signals),):
        raise ValueError(
            f"{name} must hold one number per signal ({len(signals)}). "
            f"Received: {name} of shape {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(
            f"{name} must hold finite numbers. Received: {name}={array.tolist()}"
        )
    return array


@dataclass(frozen=True)
class Forecaster:
    """Coefficients of the fitted regression (see the module docstring).

    Raises:
        TypeError: ``signals`` that are not names, or ``info`` not a dict.
        ValueError: ``mean``, ``scale`` or ``weights`` not one finite number per
            signal, a ``scale`` that is not > 0, a non-finite ``intercept``, or a
            ``sigma`` that is not a finite number > 0 (the message names the
            field).
    """

    signals: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    intercept: float
    sigma: float
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        signals = self.signals
        if isinstance(signals, str) or not all(
            isinstance(name, str) for name in _iterable(signals, "signals")
        ):
            raise TypeError(
                "signals must be a sequence of signal names. "
                f"Received: signals={signals!r}"
            )
        set_field = object.__setattr__  # the dataclass is frozen
        set_field(self, "signals", tuple(signals))
        for name in ("mean", "scale", "weights"):
            values = np.array(_coefficients(getattr(self, name), name, signals))
            values.flags.writeable = False  # frozen, like the dataclass: the shipped
            set_field(self, name, values)  # forecaster is shared by every forecast
        bad = self.scale <= 0
        if np.any(bad):
            raise ValueError(
                "scale must be > 0 for every signal (it divides the signals). "
                f"Received: scale={self.scale.tolist()}"
            )
        try:
            intercept = validate_float_arg(
                self.intercept, "intercept", minimum=-math.inf
            )
        except ValueError:
            raise ValueError(
                f"intercept must be a finite number. Received: intercept="
                f"{self.intercept!r}"
            ) from None
        set_field(self, "intercept", intercept)
        set_field(
            self,
            "sigma",
            validate_float_arg(self.sigma, "sigma", allow_minimum=False),
        )
        if not isinstance(self.info, dict):
            raise TypeError(
                "info must be a dict. Received: info of type "
                f"{type(self.info).__name__}"
            )

    def location(self, signals: np.ndarray) -> np.ndarray:
        """The regression's mean of log(generalized_at) for each signal row.

        Standardized signals are clipped to +-``REACH`` corpus standard
        deviations: a run unlike every corpus run is not extrapolated without
        bound (a linear model would forecast millions of steps)."""
        z = (np.atleast_2d(signals) - self.mean) / self.scale
        return np.clip(z, -REACH, REACH) @ self.weights + self.intercept

    def predict(
        self, signals: np.ndarray, step: int, budget: int | None = None
    ) -> Forecast:
        """The forecast at ``step`` from the run's signals there (G > step known)."""
        signals = np.asarray(signals, dtype=np.float64)
        if signals.shape != (len(self.signals),) or not np.all(np.isfinite(signals)):
            raise ValueError(
                f"predict takes the {len(self.signals)} finite signals of "
                f"read_signals. Received: shape {signals.shape}"
            )
        step = validate_int_arg(step, "step")
        if budget is not None:
            budget = validate_int_arg(budget, "budget")
        mu = float(self.location(signals)[0])
        a = (math.log(max(step, 1)) - mu) / self.sigma
        survive = float(special.ndtr(-a))  # P(G > step) before conditioning

        def quantile(q: float) -> float:
            if survive <= 0.0:  # far past the law's reach: the step itself
                return float(step)
            z = -float(special.ndtri(max((1.0 - q) * survive, 1e-300)))
            return math.exp(mu + self.sigma * z)

        probability = None
        if budget is not None:
            if budget <= step or survive <= 0.0:
                probability = 0.0
            else:
                b = (math.log(budget) - mu) / self.sigma
                inside = float(special.ndtr(-a) - special.ndtr(-b))
                probability = float(np.clip(inside / survive, 0.0, 1.0))
        return Forecast(
            step=int(step),
            generalized_at=quantile(0.5),
            low=quantile(INTERVAL[0]),
            high=quantile(INTERVAL[1]),
            budget=None if budget is None else int(budget),
            probability=probability,
            signals=dict(zip(self.signals, map(float, np.ravel(signals)))),
        )

    def to_json(self) -> dict:
        return {
            "signals": list(self.signals),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "weights": self.weights.tolist(),
            "intercept": self.intercept,
            "sigma": self.sigma,
            "info": self.info,
        }

    @classmethod
    def from_json(cls, data: dict) -> Forecaster:
        """The forecaster of ``to_json``'s dict; refuses one that cannot forecast."""
        keys = ("signals", "mean", "scale", "weights", "intercept", "sigma")
        missing = [k for k in keys if k not in data]
        if missing:
            raise ValueError(
                f"a forecaster's JSON needs {', '.join(keys)}. Received: no "
                f"{', '.join(missing)}"
            )
        signals = tuple(data["signals"])
        if signals != SIGNALS:
            raise ValueError(
                "the forecaster was fitted on other signals than this version reads: "
                f"refit it (keras-grok run recipes/forecast_corpus.py). Received: "
                f"signals={list(signals)}, expected {list(SIGNALS)}"
            )
        try:
            arrays = [
                np.asarray(data[k], dtype=np.float64)
                for k in ("mean", "scale", "weights")
            ]
            intercept, sigma = float(data["intercept"]), float(data["sigma"])
        except (TypeError, ValueError):
            raise ValueError(
                "a forecaster's mean, scale, weights, intercept and sigma must be "
                "numbers. Received: " + ", ".join(f"{k}={data[k]!r}" for k in keys[1:])
            ) from None
        shapes = [a.shape for a in arrays]
        if any(shape != (len(SIGNALS),) for shape in shapes):
            raise ValueError(
                f"a forecaster's mean, scale and weights hold one number per signal "
                f"({len(SIGNALS)}). Received: shapes {shapes}"
            )
        finite = all(np.all(np.isfinite(a)) for a in arrays) and math.isfinite(
            intercept
        )
        if not (
            finite and np.all(arrays[1] > 0) and math.isfinite(sigma) and sigma > 0
        ):
            raise ValueError(
                "a forecaster's numbers must be finite, its scale and sigma > 0. "
                f"Received: scale={arrays[1].tolist()}, sigma={sigma!r}"
            )
        return cls(signals, *arrays, intercept, sigma, dict(data.get("info", {})))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Forecaster:
        """The forecaster saved in the JSON file ``path``."""
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"cannot read a forecaster from {path}: {error}") from None
        if not isinstance(data, dict):
            raise ValueError(
                f"{path} must hold a forecaster's JSON object. Received: "
                f"{type(data).__name__}"
            )
        return cls.from_json(data)


def fit_forecaster(
    signals: np.ndarray,
    steps: Sequence[int],
    generalized_at: Sequence[float | None],
    budgets: Sequence[int],
    ridge: float = 1e-2,
    info: dict | None = None,
    weights: Sequence[float] | None = None,
) -> Forecaster:
    """Fits the censored, truncated log-normal regression (module docstring).

    Args:
        signals: (n, len(SIGNALS)) signals of n examples (a run at a cutoff).
        steps: each example's cutoff step t (the forecast knows G > t).
        generalized_at: each example's true step, None if not within its budget.
        budgets: each example's step budget (its run's ``max_steps``).
        ridge: L2 penalty on the standardized weights. Defaults to `1e-2`.
        info: stored with the coefficients (e.g. the corpus it was fitted on).
        weights: each example's weight in the likelihood (e.g. 1 / its run's
            number of examples, so that every run counts once), each finite and
            >= 0, not all 0; None: 1 each.

    Raises:
        ValueError: ``ridge`` or a ``weights`` entry negative or not finite,
            or examples that cannot be fitted (the message names the argument).
        TypeError: ``info`` not a dict.
    """
    ridge = validate_float_arg(ridge, "ridge")
    if info is not None and not isinstance(info, Mapping):
        raise TypeError(
            f"info must be a dict or None. Received: info of type {type(info).__name__}"
        )
    x, steps, known, y, weight = _examples(
        signals, steps, generalized_at, budgets, weights
    )
    n = len(x)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-12] = 1.0
    z = (x - mean) / scale
    log_t = np.log(steps)

    def loss(theta):
        w, b, log_sigma = theta[:-2], theta[-2], theta[-1]
        sigma = math.exp(log_sigma)
        mu = z @ w + b
        r = (y - mu) / sigma
        # conditioned on G > t: each density and survival is divided by P(G > t)
        total = np.sum(weight * special.log_ndtr(-((log_t - mu) / sigma)))
        total -= np.sum(weight[known] * (-0.5 * r[known] ** 2 - log_sigma))
        total -= np.sum(weight[~known] * special.log_ndtr(-r[~known]))  # G > B
        return total / n + ridge * float(w @ w)

    start = np.zeros(z.shape[1] + 2)
    start[-2] = float(np.mean(y))
    start[-1] = math.log(max(float(np.std(y)), 0.1))
    result = optimize.minimize(loss, start, method="L-BFGS-B")
    theta = result.x
    return Forecaster(
        SIGNALS,
        mean,
        scale,
        theta[:-2],
        float(theta[-2]),
        float(math.exp(theta[-1])),
        dict(info or {}),
    )


def _examples(signals, steps, generalized_at, budgets, weights):
    """The fit's examples as arrays, refused where they cannot be fitted."""
    x = np.asarray(signals, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(SIGNALS) or not np.all(np.isfinite(x)):
        raise ValueError(
            f"signals must be a finite (n, {len(SIGNALS)}) array, one row of "
            f"read_signals per example. Received: shape {x.shape}"
        )
    n = len(x)
    columns = {"steps": steps, "generalized_at": generalized_at, "budgets": budgets}
    if weights is not None:
        columns["weights"] = weights
    lengths = {name: len(values) for name, values in columns.items()}
    if any(length != n for length in lengths.values()):
        raise ValueError(
            f"steps, generalized_at, budgets and weights need one entry per row of "
            f"signals ({n}). Received: lengths {lengths}"
        )
    steps = np.array([validate_int_arg(s, "steps") for s in steps], dtype=np.float64)
    budgets = np.array([validate_int_arg(b, "budgets") for b in budgets], np.float64)
    if n < x.shape[1] + 2:
        raise ValueError(
            f"fitting needs more examples than signals. Received: {n} examples"
        )
    known = np.array([g is not None for g in generalized_at])
    ends = np.array(
        [
            validate_float_arg(g, "generalized_at", allow_minimum=False)
            if g is not None
            else b
            for g, b in zip(generalized_at, budgets)
        ]
    )
    if np.any(ends <= steps):
        first = int(np.argmax(ends <= steps))
        raise ValueError(
            "each example is cut before its run generalized (or its budget), "
            "generalized_at (or budget) > step. Received: example "
            f"{first} with step {int(steps[first])} and {ends[first]:g}"
        )
    weight = (
        np.ones(n)
        if weights is None
        else np.array([validate_float_arg(w, "weights") for w in weights])
    )
    if not weight.sum() > 0:
        raise ValueError("weights must not all be 0. Received: weights summing to 0")
    return x, steps, known, np.log(ends), weight / weight.mean()
