"""One shared measurement pass per measured step for all monitors of a model.

Every ``ScheduledMonitor`` attaches itself to its model's coordinator; at a due
step the coordinator gathers the requests of every monitor due, reads each data
set they name once (``MeasurementPass``) and hands each monitor its results.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from keras_grok.callbacks.measurement_pass import MeasurementPass, pass_answers
from keras_grok.callbacks.measurement_requests import PassResults, Request
from keras_grok.utils.labelled_data import LabelledData


def _compatible(data: LabelledData) -> tuple:
    return (data.x.shape[1:], data.x.dtype.str, data.y.shape[1:], data.y.dtype.str)


class MeasurementCoordinator:
    """Runs one shared pass per measured step for all monitors of one model.

    Every ``ScheduledMonitor`` attaches itself to its model's coordinator in
    ``on_train_begin`` (``MeasurementCoordinator.of(model)``). When the first of
    them reaches a due step, ``measure_due`` runs the pass for every monitor due
    at that step and lets each record; the others then find themselves measured.

    Args:
        model: the model being trained.
    """

    _ATTRIBUTE = "_keras_grok_coordinator"

    def __init__(self, model: keras.Model):
        if not isinstance(model, keras.Model):
            raise ValueError(
                "MeasurementCoordinator measures a keras.Model. "
                f"Received: model={model!r} of type {type(model).__name__}"
            )
        self.model = model
        self.monitors: list = []
        self.passes_run = 0
        self._passes: dict[tuple, MeasurementPass] = {}
        self._rows_cache: dict[tuple, tuple[np.ndarray, ...]] = {}
        self._fit = None
        self._loss = None

    @classmethod
    def of(cls, model: keras.Model) -> MeasurementCoordinator:
        """The coordinator of ``model`` (made on first use, kept on the model)."""
        coordinator = model.__dict__.get(cls._ATTRIBUTE)
        if coordinator is None:
            coordinator = cls(model)
            # Not a Keras attribute: bypass layer tracking (and torch's Module).
            object.__setattr__(model, cls._ATTRIBUTE, coordinator)
        return coordinator

    def attach(self, monitor, fit) -> None:
        """Adds ``monitor`` for the ``fit`` identified by ``fit`` (its params)."""
        if fit is not self._fit:  # a new fit: forget monitors of an earlier one
            self.monitors, self._fit = [], fit
            self._rows_cache = {}
            loss = getattr(self.model, "loss", None)
            if loss is not self._loss:  # compiled again: passes read the new loss
                self._passes, self._loss = {}, loss
        if monitor not in self.monitors:
            self.monitors.append(monitor)

    def detach(self, monitor) -> None:
        if monitor in self.monitors:
            self.monitors.remove(monitor)

    def measure_due(self, step: int, final: bool = False) -> None:
        """Measures every attached monitor due at ``step`` with one shared pass."""
        due = [m for m in self.monitors if m.is_due(step, final)]
        if not due:
            return
        # A monitor that reads the others' records (ForecastMonitor) goes last.
        due.sort(key=lambda m: getattr(m, "reads_other_monitors", False))
        sync = getattr(self.model, "jax_state_sync", None)
        if sync is not None:  # JAX keeps the live state outside the variables
            sync()
        results = self.run_pass(
            [(r, d) for m in due for r, d in m.needs()],
            min(m.batch_size for m in due),
        )
        for monitor in due:
            monitor.record(step, results)
        history = self.history()
        for monitor in due:
            monitor.advance(step, history)

    def history(self) -> list[dict]:
        """Every attached monitor's records, merged per step, in step order."""
        merged: dict[int, dict] = {}
        for monitor in self.monitors:
            for record in monitor.records:
                merged.setdefault(record["step"], {}).update(record)
        return [merged[s] for s in sorted(merged)]

    def run_pass(
        self, needs: Sequence[tuple[Request, LabelledData]], chunk_size: int
    ) -> PassResults:
        """Reads each data set in ``needs`` once and answers every request."""
        groups: dict[tuple, dict[tuple, LabelledData]] = {}
        for _, data in needs:
            groups.setdefault(_compatible(data), {})[data.key] = data
        values: dict[tuple[Request, tuple], object] = {}
        for group in groups.values():
            sets = list(group.values())
            asked = [(r, d) for r, d in needs if d.key in group]
            values.update(self._run_group(sets, asked, chunk_size))
        self.passes_run += 1
        return PassResults(values)

    def _run_group(self, sets, needs, chunk_size):
        index = {data.key: i for i, data in enumerate(sets)}
        members: dict[Request, list[int]] = {}
        for request, data in needs:
            members.setdefault(request, [])
            if index[data.key] not in members[request]:
                members[request].append(index[data.key])
        requests = [(r, tuple(sorted(m))) for r, m in members.items()]
        rows = sum(len(d) for d in sets)
        chunk = max(1, min(int(chunk_size), rows))
        key = (tuple(requests), tuple(d.key for d in sets), chunk >= rows)
        measurement = self._passes.get(key)
        if measurement is None:
            measurement = MeasurementPass(
                self.model, requests, len(sets), chunk >= rows
            )
            self._passes[key] = measurement
        x, y, labels, set_ids = self._rows(sets)
        chunks = []
        for start in range(0, rows, chunk):
            stop = start + chunk
            chunks.append(
                measurement.predict_on_batch(
                    {
                        "x": x[start:stop],
                        "y": y[start:stop],
                        "labels": labels[start:stop],
                        "sets": set_ids[start:stop],
                    }
                )
            )
        return pass_answers(requests, sets, chunks, set_ids, chunk >= rows)

    def _rows(self, sets: list[LabelledData]) -> tuple[np.ndarray, ...]:
        # The concatenated rows of a group of data sets, made once per group.
        key = tuple(d.key for d in sets)
        if key not in self._rows_cache:
            self._rows_cache[key] = (
                np.concatenate([d.x for d in sets]),
                np.concatenate([d.y for d in sets]),
                np.concatenate([d.labels for d in sets]),
                np.concatenate(
                    [np.full(len(d), i, dtype="int32") for i, d in enumerate(sets)]
                ),
            )
        return self._rows_cache[key]
