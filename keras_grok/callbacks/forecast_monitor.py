"""ForecastMonitor: the forecast of the generalization step, logged as a run goes."""

from __future__ import annotations

import math

import keras
import numpy as np

from keras_grok.callbacks.measurement_requests import PassResults
from keras_grok.callbacks.scheduled_monitor import ScheduledMonitor
from keras_grok.forecast.inputs import as_forecaster, time_scale
from keras_grok.forecast.signals import memorized_step
from keras_grok.runs.figures import Panel
from keras_grok.utils.argument_validation import (
    ACCURACY_LEVEL,
    PROBABILITY,
    validate_float_arg,
    validate_int_arg,
)

FORECAST = Panel(
    "forecast of generalized_at",
    (
        "forecast_generalized_at",
        "forecast_generalized_low",
        "forecast_generalized_high",
    ),
    log_y=True,
    horizontal_marks=("generalized",),
)


class ForecastMonitor(ScheduledMonitor):
    """Logs a forecast of ``generalized_at`` whenever the other monitors measure.

    Reads the rows the other monitors of the model already measured (train and
    test accuracy, RNC1, the feature norm, the test loss: ``GrokkingMonitor`` and
    ``CollapseMonitor``) and forecasts with ``keras_grok.forecast``; it runs no
    pass of its own, so it costs the model nothing but a few microseconds of
    host arithmetic per measurement. Put it after the monitors it reads (it
    records after them at a shared step in any case).

    Logs ``forecast_generalized_at`` (the median), ``forecast_generalized_low``
    and ``forecast_generalized_high`` (the 80% interval) and
    ``forecast_probability`` (P(generalized within ``budget``)). With
    ``stop_below``, training stops once the run has memorized and that
    probability falls below it (``stopped_at`` in the summary).

    Args:
        learning_rate: eta; None reads the optimizer's (at its current step).
            Defaults to `None`.
        weight_decay: the decoupled weight decay lambda; None reads the
            optimizer's (AdamW's ``weight_decay``). Defaults to `None`.
        budget: the step budget of ``forecast_probability``; None: the fit's
            last step. Defaults to `None`.
        threshold: train accuracy that counts as memorized. Defaults to `0.99`.
        test_threshold: test accuracy that counts as generalized; None takes
            ``threshold``. Defaults to `None`.
        stop_below: stop training when the probability of generalizing within
            ``budget`` falls below this (after memorization); None never stops.
            Defaults to `None`.
        forecaster: a fitted ``keras_grok.forecast.Forecaster`` (or the path of
            its JSON file, or its dict); None: the one shipped with the package.
            Defaults to `None`.

    Example:
    ```python
    model.fit(x, y, epochs=..., callbacks=[
        GrokkingMonitor((x, y), (x_test, y_test)),
        CollapseMonitor((x, y), (x_test, y_test), layer="features"),
        ForecastMonitor(),
    ])
    ```
    """

    metric_names = (
        "forecast_generalized_at",
        "forecast_generalized_low",
        "forecast_generalized_high",
        "forecast_probability",
    )
    progress_keys = ("forecast_generalized_at",)
    reads_other_monitors = True

    def __init__(
        self,
        learning_rate: float | None = None,
        weight_decay: float | None = None,
        budget: int | None = None,
        threshold: float = 0.99,
        test_threshold: float | None = None,
        stop_below: float | None = None,
        forecaster=None,
    ):
        super().__init__(schedule=None)
        self.learning_rate = _positive(learning_rate, "learning_rate")
        self.weight_decay = _positive(weight_decay, "weight_decay")
        self.budget = None if budget is None else validate_int_arg(budget, "budget")
        self.threshold = ACCURACY_LEVEL.validate(threshold, "threshold")
        self.test_threshold = (
            self.threshold
            if test_threshold is None
            else ACCURACY_LEVEL.validate(test_threshold, "test_threshold")
        )
        self.stop_below = (
            None
            if stop_below is None
            else PROBABILITY.validate(stop_below, "stop_below")
        )
        self.forecaster = None if forecaster is None else as_forecaster(forecaster)
        self.stopped_at: int | None = None
        self._restored_stop: int | None = None

    def panels(self) -> tuple[Panel, ...]:
        return (FORECAST,)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        optimizer = self.trained_model.optimizer
        self._rate = self.learning_rate or _optimizer_value(optimizer, "learning_rate")
        self._decay = self.weight_decay or _optimizer_value(optimizer, "weight_decay")
        if not (self._rate and self._decay):
            raise ValueError(
                "ForecastMonitor needs a learning rate and a decoupled weight decay "
                "> 0 (its time scale is 1 / (learning_rate * weight_decay)): use "
                "AdamW, or pass learning_rate= and weight_decay=. Received: "
                f"optimizer={type(optimizer).__name__} with learning_rate="
                f"{self._rate}, weight_decay={self._decay}"
            )
        time_scale(self._rate, self._decay)
        self._checked_sources = False
        steps, epochs = self.params.get("steps"), self.params.get("epochs", 1)
        self._budget = self.budget or (steps * epochs if steps else None)
        # A resumed run that had stopped (killed after training) keeps its stop.
        self.stopped_at, self._restored_stop = self._restored_stop, None

    def restore(self, records: list[dict[str, float]]) -> None:
        """Sets earlier records; finds the step where they stopped training."""
        super().restore(records)
        self._restored_stop = None
        if self.stop_below is None:
            return
        for record in self.records:  # the first record the stop rule acted on
            probability = record.get("forecast_probability", math.nan)
            seen = [r for r in records if r["step"] <= record["step"]]
            if (
                probability < self.stop_below
                and memorized_step(seen, self.threshold) is not None
            ):
                self._restored_stop = record["step"]
                return

    def on_train_batch_begin(self, batch, logs=None):
        if not self._checked_sources:  # every monitor of the fit has attached now
            self._checked_sources = True
            readers = [
                m
                for m in self._coordinator.monitors
                if m is not self and "train_accuracy" in m.metric_names
            ]
            if not readers:
                raise ValueError(
                    "ForecastMonitor reads the train and test accuracy that a "
                    "GrokkingMonitor measures (and a CollapseMonitor's RNC1): add a "
                    "GrokkingMonitor(train_data, test_data) to the same fit. "
                    "Received: callbacks with the monitors "
                    f"{[type(m).__name__ for m in self._coordinator.monitors]}"
                )
        super().on_train_batch_begin(batch, logs)

    def is_due(self, step: int, final: bool = False) -> bool:
        # Whenever another monitor of the model measures: the forecast reads them.
        unmeasured = not self.records or self.records[-1]["step"] < step
        others = [m for m in self._coordinator.monitors if m is not self]
        return unmeasured and any(m.is_due(step, final) for m in others)

    def measure(self, step: int, results: PassResults) -> dict[str, float]:
        from keras_grok.forecast import forecast

        rows = [r for r in self._coordinator.history() if r["step"] <= step]
        if not any(math.isfinite(r.get("train_accuracy", math.nan)) for r in rows):
            return {name: math.nan for name in self.metric_names}  # e.g. diverged
        result = forecast(
            rows,
            self._rate,
            self._decay,
            step=step,
            budget=self._budget,
            threshold=self.threshold,
            test_threshold=self.test_threshold,
            forecaster=self.forecaster,
        )
        probability = math.nan if result.probability is None else result.probability
        memorized = result.signals.get("fitted", 0.0) > 0
        if (
            self.stop_below is not None
            and memorized
            and probability < self.stop_below
            and self.stopped_at is None
        ):
            self.trained_model.stop_training = True
            self.stopped_at = step
        return {
            "forecast_generalized_at": result.generalized_at,
            "forecast_generalized_low": result.low,
            "forecast_generalized_high": result.high,
            "forecast_probability": probability,
        }

    def summary(self) -> dict:
        return {**super().summary(), "forecast_stopped_at": self.stopped_at}


def _positive(value, name: str) -> float | None:
    if value is None:
        return None
    value = validate_float_arg(value, name, allow_minimum=False)
    if value < np.finfo(np.float64).tiny:  # its time scale would overflow
        raise ValueError(
            f"{name} must be a normal positive number (its time scale "
            f"1 / (learning_rate * weight_decay) overflows). Received: {name}={value!r}"
        )
    return value


def _optimizer_value(optimizer, name: str) -> float | None:
    value = getattr(optimizer, name, None)  # learning_rate: a schedule's current
    if value is None:
        return None
    try:
        return float(keras.ops.convert_to_numpy(value))
    except (TypeError, ValueError):
        return None
