"""Checks of what a forecast is given: rows, rates, steps, the forecaster.

Each refuses what has no forecast with a ``ValueError`` (``TypeError`` for a value
of the wrong kind) naming the argument, as Keras does ("... Received: ..."), and
turns what has one into plain Python numbers: rows read with ``csv.DictReader``
(strings) or holding NumPy scalars read like rows of floats.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

import numpy as np

from keras_grok.utils.argument_validation import validate_float_arg


def measured_rows(rows) -> list[dict]:
    """``rows`` as dicts of floats, sorted by step; refuses what is not rows.

    Each row must be a mapping with a whole, non-negative ``step``; its other
    values are read as floats where they are numbers (or number strings) and
    dropped where not. At least one row must hold a finite ``train_accuracy``
    (a ``GrokkingMonitor``'s), which every signal is read against.
    """
    if isinstance(rows, (str, bytes, Mapping)) or not isinstance(rows, Sequence):
        raise TypeError(
            "rows must be a list of dicts (a run's metrics.csv rows). Received: "
            f"rows of type {type(rows).__name__}"
        )
    if not rows:
        raise ValueError("a forecast needs measured rows. Received: rows=[]")
    clean = []
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise TypeError(
                f"each row must be a dict. Received: rows[{index}] of type "
                f"{type(row).__name__}"
            )
        if "step" not in row:
            raise ValueError(
                f"each row needs its step. Received: rows[{index}] with keys "
                f"{sorted(map(str, row))}"
            )
        step = _number(row["step"])
        if step is None or not step.is_integer() or step < 0:
            raise ValueError(
                "a row's step must be a whole number >= 0. Received: "
                f"rows[{index}]['step']={row['step']!r}"
            )
        values = {k: _number(v) for k, v in row.items() if k != "step"}
        clean.append(
            {"step": int(step), **{k: v for k, v in values.items() if v is not None}}
        )
    clean.sort(key=lambda r: r["step"])
    if not any(math.isfinite(r.get("train_accuracy", math.nan)) for r in clean):
        raise ValueError(
            "a forecast reads the train accuracy (a GrokkingMonitor's "
            "train_accuracy), and no row holds a finite one. Received: "
            f"{len(clean)} rows with columns {sorted({k for r in clean for k in r})}"
        )
    for row in clean:
        for key in ("train_accuracy", "test_accuracy"):
            value = row.get(key, 0.0)
            if math.isfinite(value) and not 0.0 <= value <= 1.0:
                raise ValueError(
                    f"{key} is an accuracy in [0, 1]. Received: {key}={value!r} at "
                    f"step {row['step']}"
                )
    return clean


def _number(value) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def time_scale(learning_rate, weight_decay) -> float:
    """1 / (learning_rate * weight_decay), refused unless both are > 0 and it is
    a finite, normal float."""
    rate = validate_float_arg(learning_rate, "learning_rate", allow_minimum=False)
    decay = validate_float_arg(weight_decay, "weight_decay", allow_minimum=False)
    product = rate * decay
    tiny = np.finfo(np.float64).tiny
    if not (tiny <= product < math.inf and tiny <= 1.0 / product < math.inf):
        raise ValueError(
            "the forecast's time scale 1 / (learning_rate * weight_decay) must be "
            f"a finite number. Received: learning_rate={rate!r}, "
            f"weight_decay={decay!r}"
        )
    return 1.0 / product


def as_forecaster(value):
    """A ``Forecaster`` from one, a path to its JSON file or its JSON dict."""
    from keras_grok.forecast.model import Forecaster

    if isinstance(value, Forecaster):
        return value
    if isinstance(value, (str, os.PathLike)):
        return Forecaster.load(value)
    if isinstance(value, Mapping):
        return Forecaster.from_json(dict(value))
    raise TypeError(
        "forecaster must be a keras_grok.forecast.Forecaster, the path of its "
        f"JSON file or its JSON dict. Received: forecaster of type "
        f"{type(value).__name__}"
    )
