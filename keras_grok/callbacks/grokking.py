"""GrokkingMonitor: train and test loss and accuracy at scheduled steps."""

from __future__ import annotations

import math
import time
import warnings

import keras
import numpy as np

from keras_grok.callbacks.monitor import ScheduledMonitor
from keras_grok.callbacks.schedule import ScheduleSpec


class GrokkingMonitor(ScheduledMonitor):
    """Measures loss and accuracy on the whole train and test sets at scheduled steps.

    Grokking (Power et al., 2022) is test accuracy rising long after the training
    set is fit. This monitor evaluates both sets in inference mode at log-spaced
    optimizer steps (not epochs, so full-batch and mini-batch training read alike),
    logs ``train_loss``, ``train_accuracy``, ``test_loss`` and ``test_accuracy``, and
    records ``memorized_at`` (the first step with train accuracy >= ``threshold``)
    and ``generalized_at`` (the same for test accuracy). A non-finite train loss
    stops training and is recorded as ``diverged_at``; integer labels outside the
    model's output range raise ``ValueError``. Keras' own ``loss`` and
    ``accuracy`` logs are running averages over an epoch in training mode; these are
    exact figures of the current weights.

    Args:
        train_data: ``(x, y)`` arrays of the training set; ``y`` holds integer labels
            or one-hot rows.
        test_data: ``(x, y)`` arrays of the test set, or None. Defaults to `None`.
        schedule: when to measure (see ``ScheduledMonitor``).
            Defaults to `"geometric"`.
        threshold: accuracy that counts as memorized / generalized.
            Defaults to `0.99`.
        patience: if not None, stop training at the first measurement at least
            ``patience`` steps after ``generalized_at``. Defaults to `None`.
        batch_size: examples per inference call. Defaults to `4096`.

    Example:
    ```python
    monitor = GrokkingMonitor((x_train, y_train), (x_test, y_test), patience=500)
    model.fit(x_train, y_train, epochs=1000, callbacks=[monitor], verbose=0)
    monitor.memorized_at, monitor.generalized_at
    ```
    """

    metric_names = ("train_loss", "train_accuracy", "test_loss", "test_accuracy")

    def __init__(
        self,
        train_data: tuple,
        test_data: tuple | None = None,
        schedule: ScheduleSpec = "geometric",
        threshold: float = 0.99,
        patience: int | None = None,
        batch_size: int = 4096,
    ):
        super().__init__(schedule)
        self.data = {"train": _as_pair(train_data, "train_data")}
        if test_data is not None:
            self.data["test"] = _as_pair(test_data, "test_data")
        if not 0 < threshold <= 1:
            raise ValueError(
                f"threshold must be in (0, 1]. Received: threshold={threshold}"
            )
        if patience is not None and patience < 0:
            raise ValueError(
                f"patience must be >= 0 or None. Received: patience={patience}"
            )
        self.threshold = float(threshold)
        self.patience = patience
        self.batch_size = int(batch_size)
        self.wall_time = 0.0
        self.diverged_at: int | None = None

    def on_train_begin(self, logs=None):
        self.diverged_at = None
        super().on_train_begin(logs)
        self._loss_fn = _loss_function(self.model)
        self._started = time.perf_counter()

    def on_train_end(self, logs=None):
        super().on_train_end(logs)
        self.wall_time = time.perf_counter() - self._started

    def measure(self, step: int) -> dict[str, float]:
        values = {}
        for split, (x, y) in self.data.items():
            predictions = _predict(self.model, x, self.batch_size)
            _check_labels(y, predictions.shape[-1], split)
            values[f"{split}_accuracy"] = _accuracy(y, predictions)
            values[f"{split}_loss"] = _mean_loss(self._loss_fn, y, predictions)
        if not math.isfinite(values["train_loss"]) and self._loss_fn is not None:
            # Diverged: nothing more to learn from this run.
            self.diverged_at = self.diverged_at or step
            self.model.stop_training = True
        generalized = self.generalized_at
        if generalized is None and values.get("test_accuracy", 0.0) >= self.threshold:
            generalized = step
        if (
            self.patience is not None
            and generalized is not None
            and step >= generalized + self.patience
        ):
            self.model.stop_training = True
        return values

    def _first_step(self, name: str) -> int | None:
        for record in self.records:
            if record.get(name, 0.0) >= self.threshold:
                return int(record["step"])
        return None

    @property
    def memorized_at(self) -> int | None:
        """First measured step with train accuracy >= threshold, or None."""
        return self._first_step("train_accuracy")

    @property
    def generalized_at(self) -> int | None:
        """First measured step with test accuracy >= threshold, or None."""
        return self._first_step("test_accuracy")

    def summary(self) -> dict:
        """memorized_at, generalized_at, the final figures and the last step."""
        latest = self.latest
        return {
            "memorized_at": self.memorized_at,
            "generalized_at": self.generalized_at,
            "diverged_at": self.diverged_at,
            "threshold": self.threshold,
            "final_step": latest.get("step"),
            **{f"final_{name}": latest.get(name) for name in self.metric_names},
        }


def _as_pair(data, name: str) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ValueError(
            f"{name} must be an (x, y) pair of arrays. Received: {type(data)}"
        )
    x, y = (np.asarray(v) for v in data)
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(
            f"{name} must hold as many labels as inputs, at least one. "
            f"Received: {len(x)} inputs, {len(y)} labels"
        )
    return x, y


def _loss_function(model: keras.Model):
    loss = getattr(model, "loss", None)
    if loss is None:
        return None
    try:
        return keras.losses.get(loss)
    except (ValueError, TypeError):
        warnings.warn(
            f"GrokkingMonitor cannot evaluate the model's loss {loss!r}; "
            "train_loss and test_loss are logged as NaN.",
            stacklevel=2,
        )
        return None


def _predict(model: keras.Model, x: np.ndarray, batch_size: int) -> np.ndarray:
    chunks = [
        model.predict_on_batch(x[i : i + batch_size])
        for i in range(0, len(x), batch_size)
    ]
    return np.concatenate([np.asarray(c) for c in chunks])


def _check_labels(y: np.ndarray, num_outputs: int, split: str) -> None:
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        return
    if y.min() < 0 or y.max() >= num_outputs:
        raise ValueError(
            f"{split} labels must be in [0, {num_outputs}) for a model with "
            f"{num_outputs} outputs. Received labels in [{y.min()}, {y.max()}]"
        )


def _mean_loss(loss_fn, y: np.ndarray, predictions: np.ndarray) -> float:
    if loss_fn is None:
        return math.nan
    # A Loss object reduces; a loss function (e.g. from a string) returns one value
    # per example.
    return float(np.mean(keras.ops.convert_to_numpy(loss_fn(y, predictions))))


def _accuracy(y: np.ndarray, predictions: np.ndarray) -> float:
    labels = y.argmax(-1) if y.ndim == predictions.ndim else y.reshape(-1)
    return float(np.mean(predictions.argmax(-1) == labels))
