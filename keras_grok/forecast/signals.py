"""The signals a grokking forecast reads off a run's rows up to a step.

Paper A (Sakamoto & Sato, arXiv 2509.20829) explains the delay between fitting
and generalizing by two time scales: fitting the training set, and the slower
contraction of the within-class variance of the features (collapse), which
decoupled weight decay drives at a rate set by learning rate x weight decay. So
the forecast reads, at step ``t`` (only rows with ``step <= t``):

- ``log_inverse_rate``: log(1 / (eta * lambda)), the law's time scale;
- ``log_fit``: log of the memorized step (train accuracy >= threshold); before
  it, of the step the train accuracy's latest rise projects it to (linearly
  from the rows in [t/2, t], at least ``t``, at most 10 t);
- ``log_step``: log(t), how long the run has already gone without generalizing;
- ``fitted``: 1 if memorized by ``t``, else 0;
- ``collapse_rate``: the recent decay rate of RNC1 (test RNC1, else train),
  -d log(RNC1) / d step over the rows in [t/2, t], times 1 / (eta * lambda)
  (the law's unit of time), clipped to [-1, 10];
- ``norm_rate``: the same for the mean feature norm, which shrinks with the
  weights under weight decay (the weight-norm decay the default run records);
- ``test_loss_fall``: log(peak test loss / test loss at ``t``) over [t/2, t]:
  paper A's collapse lowers the test loss before the accuracy moves;
- ``collapse_gap``: log(test RNC1 / train RNC1) at the last row: how far the
  test features are from the collapse the training features have reached. Paper
  A bounds the generalization gap by the class-conditional variance of the
  features, and this gap is what must close; on the corpus it carries what the
  train fraction does to the delay (0 without both RNC1s);
- ``test_progress``: the test accuracy at the last row over the accuracy that
  counts as generalized, in [0, 1]: whether the jump has begun (late in a run
  the forecast is then near, whatever the other signals say).

A rate needs two rows in [t/2, t]; until then it is 0. Every value is finite.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from keras_grok.forecast.inputs import measured_rows, time_scale
from keras_grok.utils.argument_validation import ACCURACY_LEVEL, validate_int_arg

SIGNALS = (
    "log_inverse_rate",
    "log_fit",
    "log_step",
    "fitted",
    "collapse_rate",
    "norm_rate",
    "test_loss_fall",
    "collapse_gap",
    "test_progress",
)


def _finite(row: dict, key: str) -> float | None:
    value = row.get(key)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def _series(rows: Sequence[dict], keys: Sequence[str]) -> list[tuple[int, float]]:
    for key in keys:
        points = [(int(r["step"]), _finite(r, key)) for r in rows]
        points = [(s, v) for s, v in points if v is not None and v > 0]
        if points:
            return points
    return []


def memorized_step(rows: Sequence[dict], threshold: float = 0.99) -> int | None:
    """The first step of ``rows`` with train accuracy >= ``threshold``, or None."""
    threshold = ACCURACY_LEVEL.validate(threshold, "threshold")
    for row in rows:
        accuracy = _finite(row, "train_accuracy")
        if accuracy is not None and accuracy >= threshold:
            return int(row["step"])
    return None


def _projected_fit(rows: Sequence[dict], step: int, threshold: float) -> float:
    points = [(int(r["step"]), _finite(r, "train_accuracy")) for r in rows]
    points = [(s, v) for s, v in points if v is not None and s >= step / 2]
    if len(points) < 2 or points[-1][0] <= points[0][0]:
        return float(step)
    (s0, v0), (s1, v1) = points[0], points[-1]
    slope = (v1 - v0) / (s1 - s0)
    if slope <= 0:
        return 10.0 * step
    return float(np.clip(s1 + (threshold - v1) / slope, step, 10.0 * step))


def _log_rate(points: list[tuple[int, float]], since: float, scale: float) -> float:
    after = [(s, v) for s, v in points if s >= since]
    if len(after) < 2 or after[-1][0] <= after[0][0]:
        return 0.0
    (s0, v0), (s1, v1) = after[0], after[-1]
    rate = -(math.log(v1) - math.log(v0)) / (s1 - s0) * scale
    return float(np.clip(rate, -1.0, 10.0))


def read_signals(
    rows: Sequence[dict],
    step: int,
    learning_rate: float,
    weight_decay: float,
    threshold: float = 0.99,
    test_threshold: float | None = None,
) -> np.ndarray:
    """The forecast's signals (``SIGNALS``, in order) at ``step`` of a run.

    Args:
        rows: the run's measured rows (``metrics.csv``), each with a ``step``;
            rows after ``step`` are ignored (see ``inputs.measured_rows``).
        step: the step the forecast is made at (>= 1).
        learning_rate: the optimizer's learning rate eta (> 0).
        weight_decay: the decoupled weight decay lambda (> 0).
        threshold: train accuracy that counts as memorized. Defaults to `0.99`.
        test_threshold: test accuracy that counts as generalized; None takes
            ``threshold``. Defaults to `None`.

    Returns:
        A float64 vector of ``len(SIGNALS)`` finite values.

    Raises:
        ValueError: bad rows, rates, step or thresholds (naming which).
    """
    inverse_rate = time_scale(learning_rate, weight_decay)
    step = validate_int_arg(step, "step")
    threshold = ACCURACY_LEVEL.validate(threshold, "threshold")
    if test_threshold is not None:
        test_threshold = ACCURACY_LEVEL.validate(test_threshold, "test_threshold")
    seen = [r for r in measured_rows(rows) if r["step"] <= step]
    fit = memorized_step(seen, threshold)
    since = step / 2
    collapse = _series(seen, ("test_rnc1", "train_rnc1"))
    norm = _series(seen, ("test_mean_feature_norm", "train_mean_feature_norm"))
    test_threshold = threshold if test_threshold is None else test_threshold
    accuracies = [_finite(r, "test_accuracy") for r in seen]
    accuracies = [a for a in accuracies if a is not None]
    progress = (
        float(np.clip(accuracies[-1] / test_threshold, 0.0, 1.0)) if accuracies else 0.0
    )
    gap = 0.0
    for row in reversed(seen):
        test, train = _finite(row, "test_rnc1"), _finite(row, "train_rnc1")
        if test and train and test > 0 and train > 0:
            gap = float(np.clip(math.log(test / train), -5.0, 5.0))
            break
    losses = [(int(r["step"]), _finite(r, "test_loss")) for r in seen]
    losses = [(s, v) for s, v in losses if v is not None and v > 0 and s >= since]
    loss_fall = 0.0
    if len(losses) >= 2:
        peak = max(v for _, v in losses)
        loss_fall = float(np.clip(math.log(peak / losses[-1][1]), 0.0, 50.0))
    return np.array(
        [
            math.log(inverse_rate),
            math.log(fit if fit is not None else _projected_fit(seen, step, threshold)),
            math.log(step),
            1.0 if fit is not None else 0.0,
            _log_rate(collapse, since, inverse_rate),
            _log_rate(norm, since, inverse_rate),
            loss_fall,
            gap,
            progress,
        ],
        dtype=np.float64,
    )
