"""Measure any lens of a recorded run after the fact, by replaying it exactly.

A run keeps a sparse checkpoint history (``TrainingCheckpoint(history=...)``):
weights, optimizer and random states at steps 0, 1, 2, 4, ... (x2) and its last.
Training is replayable bit for bit from any of them: the batch at step ``s`` is a
function of ``(seed, s)`` (``EpochBatches``) and every random state is in the
checkpoint. So ``measure_run`` restores the checkpoint at or before each asked
step, trains on with the run's own recipe, config and batch order, and measures
the chosen lenses there: as densely as a question needs, on a finished run that
never had the lens, without slowing the original training. Values replayed at a
step that was measured while training equal that ``metrics.csv`` row bit for bit
(same backend, same lenses).

Results go to ``replays/LENSES.csv`` in the run folder (``metrics.csv`` is never
touched), rewritten atomically after each replayed stretch, so a replay killed
midway resumes: rerun it and only the missing steps are replayed.

How it works: ``measure_run`` runs the run's recipe again inside a replay
request (``active_replay()``); the recipe builds its data, model and monitors as
it did, and ``train_and_record`` hands them to ``replay_stretches`` instead of
training from scratch.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from keras_grok.callbacks import FourierMonitor, Schedule, TrainingCheckpoint
from keras_grok.experiments.recipe import load_recipe
from keras_grok.runs.after_the_fact import measure_now
from keras_grok.runs.lenses import (
    LENSES,
    PER_STEP,
    RECORDED,
    LensContext,
    fourier_monitor,
    lens_monitor,
)
from keras_grok.runs.metrics_file import with_columns_of
from keras_grok.runs.run_folder import (
    RunFolder,
    RunFolderError,
    config_fingerprint,
    read_checkpoint_state,
    read_metrics,
    write_metrics_atomic,
)
from keras_grok.runs.step_spec import as_steps

KEY_FREQUENCIES = ("final", PER_STEP, RECORDED)


@dataclass(frozen=True)
class ReplayRequest:
    """What to measure in a replay.

    Attributes:
        lenses: lens names of ``LENSES``.
        steps: the steps to measure at, ascending, each >= 1.
        key_frequencies: the Fourier lens's key frequencies: ``"final"`` (those
            of the run's last state at every step, Nanda et al.'s protocol),
            ``"per_step"`` (re-picked at each step, as in-line) or ``"recorded"``
            (as the run's own Fourier monitor has them: the events' refinement).
        lens_steps: ``(lens, steps)`` pairs where a lens is wanted at fewer
            steps than ``steps`` (the union); accuracy is measured at every step.
            One replay then serves lenses of different densities.
        file_name: the replay file's name (``replays/NAME.csv``); None names it
            after the lenses.
    """

    lenses: tuple[str, ...]
    steps: tuple[int, ...]
    key_frequencies: str = "final"
    lens_steps: tuple[tuple[str, tuple[int, ...]], ...] = ()
    file_name: str | None = None

    def steps_of(self, lens: str) -> tuple[int, ...]:
        """The steps ``lens`` is measured at (``lens_steps``, else ``steps``)."""
        return dict(self.lens_steps).get(lens, self.steps)

    @property
    def name(self) -> str:
        """The replay file's name: ``file_name``, else the lenses (and the
        Fourier protocol)."""
        if self.file_name:
            return self.file_name
        parts = [lens for lens in LENSES if lens in self.lenses]
        if "fourier" in parts and self.key_frequencies != "final":
            parts[parts.index("fourier")] = f"fourier_{self.key_frequencies}"
        return "+".join(parts)


_ACTIVE: contextvars.ContextVar[ReplayRequest | None] = contextvars.ContextVar(
    "keras_grok_replay", default=None
)


def active_replay() -> ReplayRequest | None:
    """The replay request ``train_and_record`` serves now, or None (a real run)."""
    return _ACTIVE.get()


@contextlib.contextmanager
def _replaying(request: ReplayRequest):
    token = _ACTIVE.set(request)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def measure_run(
    run_dir,
    lenses: Sequence[str],
    steps: Sequence[int],
    key_frequencies: str = "final",
    verbose: bool = False,
    name: str | None = None,
) -> list[dict]:
    """Measures ``lenses`` at ``steps`` of a recorded run by exact replay.

    Keras must already be loaded with the backend the run was recorded on
    (``keras-grok measure`` sees to it): replay is exact on one backend.

    Args:
        run_dir: the run folder (with ``config.json`` and a checkpoint history).
        lenses: names from ``LENSES`` (``accuracy`` is always added).
        steps: steps >= 1, up to the run's last step: a sequence of ints, an
            int, or a string ``parse_steps`` reads.
        key_frequencies: ``"final"`` or ``"per_step"`` (see ``ReplayRequest``).
            Defaults to `"final"`.
        verbose: print a line per replayed stretch. Defaults to `False`.
        name: the replay file's name (``replays/NAME.csv``); None names it after
            the lenses. A named replay holds only its own part of the folder
            (``RunFolder.lock(part=name)``), so replays of different names run
            side by side (the fan-out of ``keras_grok.analysis.refine.refine_run``).
            Defaults to `None`.

    Returns:
        The rows of the replay file at the asked steps, in step order.

    Raises:
        ValueError: an unknown lens or key-frequency protocol, or steps out of
            range.
        RunFolderError: the folder has no config or checkpoint history, or was
            recorded on another backend.
    """

    if not isinstance(run_dir, (str, os.PathLike)):
        raise TypeError(
            "run_dir must be a path (str or os.PathLike) to a run folder. "
            f"Received: run_dir={run_dir!r}"
        )
    if isinstance(lenses, (str, bytes)):
        raise TypeError(
            f"lenses must be a list of lens names of {', '.join(LENSES)}, not one "
            f"string. Received: lenses={lenses!r}"
        )
    steps = as_steps(steps, None)
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name must be a string or None. Received: name={name!r}")
    if not lenses:
        raise ValueError(
            f"lenses must name at least one lens of {', '.join(LENSES)}. "
            f"Received: lenses={list(lenses)}"
        )
    unknown = sorted(set(lenses) - set(LENSES))
    if unknown:
        raise ValueError(
            f"Unknown lens {unknown[0]!r}. Lenses: {', '.join(LENSES)}. "
            f"Received: lenses={list(lenses)}"
        )
    if name is not None and name.endswith(".csv"):  # NAME, not NAME.csv.csv
        name = name[: -len(".csv")]
    if name is not None and (
        not name.strip()
        or name in (".", "..")
        or any(c in name for c in "/\\\0")
        or len(name.encode()) > 200
    ):
        raise ValueError(
            "name must be a file name of at most 200 bytes (replays/NAME.csv "
            f"inside the run folder), without a path. Received: name={name[:80]!r}"
        )
    if key_frequencies not in KEY_FREQUENCIES:
        raise ValueError(
            f"key_frequencies must be one of {KEY_FREQUENCIES}. Received: "
            f"key_frequencies={key_frequencies!r}"
        )
    folder = RunFolder(run_dir)
    record, history = check_replayable(folder)
    if record.get("backend") != keras.backend.backend():
        raise RunFolderError(
            f"{folder.path} was recorded on {record.get('backend')!r}; replay it on "
            f"that backend (this process runs {keras.backend.backend()!r})"
        )
    steps = tuple(sorted({int(s) for s in steps}))
    last = history[-1][0]
    if not steps or steps[0] < 1 or steps[-1] > last:
        raise ValueError(
            f"steps must lie in [1, {last}] (the run's last step). Received: "
            f"steps {steps[0] if steps else None}..{steps[-1] if steps else None}"
        )
    request = ReplayRequest(
        tuple(dict.fromkeys(["accuracy", *lenses])),
        steps,
        key_frequencies,
        file_name=name,
    )
    recipe = load_recipe(record["recipe"])
    with folder.lock(part=name), _replaying(request):
        # Keys the recipe gained since the run was recorded take their defaults.
        recipe.run({**recipe.defaults, **record["config"]}, folder.path, verbose)
    wanted = set(steps)
    rows = read_metrics(folder.replay_metrics(request.name))
    return [r for r in rows if r["step"] in wanted]


def check_replayable(folder: RunFolder) -> tuple[dict, list[tuple[int, Path]]]:
    """The config and checkpoint history of a run that can be replayed.

    Raises:
        RunFolderError: not a run folder, a parent of runs (a recipe's or a
            sweep's: the message names them), damaged, or without a history.
    """
    folder.check_files()
    nested = sorted(p.parent for p in (folder.path / "runs").glob("*/config.json"))
    record = folder.saved_config()
    history = folder.history_checkpoints()
    if not history and nested:  # a recipe's or a sweep's parent folder
        raise RunFolderError(
            f"{folder.path} holds the runs "
            f"{', '.join(f'runs/{child.name}' for child in nested)}, not one of "
            f"its own: replay one of them (e.g. {nested[0]})"
        )
    if record is None:
        raise RunFolderError(
            f"{folder.path} has no config.json, so it is not a run of `keras-grok "
            "run`: replay needs the recipe and config that made the run (a folder "
            "written by train_and_record for a model of your own has neither; "
            "pass after_the_fact= to train_and_record to measure its lenses)"
        )
    missing = [k for k in ("recipe", "backend", "config") if not record.get(k)]
    if missing:
        raise RunFolderError(
            f"{folder.config} records no {', '.join(missing)}: it was not written "
            "by keras-grok run, or is damaged; rerun its keras-grok run command "
            "with --overwrite to start it over"
        )
    if not history:
        raise RunFolderError(
            f"{folder.path} keeps no checkpoint history (checkpoints/ is missing "
            "or empty, or its run was recorded before keras-grok kept one): rerun "
            "it to measure after the fact"
        )
    own = config_fingerprint(record)
    for step, path in history:
        # A history copied or linked from another run would measure that run.
        state = read_checkpoint_state(path)
        if (state.fingerprint and state.fingerprint != own) or state.step != step:
            whose = (
                f"holds step {state.step}, not {step}"
                if state.step != step
                else f"was saved by a run of another config or seed than "
                f"{folder.config} records"
            )
            raise RunFolderError(
                f"{path} {whose}: the checkpoint history does not belong to this "
                "run; remove the stray checkpoints, or rerun the run with --overwrite"
            )
    return record, history


def replay_stretches(
    request: ReplayRequest,
    folder: RunFolder,
    model,
    train: tuple,
    test: tuple,
    grokking,
    monitors: Sequence,
    *,
    batch_size: int,
    shuffle_seed: int,
    verbose: bool,
) -> dict:
    """Replays ``folder``'s run from its history and measures ``request``.

    Called by ``train_and_record`` in a replay, with the model, data and
    monitors the recipe built. Groups the asked steps by the latest history
    checkpoint at or before each; for each group, restores that checkpoint,
    trains to the group's last step on the run's own batches and measures the
    lenses at the group's steps. After each group the replay file is rewritten
    whole (atomically), so a killed replay resumes with the missing groups.

    Returns:
        ``{"replay_file", "replayed_steps", "trained_steps"}`` and the accuracy
        monitor's summary of the replayed steps.
    """
    from keras_grok.data.epoch_batches import EpochBatches

    x, y = train
    steps_per_epoch = math.ceil(len(x) / batch_size)
    targets = np.asarray(train[1])
    classes = (
        int(max(np.max(targets), np.max(test[1]))) + 1
        if targets.ndim == 1
        else int(targets.shape[-1])
    )
    context = LensContext(train, test, monitors, classes, int(shuffle_seed))
    history = folder.history_checkpoints()
    keys = request.key_frequencies
    if "fourier" in request.lenses and keys == "final":
        TrainingCheckpoint.restore(history[-1][1], model)
        own = next((m for m in monitors if isinstance(m, FourierMonitor)), None)
        probe = own if own is not None else fourier_monitor(None, context, PER_STEP)
        keys = probe.key_frequencies_of(model)
    grokking.patience = None  # the replay decides where to stop
    lenses = {"accuracy": grokking}
    for lens in request.lenses[1:]:
        lenses[lens] = lens_monitor(lens, context, keys)
    wants = {lens: set(request.steps_of(lens)) for lens in lenses}
    wants["accuracy"] = set(request.steps)
    path = folder.replay_metrics(request.name)
    columns = [
        "step",
        *dict.fromkeys(n for m in lenses.values() for n in m.metric_names),
    ]
    done = {int(r["step"]): r for r in read_metrics(path)} if path.exists() else {}
    columns = with_columns_of(columns, done.values())  # keep an earlier lens's

    def missing(lens: str, step: int) -> bool:
        row = done.get(step, {})
        names = lenses[lens].metric_names
        return not any(math.isfinite(row.get(k, math.nan)) for k in names)

    todo: dict[int, set[str]] = {}
    for lens, steps in wants.items():
        for step in steps:
            if missing(lens, step):
                todo.setdefault(step, set()).add(lens)
    groups: dict[int, list[int]] = {}
    for step in sorted(todo):
        start = max(s for s, _ in history if s <= step)
        groups.setdefault(start, []).append(step)
    trained = 0
    for start, group in sorted(groups.items()):
        state = TrainingCheckpoint.restore(dict(history)[start], model)
        for monitor in lenses.values():
            monitor.records = []
        if group[0] == start:  # the checkpoint's own state: measure, no training
            measure_now(model, [lenses[n] for n in sorted(todo[start])], start)
        rest = [s for s in group if s > start]
        if rest:
            last = rest[-1]
            active = []
            for lens, monitor in lenses.items():
                steps = tuple(s for s in rest if lens in todo[s])
                if steps:
                    monitor.schedule_spec = Schedule(steps)
                    active.append(monitor)
            model.fit(
                EpochBatches(x, y, batch_size, shuffle_seed, state.epoch),
                epochs=max(state.epoch + 1, math.ceil(last / steps_per_epoch)),
                steps_per_epoch=steps_per_epoch,
                initial_epoch=state.epoch,
                shuffle=False,
                verbose=0,
                callbacks=[*active, _StopAfter(last)],
            )
            trained += last - state.step
        for lens, monitor in lenses.items():
            for record in monitor.records:
                step = record["step"]
                if step in todo and lens in todo[step]:  # not an end-of-fit extra
                    done.setdefault(step, {"step": step}).update(record)
        write_metrics_atomic(path, columns, [done[s] for s in sorted(done)])
        if verbose:
            print(
                f"replayed steps {start}..{group[-1]} from the checkpoint at step "
                f"{start}: {len(group)} measured -> {path}"
            )
    return {
        **grokking.summary(),
        "replay_file": str(path),
        "replayed_steps": len(todo),
        "trained_steps": trained,
    }


class _StopAfter(keras.callbacks.Callback):
    """Stops ``fit`` once the model has taken ``last`` optimizer steps."""

    def __init__(self, last: int):
        super().__init__()
        self.last = int(last)

    def on_train_begin(self, logs=None):
        from keras_grok.callbacks.scheduled_monitor import current_step

        self._model = self.model
        self._step = current_step(self._model)

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        if self._step >= self.last:
            self._model.stop_training = True
