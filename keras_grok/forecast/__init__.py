"""Forecast grokking: from the first part of a run, will it generalize, and when?

```python
from keras_grok import forecast

f = forecast.forecast(rows, learning_rate=1e-3, weight_decay=1.0, budget=30000)
f.generalized_at, (f.low, f.high), f.probability  # median, 80% interval, P(<= budget)
forecast.forecast_run("runs/modadd")  # a run folder, finished or not
```

The forecast reads the signals paper A's time-scale argument names
(``keras_grok.forecast.signals``: learning rate x weight decay, the memorized
step, the post-fit decay rates of RNC1 and of the feature norm, the fall of the
test loss) and a censored log-normal regression fitted on a corpus of runs
(``keras_grok.forecast.model``; the corpus is ``recipes/forecast_corpus.py``, its
coefficients ship as ``forecaster.json``). ``keras_grok.callbacks.ForecastMonitor``
logs it while a run trains; ``keras-grok forecast RUN_DIR`` prints it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from keras_grok.forecast.inputs import as_forecaster, measured_rows, time_scale
from keras_grok.forecast.model import Forecast, Forecaster, fit_forecaster
from keras_grok.forecast.signals import SIGNALS, read_signals
from keras_grok.utils.argument_validation import ACCURACY_LEVEL, validate_int_arg

__all__ = [
    "SIGNALS",
    "Forecast",
    "Forecaster",
    "default_forecaster",
    "fit_forecaster",
    "forecast",
    "forecast_run",
    "read_signals",
]

FORECASTER_FILE = Path(__file__).with_name("forecaster.json")
"""The coefficients fitted on the corpus (``recipes/forecast_corpus.py``)."""

_default: Forecaster | None = None


def default_forecaster() -> Forecaster:
    """The forecaster shipped with the package (fitted on the whole corpus)."""
    global _default
    if _default is None:
        _default = Forecaster.load(FORECASTER_FILE)
    return _default


def generalized_step(rows: Sequence[dict], test_threshold: float) -> int | None:
    """The first step of ``rows`` with test accuracy >= ``test_threshold``.

    Raises:
        ValueError: ``test_threshold`` is not in ``(0, 1]``.
    """
    test_threshold = ACCURACY_LEVEL.validate(test_threshold, "test_threshold")
    for row in sorted(rows, key=lambda r: r["step"]):
        value = row.get("test_accuracy")
        if isinstance(value, float) and value >= test_threshold:
            return int(row["step"])
    return None


def forecast(
    rows: Sequence[dict],
    learning_rate: float,
    weight_decay: float,
    step: int | None = None,
    budget: int | None = None,
    threshold: float = 0.99,
    test_threshold: float | None = None,
    forecaster: Forecaster | None = None,
) -> Forecast:
    """Forecasts ``generalized_at`` from a run's measured rows up to ``step``.

    Args:
        rows: the run's rows (``metrics.csv``, as floats or as the strings
            ``csv.DictReader`` reads), each with a ``step`` and a
            ``train_accuracy`` somewhere, and any of ``test_accuracy``,
            ``test_rnc1``/``train_rnc1``, ``test_mean_feature_norm``,
            ``test_loss``.
        learning_rate: eta of the run's optimizer (> 0).
        weight_decay: its decoupled weight decay lambda (> 0).
        step: forecast as of this step, between the first and the last row's;
            None: the last row's. Defaults to `None`.
        budget: the step budget whose probability is asked (>= 1); None:
            none. Defaults to `None`.
        threshold: train accuracy that counts as memorized. Defaults to `0.99`.
        test_threshold: test accuracy that counts as generalized; None takes
            ``threshold``. Defaults to `None`.
        forecaster: the fitted regression (a ``Forecaster``, its JSON file or
            dict); None: ``default_forecaster()``. Defaults to `None`.

    Returns:
        A ``Forecast``; once the rows show the run generalized (test accuracy
        >= ``test_threshold`` by ``step``), the observed step, interval collapsed.

    Raises:
        ValueError: an argument with no forecast (the message names it).
        TypeError: rows or forecaster of the wrong kind.
    """
    rows = measured_rows(rows)
    time_scale(learning_rate, weight_decay)
    threshold = ACCURACY_LEVEL.validate(threshold, "threshold")
    test_threshold = (
        threshold
        if test_threshold is None
        else ACCURACY_LEVEL.validate(test_threshold, "test_threshold")
    )
    first, last = rows[0]["step"], rows[-1]["step"]
    if step is None:
        step = last
    step = validate_int_arg(step, "step", minimum=max(first, 1))
    if step > last:
        raise ValueError(
            f"step must be at most the last measured step ({last}, the largest "
            f"step of the {len(rows)} rows given): what happened after it is not "
            f"in the rows. Received: step={step}"
        )
    if budget is not None:
        budget = validate_int_arg(budget, "budget")
    forecaster = (
        default_forecaster() if forecaster is None else as_forecaster(forecaster)
    )
    seen = [r for r in rows if r["step"] <= step]
    reached = generalized_step(seen, test_threshold)
    signals = read_signals(
        seen, step, learning_rate, weight_decay, threshold, test_threshold
    )
    if reached is not None:
        probability = None if budget is None else float(reached <= budget)
        return Forecast(
            int(step), float(reached), float(reached), float(reached), budget,
            probability, dict(zip(SIGNALS, map(float, signals))),
        )  # fmt: skip
    return forecaster.predict(signals, step, budget)


def forecast_run(
    run_dir: str | os.PathLike,
    step: int | None = None,
    budget: int | None = None,
    forecaster: Forecaster | None = None,
) -> Forecast:
    """Forecasts a run folder (finished or not) from its rows and ``config.json``.

    The learning rate, weight decay, thresholds and budget (``max_steps``) are the
    run's config's; ``budget`` overrides the last.
    """
    from keras_grok.runs.run_folder import RunFolder

    if not isinstance(run_dir, (str, os.PathLike)):
        raise TypeError(
            "run_dir must be the path of a run folder. Received: run_dir of type "
            f"{type(run_dir).__name__}"
        )
    folder = RunFolder(Path(run_dir))
    saved = folder.saved_config()
    if saved is None or not folder.metrics.is_file():
        nested = sorted(p.parent.name for p in folder.path.glob("runs/*/metrics.csv"))
        hint = (
            f"it holds nested runs: forecast one of them, e.g. {run_dir}/runs/"
            f"{nested[0]}"
            if nested
            else "pass the --out folder of a keras-grok run"
        )
        raise ValueError(
            f"{run_dir} is not a run folder of one training (no config.json and "
            f"metrics.csv): {hint}"
        )
    config = saved.get("config")
    if not isinstance(config, dict):
        raise ValueError(
            f"{folder.config} must hold the run's config as an object under "
            f"'config'. Received: config={config!r}"
        )
    missing = [k for k in ("learning_rate", "weight_decay") if k not in config]
    if missing:
        raise ValueError(
            f"{run_dir}'s config has no {' and no '.join(missing)}: the forecast's "
            "time scale is 1 / (learning_rate * weight_decay). Received: config "
            f"keys {sorted(config)}"
        )
    rows = folder.read_measurements()
    if not rows:
        raise ValueError(f"{run_dir} has no measured rows yet: wait for the first")
    try:  # the run's own values: the message names its config.json
        time_scale(config["learning_rate"], config["weight_decay"])
        threshold = ACCURACY_LEVEL.validate(config.get("threshold", 0.99), "threshold")
        test_threshold = ACCURACY_LEVEL.validate(
            config.get("test_threshold", threshold), "test_threshold"
        )
        if budget is None and config.get("max_steps") is not None:
            budget = validate_int_arg(config["max_steps"], "max_steps")
    except (TypeError, ValueError) as error:
        raise ValueError(f"{folder.config}: {error}") from None
    return forecast(
        rows,
        config["learning_rate"],
        config["weight_decay"],
        step=step,
        budget=budget,
        threshold=threshold,
        test_threshold=test_threshold,
        forecaster=forecaster,
    )
