"""TrainingCheckpoint: periodic, atomic snapshots of a run, to resume after a crash."""

from __future__ import annotations

import math
import os
import time
import warnings
from pathlib import Path

import keras
import numpy as np

from keras_grok.callbacks.scheduled_monitor import current_step
from keras_grok.runs.run_folder import (
    CheckpointState,
    RunFolder,
    RunFolderError,
    checkpoint_bytes,
    checkpoint_stamp,
    read_checkpoint,
    write_atomic,
)
from keras_grok.utils.argument_validation import validate_float_arg
from keras_grok.utils.variable_values import variable_numpy


class TrainingCheckpoint(keras.callbacks.Callback):
    """Saves weights, optimizer and random states, epoch and step, atomically.

    One ``.npz`` file holds everything and is replaced by rename, so a run killed at
    any moment (even ``kill -9``) leaves the previous checkpoint or the new one,
    never a mix. Unlike Keras' ``BackupAndRestore`` it saves at most every
    ``every_seconds`` (saving every epoch would slow short epochs down), and always
    at the last epoch and when training is stopped. ``restore`` loads it back.

    With a ``history`` folder it also keeps a sparse history of checkpoints
    (``RunFolder.history``): the state before the first step, then at the first
    epoch end at or after each step ``ceil(s * history_ratio)`` following the
    last kept step ``s``, and the last state. Since training is replayable
    bit for bit from any of them (``keras_grok.runs.replay``), any lens can be
    measured later at any step, as densely as a question needs. A history save
    that would take the folder past ``history_budget_mb`` is skipped, with one
    warning (the last state is always kept).

    Args:
        path: the ``.npz`` file.
        every_seconds: least time between saves; 0 saves every epoch.
            Defaults to `10.0`.
        elapsed_offset: seconds spent by earlier sessions of the run.
            Defaults to `0.0`.
        history: the run folder whose checkpoint history to keep; None keeps
            none. Defaults to `None`.
        history_ratio: growth of the step between history checkpoints, > 1.
            Defaults to `2.0`.
        history_budget_mb: the most disk the history may take, in MB.
            Defaults to `256.0`.

    Example:
    ```python
    state = TrainingCheckpoint.restore("run/checkpoint.npz", model)
    start = state.epoch if state else 0
    model.fit(x, y, epochs=100, initial_epoch=start,
              callbacks=[TrainingCheckpoint("run/checkpoint.npz")])
    ```
    """

    def __init__(
        self,
        path: str | os.PathLike,
        every_seconds: float = 10.0,
        elapsed_offset: float = 0.0,
        history: RunFolder | None = None,
        history_ratio: float = 2.0,
        history_budget_mb: float = 256.0,
    ):
        super().__init__()
        self.path = Path(path)
        if self.path.is_dir():
            raise ValueError(
                "path must name the checkpoint file (e.g. run/checkpoint.npz), not "
                f"a folder. Received: path={str(path)!r}, a folder"
            )
        self.every_seconds = validate_float_arg(every_seconds, "every_seconds")
        self.elapsed_offset = validate_float_arg(elapsed_offset, "elapsed_offset")
        validate_float_arg(
            history_ratio, "history_ratio", minimum=1.0, allow_minimum=False
        )
        validate_float_arg(history_budget_mb, "history_budget_mb", allow_minimum=False)
        if not float(history_ratio) > 1 or not float(history_budget_mb) > 0:
            raise ValueError(
                "history_ratio must be > 1 and history_budget_mb > 0. Received: "
                f"history_ratio={history_ratio}, "
                f"history_budget_mb={history_budget_mb}"
            )
        self.history = history
        self.history_ratio = float(history_ratio)
        self.history_budget = float(history_budget_mb) * 1e6

    def on_train_begin(self, logs=None):
        # As Keras' ModelCheckpoint: the checkpoint's folder is made if missing.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._started = self._last_save = time.perf_counter()
        # Read once: on JAX each read of `self.model` syncs the training state.
        self._trained_model = self.model
        self._warned = False
        if self.history is None:
            return
        step = current_step(self._trained_model)
        kept = [s for s, _ in self.history.history_checkpoints() if s <= step]
        self._next_history = self._after(kept[-1]) if kept else 0
        if step == 0 and not kept:  # the state before the first step
            self.save(0, history_only=True)

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        last_epoch = epoch + 1 >= self.params.get("epochs", 0)
        final = last_epoch or self._trained_model.stop_training
        if now - self._last_save >= self.every_seconds or final:
            self.save(epoch + 1)
            self._last_save = time.perf_counter()
        elif self.history is not None and (
            current_step(self._trained_model) >= self._next_history
        ):
            self.save(epoch + 1, history_only=True)

    def save(self, next_epoch: int, history_only: bool = False) -> None:
        """Writes the checkpoint; training goes on from epoch ``next_epoch``.

        With a history, the state also goes into it when its step is due
        (always at the end of training); ``history_only`` writes it there only.
        """
        model = self.model
        elapsed = self.elapsed_offset + time.perf_counter() - self._started
        step = current_step(model)
        data = checkpoint_bytes(
            CheckpointState(next_epoch, step, elapsed, **checkpoint_stamp(self.path)),
            [_numpy(v) for v in model.weights],
            [_numpy(v) for v in model.optimizer.variables],
            [_numpy(v) for v in random_states(model)],
        )
        if not history_only:
            write_atomic(self.path, data)
        if self.history is None:
            return
        final = next_epoch >= self.params.get("epochs", 0) or bool(
            self._trained_model.stop_training
        )
        if step >= self._next_history or final:
            self._keep_in_history(step, data, final)
            self._next_history = self._after(step)

    def _keep_in_history(self, step: int, data: bytes, final: bool) -> None:
        target = self.history.history_checkpoint(step)
        used = sum(
            p.stat().st_size for s, p in self.history.history_checkpoints() if s != step
        )
        if not final and used + len(data) > self.history_budget:
            if not self._warned:
                warnings.warn(
                    f"The checkpoint history of {self.history.path} would pass its "
                    f"budget of {self.history_budget / 1e6:g} MB; history "
                    f"checkpoints are skipped from step {step} on (the last state "
                    "is still kept). Raise history_budget_mb to keep them.",
                    stacklevel=2,
                )
                self._warned = True
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, data)

    def _after(self, step: int) -> int:
        return max(step + 1, math.ceil(step * self.history_ratio))

    @staticmethod
    def restore(path: str | os.PathLike, model: keras.Model) -> CheckpointState | None:
        """Loads a checkpoint into a compiled model; None if there is none.

        Raises:
            RunFolderError: the checkpoint is damaged or was written by a model of
                another shape (a ``ValueError``).
        """
        optimizer = model.optimizer
        if not optimizer.built:
            optimizer.build(model.trainable_variables)
        seeds = random_states(model)
        found = read_checkpoint(
            path, len(model.weights), len(optimizer.variables), len(seeds)
        )
        if found is None:
            return None
        state, weights, slots, random = found
        variables = [*model.weights, *optimizer.variables, *seeds[: len(random)]]
        values = [*weights, *slots, *random]
        for variable, value in zip(variables, values):
            if tuple(variable.shape) != value.shape:
                raise RunFolderError(
                    f"{path} does not match this model: {variable.path} has shape "
                    f"{tuple(variable.shape)}, the checkpoint {value.shape}; pass "
                    "--overwrite to start the run over, or choose another --out"
                )
        for variable, value in zip(variables, values):
            variable.assign(value)
        return state


def random_states(model: keras.Model) -> list:
    """The model's random-number states: its ``SeedGenerator``s' variables.

    ``model.variables`` holds them beside the weights (dropout layers, weight
    noise); a resumed run must go on from them to draw what the uninterrupted
    run would have drawn.
    """
    weights = {id(v) for v in model.weights}
    return [v for v in model.variables if id(v) not in weights]


def _numpy(variable) -> np.ndarray:
    return variable_numpy(variable)
