"""StepProgress: Keras' progress bar over optimizer steps, updated at measurements."""

from __future__ import annotations

import keras

from keras_grok.callbacks.metrics_recorder import merged_records_after, monitor_list
from keras_grok.callbacks.scheduled_monitor import ScheduledMonitor


class StepProgress(keras.callbacks.Callback):
    """Shows one progress bar over all training steps, with the monitors' metrics.

    ``fit``'s own bar restarts every epoch, which says little when an epoch is a
    handful of steps and a run is thousands of epochs. This bar counts optimizer
    steps and moves when a monitor measures (on a log schedule), showing its latest
    values. Use it with ``fit(..., verbose=0)`` and after the monitors.

    Its total is the run's last step, unless a monitor may stop training early (a
    ``GrokkingMonitor`` with ``patience``): then the end is unknown and the bar
    counts steps without a total (as Keras' bar with ``target=None``) until test
    accuracy reaches the threshold, and from then on its total is the step the
    run is expected to stop at, ``generalized_at + patience`` (at most the last
    step).

    Args:
        monitors: the ``ScheduledMonitor``s whose metrics to show.
        keys: which metrics to show. Defaults to `None` (each monitor's
            ``progress_keys``).
    """

    def __init__(self, monitors: list[ScheduledMonitor], keys: list[str] | None = None):
        super().__init__()
        self.monitors = monitor_list(monitors, "StepProgress")
        known = [n for m in self.monitors for n in m.metric_names]
        # By default each monitor's progress keys that it logs (a GrokkingMonitor
        # without test data logs no test_accuracy).
        self.keys = (
            list(keys)
            if keys
            else list(
                dict.fromkeys(
                    k for m in self.monitors for k in m.progress_keys if k in known
                )
            )
        )
        unknown = [k for k in self.keys if k not in known]
        if unknown:
            raise ValueError(
                f"keys must name metrics the monitors log: {known}. "
                f"Received: keys={unknown}"
            )

    def on_train_begin(self, logs=None):
        steps, epochs = self.params.get("steps"), self.params.get("epochs", 1)
        self._total = steps * epochs if steps else None
        self._stoppers = [
            m for m in self.monitors if getattr(m, "patience", None) is not None
        ]
        self._bar = keras.utils.Progbar(
            self._expected_end(), stateful_metrics=self.keys, unit_name="step"
        )
        self._shown = max((m.latest.get("step", -1) for m in self.monitors), default=-1)

    def on_train_batch_begin(self, batch, logs=None):
        self._update()

    def on_epoch_end(self, epoch, logs=None):
        self._update()

    def on_train_end(self, logs=None):
        self._update()
        if self._shown >= 0:  # end the bar's line, also when training stopped early
            self._bar.update(self._shown, finalize=True)

    def _update(self) -> None:
        for record in merged_records_after(self.monitors, self._shown):
            values = [(k, record[k]) for k in self.keys if k in record]
            end = self._expected_end()
            self._bar.target = None if end is None else max(end, record["step"])
            self._bar.update(record["step"], values=values)
            self._shown = record["step"]

    def _expected_end(self) -> int | None:
        """The last step of the run as far as it is known now; None: unknown."""
        if not self._stoppers:
            return self._total
        ends = [
            m.generalized_at + m.patience
            for m in self._stoppers
            if m.generalized_at is not None
        ]
        if not ends:
            return None
        return min(ends) if self._total is None else min(*ends, self._total)
