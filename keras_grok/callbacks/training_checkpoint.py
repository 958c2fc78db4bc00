"""TrainingCheckpoint: periodic, atomic snapshots of a run, to resume after a crash."""

from __future__ import annotations

import os
import time
from pathlib import Path

import keras
import numpy as np

from keras_grok.callbacks.scheduled_monitor import current_step
from keras_grok.runs.run_folder import (
    CheckpointState,
    RunFolderError,
    read_checkpoint,
    write_checkpoint,
)


class TrainingCheckpoint(keras.callbacks.Callback):
    """Saves weights, optimizer and random states, epoch and step, atomically.

    One ``.npz`` file holds everything and is replaced by rename, so a run killed at
    any moment (even ``kill -9``) leaves the previous checkpoint or the new one,
    never a mix. Unlike Keras' ``BackupAndRestore`` it saves at most every
    ``every_seconds`` (saving every epoch would slow short epochs down), and always
    at the last epoch and when training is stopped. ``restore`` loads it back.

    Args:
        path: the ``.npz`` file.
        every_seconds: least time between saves; 0 saves every epoch.
            Defaults to `10.0`.
        elapsed_offset: seconds spent by earlier sessions of the run.
            Defaults to `0.0`.

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
    ):
        super().__init__()
        self.path = Path(path)
        self.every_seconds = float(every_seconds)
        self.elapsed_offset = float(elapsed_offset)

    def on_train_begin(self, logs=None):
        self._started = self._last_save = time.perf_counter()
        # Read once: on JAX each read of `self.model` syncs the training state.
        self._trained_model = self.model

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        last_epoch = epoch + 1 >= self.params.get("epochs", 0)
        if (
            now - self._last_save >= self.every_seconds
            or last_epoch
            or self._trained_model.stop_training
        ):
            self.save(epoch + 1)
            self._last_save = time.perf_counter()

    def save(self, next_epoch: int) -> None:
        """Writes the checkpoint; training goes on from epoch ``next_epoch``."""
        model = self.model
        elapsed = self.elapsed_offset + time.perf_counter() - self._started
        write_checkpoint(
            self.path,
            CheckpointState(next_epoch, current_step(model), elapsed),
            [_numpy(v) for v in model.weights],
            [_numpy(v) for v in model.optimizer.variables],
            [_numpy(v) for v in random_states(model)],
        )

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
    return np.asarray(keras.ops.convert_to_numpy(variable.value))
