"""GrokkingMonitor: train and test loss and accuracy at scheduled steps."""

from __future__ import annotations

import math
import time
import warnings

import keras

from keras_grok import losses as grok_losses  # a module: see utils/registration
from keras_grok.analysis.events import first_step_at
from keras_grok.callbacks.measurement_requests import LossAndAccuracy, PassResults
from keras_grok.callbacks.schedule import ScheduleSpec
from keras_grok.callbacks.scheduled_monitor import ScheduledMonitor
from keras_grok.runs.figures import Panel
from keras_grok.utils.argument_validation import ACCURACY_LEVEL, validate_int_arg
from keras_grok.utils.labelled_data import validate_labelled_pair

ACCURACY = Panel("accuracy", ("train_accuracy", "test_accuracy"), limits=(-0.02, 1.02))
LOSS = Panel("loss", ("train_loss", "test_loss"), log_y=True)


class GrokkingMonitor(ScheduledMonitor):
    """Measures loss and accuracy on the whole train and test sets at scheduled steps.

    Grokking (Power et al., 2022) is test accuracy rising long after the training
    set is fit. This monitor evaluates both sets in inference mode at scheduled
    optimizer steps (not epochs, so full-batch and mini-batch training read alike),
    logs ``train_loss``, ``train_accuracy``, ``test_loss`` and ``test_accuracy``, and
    records ``memorized_at`` (the first measured step with train accuracy >=
    ``threshold``) and ``generalized_at`` (the first with test accuracy >=
    ``test_threshold``). A set's loss is the mean over its examples of the compiled
    loss's per-example values. A non-finite train loss stops training and is
    recorded as ``diverged_at``. Keras' own ``loss`` and ``accuracy`` logs are
    running averages over an epoch in training mode; these are exact metrics of the
    current weights. Other monitors on the same arrays share its forward pass.

    Args:
        train_data: ``(x, y)`` arrays of the training set; ``y`` holds integer labels
            or one-hot rows.
        test_data: ``(x, y)`` arrays of the test set, or None. Defaults to `None`.
        schedule: when to measure (see ``ScheduledMonitor``).
            Defaults to `"geometric"`.
        threshold: train accuracy that counts as memorized. Defaults to `0.99`.
        test_threshold: test accuracy that counts as generalized; None takes
            ``threshold``. Defaults to `None`.
        patience: if not None, stop training at the first measurement at least
            ``patience`` steps after ``generalized_at``; needs ``test_data``.
            Defaults to `None`.
        batch_size: rows per compiled call. Defaults to `16384`.

    Example:
    ```python
    monitor = GrokkingMonitor((x_train, y_train), (x_test, y_test), patience=500)
    model.fit(x_train, y_train, epochs=1000, callbacks=[monitor], verbose=0)
    monitor.memorized_at, monitor.generalized_at
    ```
    """

    progress_keys = ("train_accuracy", "test_accuracy")

    def __init__(
        self,
        train_data: tuple,
        test_data: tuple | None = None,
        schedule: ScheduleSpec = "geometric",
        threshold: float = 0.99,
        test_threshold: float | None = None,
        patience: int | None = None,
        batch_size: int = 16384,
    ):
        super().__init__(schedule, batch_size)
        self.data = {"train": validate_labelled_pair(train_data, "train_data")}
        if test_data is not None:
            self.data["test"] = validate_labelled_pair(test_data, "test_data")
        self.threshold = ACCURACY_LEVEL.validate(threshold, "threshold")
        self.test_threshold = (
            self.threshold
            if test_threshold is None
            else ACCURACY_LEVEL.validate(test_threshold, "test_threshold")
        )
        self.metric_names = tuple(
            f"{split}_{name}" for split in self.data for name in ("loss", "accuracy")
        )
        self.patience = (
            None
            if patience is None
            else validate_int_arg(patience, "patience", minimum=0)
        )
        if self.patience is not None and test_data is None:
            raise ValueError(
                "patience stops training a number of steps after test accuracy "
                "reaches test_threshold, so it needs test_data; without it "
                "training would never stop early. Pass test_data=(x_test, y_test) "
                f"or patience=None. Received: patience={patience}, test_data=None"
            )
        self.wall_time = 0.0
        self.diverged_at: int | None = None

    def needs(self):
        return [(LossAndAccuracy(), data) for data in self.data.values()]

    def panels(self) -> tuple[Panel, ...]:
        return (ACCURACY, LOSS)

    def schedule_levels(self) -> dict[str, float]:
        return self.levels(self.threshold, self.test_threshold, "test" in self.data)

    @staticmethod
    def levels(
        threshold: float, test_threshold: float | None, has_test: bool
    ) -> dict[str, float]:
        """The accuracy levels an adaptive schedule watches (memorized,
        generalized); ``test_threshold`` None takes ``threshold``."""
        levels = {"train_accuracy": threshold}
        if has_test:
            levels["test_accuracy"] = (
                threshold if test_threshold is None else test_threshold
            )
        return levels

    def on_train_begin(self, logs=None):
        self.diverged_at = None
        self._loss_diverged = False
        super().on_train_begin(logs)
        self._check_labels()
        loss = getattr(self.trained_model, "loss", None)
        loss_fn = grok_losses.per_example_loss(loss)
        self._loss_known = loss_fn is not None and self._gives_one_value_per_row(
            loss_fn
        )
        if not self._loss_known:
            reason = (
                "the model was compiled with loss=None (a loss added with "
                "add_loss is not a per-example loss of (y, outputs))"
                if loss is None
                else "the model's loss function returns one value per batch (a "
                "scalar), so each data set's mean cannot be read from it: return "
                "one value per example (no mean), as Keras' own losses do"
                if loss_fn is not None
                else f"it cannot evaluate the model's loss {loss!r} (one per "
                "output, or one with ignore_class)"
            )
            warnings.warn(
                f"GrokkingMonitor: {reason}; train_loss and test_loss are logged "
                "as NaN.",
                stacklevel=2,
            )
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        # Keras' epoch loss, like TerminateOnNaN: training that diverged between
        # two measurements stops here, and the final measurement records it.
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.trained_model.stop_training = True
            self._loss_diverged = True
        super().on_epoch_end(epoch, logs)
        if getattr(self, "_loss_diverged", False) and self.diverged_at is None:
            self.diverged_at = self._completed

    def on_train_end(self, logs=None):
        super().on_train_end(logs)
        self.wall_time = time.perf_counter() - self._started

    def _gives_one_value_per_row(self, loss_fn) -> bool:
        # A loss function may reduce the batch itself (a scalar), which the
        # measurement pass cannot split into its data sets: try two rows.
        data = next(iter(self.data.values()))
        try:
            outputs = self.trained_model(data.x[:2], training=False)
            values = loss_fn(data.y[:2], outputs)
        except Exception:  # noqa: BLE001 - a probe: the pass reports real errors
            return True
        return len(tuple(keras.ops.shape(values))) == 1

    def _check_labels(self) -> None:
        outputs = getattr(self.trained_model, "outputs", None)
        try:
            width = int(outputs[0].shape[-1])
        except (AttributeError, IndexError, TypeError, ValueError):
            return  # a subclassed model: its width is known only once it runs
        if width == 1:
            raise ValueError(
                "GrokkingMonitor measures classifiers with one output per class "
                "(accuracy is the argmax of K >= 2 outputs). Received: a model with "
                "1 output unit (a sigmoid binary classifier?): end it with Dense(2) "
                "and SparseCategoricalCrossentropy instead"
            )
        for split, data in self.data.items():
            if data.labels.max() >= width:
                raise ValueError(
                    f"{split} labels must be in [0, {width}) for a model with "
                    f"{width} outputs. Received labels in "
                    f"[{data.labels.min()}, {data.labels.max()}]"
                )

    def measure(self, step: int, results: PassResults) -> dict[str, float]:
        values = {}
        for split, data in self.data.items():
            result = results.get(LossAndAccuracy(), data)
            values[f"{split}_loss"] = result["loss"]
            values[f"{split}_accuracy"] = result["accuracy"]
        model = self.trained_model
        if self._loss_known and not math.isfinite(values["train_loss"]):
            # Diverged: nothing more to learn from this run, and the accuracy of
            # non-finite outputs (argmax of NaN) is no measurement.
            self.diverged_at = self.diverged_at or step
            model.stop_training = True
            values = {name: math.nan for name in values}
        generalized = self.generalized_at
        if (
            generalized is None
            and values.get("test_accuracy", 0.0) >= self.test_threshold
        ):
            generalized = step
        if (
            self.patience is not None
            and generalized is not None
            and step >= generalized + self.patience
        ):
            model.stop_training = True
        return values

    @property
    def memorized_at(self) -> int | None:
        """First measured step with train accuracy >= threshold, or None."""
        return first_step_at(
            self.records, "train_accuracy", self.threshold, missing_ok=True
        )

    @property
    def generalized_at(self) -> int | None:
        """First measured step with test accuracy >= test_threshold, or None."""
        return first_step_at(
            self.records, "test_accuracy", self.test_threshold, missing_ok=True
        )

    def summary(self) -> dict:
        """Grokking times, the best and final metrics and the last step."""
        latest = self.latest
        tests = [
            (r["test_accuracy"], -r["step"])
            for r in self.records
            if math.isfinite(r.get("test_accuracy", math.nan))
        ]
        best, best_step = max(tests, default=(None, None))
        return {
            "memorized_at": self.memorized_at,
            "generalized_at": self.generalized_at,
            "diverged_at": self.diverged_at,
            "threshold": self.threshold,
            "test_threshold": self.test_threshold,
            "best_test_accuracy": best,
            "best_test_step": -best_step if best_step is not None else None,
            "final_step": latest.get("step"),
            **super().summary(),
        }
