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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import optimize, special

from keras_grok.forecast.signals import SIGNALS

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


@dataclass(frozen=True)
class Forecaster:
    """Coefficients of the fitted regression (see the module docstring)."""

    signals: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    intercept: float
    sigma: float
    info: dict = field(default_factory=dict)

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
        signals = tuple(data["signals"])
        if signals != SIGNALS:
            raise ValueError(
                "the forecaster was fitted on other signals than this version reads: "
                f"refit it (keras-grok run recipes/forecast_corpus.py). Received: "
                f"signals={list(signals)}, expected {list(SIGNALS)}"
            )
        return cls(
            signals,
            np.asarray(data["mean"], dtype=np.float64),
            np.asarray(data["scale"], dtype=np.float64),
            np.asarray(data["weights"], dtype=np.float64),
            float(data["intercept"]),
            float(data["sigma"]),
            dict(data.get("info", {})),
        )

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Forecaster:
        return cls.from_json(json.loads(Path(path).read_text()))


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
            number of examples, so that every run counts once); None: 1 each.
    """
    x = np.asarray(signals, dtype=np.float64)
    n = len(x)
    if n < x.shape[1] + 2:
        raise ValueError(
            f"fitting needs more examples than signals. Received: {n} examples"
        )
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-12] = 1.0
    z = (x - mean) / scale
    known = np.array([g is not None for g in generalized_at])
    y = np.log([g if g is not None else b for g, b in zip(generalized_at, budgets)])
    log_t = np.log(np.maximum(np.asarray(steps, dtype=np.float64), 1.0))
    weight = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    weight = weight / weight.mean()

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
