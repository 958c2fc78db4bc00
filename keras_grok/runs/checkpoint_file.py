"""A training checkpoint as one ``.npz``: weights, optimizer and random states, step.

Written atomically (``write_atomic``), read back with its counts checked against the
model, so a torn or foreign file is a clear ``RunFolderError``.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from keras_grok.runs.file_io import FIX, RunFolderError, write_atomic


@dataclass(frozen=True)
class CheckpointState:
    """What a checkpoint says about the run: where to go on from, and whose it is.

    ``fingerprint`` is ``config_fingerprint`` of the run's config (``""`` when the
    checkpoint lies outside a run folder, or was written before fingerprints);
    ``last_row`` the step of the last metrics row written before it (None when
    unknown), so a metrics file that lost rows is recognized on resume.
    """

    epoch: int
    step: int
    elapsed: float
    fingerprint: str = ""
    last_row: int | None = None


def checkpoint_bytes(
    state: CheckpointState,
    weights: list[np.ndarray],
    optimizer: list[np.ndarray],
    random: list[np.ndarray] = (),
) -> bytes:
    """The ``.npz`` bytes of a checkpoint: weights, optimizer variables, random
    states and ``state``."""
    arrays = {f"weight_{i}": w for i, w in enumerate(weights)}
    arrays.update((f"optimizer_{i}", v) for i, v in enumerate(optimizer))
    arrays.update((f"random_{i}", v) for i, v in enumerate(random))
    if state.last_row is not None:
        arrays["last_row"] = np.asarray(state.last_row)
    buffer = io.BytesIO()
    np.savez(
        buffer,
        epoch=state.epoch,
        step=state.step,
        elapsed=state.elapsed,
        fingerprint=np.asarray(state.fingerprint),
        **arrays,
    )
    return buffer.getvalue()


def write_checkpoint(
    path: str | os.PathLike,
    state: CheckpointState,
    weights: list[np.ndarray],
    optimizer: list[np.ndarray],
    random: list[np.ndarray] = (),
) -> None:
    """Writes weights, optimizer variables, random states and ``state`` as one
    ``.npz``, atomically."""
    write_atomic(path, checkpoint_bytes(state, weights, optimizer, random))


def read_checkpoint(
    path: str | os.PathLike,
    num_weights: int,
    num_optimizer: int,
    num_random: int = 0,
) -> tuple[CheckpointState, list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Reads a checkpoint written by ``write_checkpoint``; None if there is none.

    Returns:
        ``(state, weights, optimizer variables, random states)``; the random
        states are ``[]`` for a checkpoint written without them.

    Raises:
        RunFolderError: the file is damaged, or holds another number of weights,
            optimizer variables or random states than asked for (another model).
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        with np.load(path) as data:
            counts = {
                group: sum(1 for k in data.files if k.startswith(f"{group}_"))
                for group in ("weight", "optimizer", "random")
            }
            expected = {
                "weight": num_weights,
                "optimizer": num_optimizer,
                "random": num_random if counts["random"] else 0,
            }
            if counts != expected:
                raise RunFolderError(
                    f"{path} does not match this model: it holds "
                    f"{counts['weight']} weights and {counts['optimizer']} "
                    f"optimizer variables, the model has {num_weights} and "
                    f"{num_optimizer}; {FIX}"
                )
            weights = [data[f"weight_{i}"] for i in range(num_weights)]
            optimizer = [data[f"optimizer_{i}"] for i in range(num_optimizer)]
            random = [data[f"random_{i}"] for i in range(expected["random"])]
            state = _state(data)
    except RunFolderError:
        raise
    except Exception as error:  # a torn or foreign file: zip, pickle or key errors
        raise RunFolderError(
            f"{path} is damaged or not a keras-grok checkpoint "
            f"({type(error).__name__}: {str(error)[:80]}); {FIX}"
        ) from None
    return state, weights, optimizer, random


def read_checkpoint_state(path: Path) -> CheckpointState:
    # The state of an existing checkpoint (with its stamp), without its arrays.
    try:
        with np.load(path) as data:
            return _state(data)
    except Exception as error:  # a torn or foreign file: zip, pickle or key errors
        raise RunFolderError(
            f"{path} is damaged or not a keras-grok checkpoint "
            f"({type(error).__name__}: {str(error)[:80]}); {FIX}"
        ) from None


def _state(data) -> CheckpointState:
    files = data.files
    return CheckpointState(
        int(data["epoch"]),
        int(data["step"]),
        float(data["elapsed"]),
        str(data["fingerprint"]) if "fingerprint" in files else "",
        int(data["last_row"]) if "last_row" in files else None,
    )
