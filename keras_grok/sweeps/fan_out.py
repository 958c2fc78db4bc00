"""Refine a finished run's events with its replays fanned out over an executor.

``train_and_record`` refines a run's events in its own process. For a finished
run (one recorded with ``refine=False``, or to refine again after a lens was added)
``refine_run`` does the same work with the replays as jobs of a sweep executor:
each round of ``keras_grok.analysis.refine.refine_events`` becomes one
``keras-grok measure RUN_DIR --lens LENS --steps ... --name refine-LENS`` job per
lens (each lens's brackets, replayed from their checkpoints), run side by side by
``ProcessExecutor`` (local processes) or ``RayExecutor`` (a cluster whose nodes see
the run folder). Each job writes its own replay file and holds only that part of
the folder, so the jobs never touch each other's files; their rows are the rows
an in-process replay gives.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from keras_grok.analysis.refine import refine_events
from keras_grok.runs.run_folder import RunFolder, RunFolderError, read_metrics
from keras_grok.sweeps.executors import ProcessExecutor
from keras_grok.sweeps.sweep import SweepRun


def refine_run(
    run_dir,
    executor=None,
    *,
    relative: float = 0.01,
    log: Callable[[str], None] = print,
) -> dict[str, dict | None]:
    """Locates every event of a finished run to ``relative`` of its step, fanned out.

    Args:
        run_dir: a finished run folder with a checkpoint history.
        executor: runs the jobs (``executor.run(jobs, log)``); None: a
            ``ProcessExecutor`` with 2 processes. Defaults to `None`.
        relative: the resolution asked, relative to each event's step.
            Defaults to `0.01`.
        log: called with one line per started or ended job. Defaults to `print`.

    Returns:
        The events table (``refine_events``): per event its step, resolution,
        measured step and lens, or None.

    Raises:
        RunFolderError: the folder holds no finished run, or a job failed (the
            message names it and its log).
    """
    from keras_grok.runs.replay import check_replayable  # imports Keras

    folder = RunFolder(Path(run_dir))
    summary = folder.read_summary()
    if summary is None:
        raise RunFolderError(f"{folder.path} holds no finished run to refine")
    check_replayable(folder)
    executor = executor or ProcessExecutor(parallel=2)
    # The Fourier lens as the run measured it: its own monitor in line, else
    # the final model's key frequencies (after the fact, Nanda et al.'s protocol).
    in_line = folder.read_metrics()
    protocol = (
        "recorded" if any("train_excluded_loss" in r for r in in_line) else "final"
    )

    def measure(wanted: dict[str, list[int]]) -> list[dict]:
        jobs = [
            SweepRun(
                value=0.0,
                seed=0,
                folder=folder.replay_job(lens),
                command=(
                    sys.executable,
                    "-m",
                    "keras_grok.cli",
                    "measure",
                    str(folder.path),
                    "--lens",
                    lens,
                    "--steps",
                    ",".join(str(s) for s in steps),
                    "--key-frequencies",
                    protocol,
                    "--name",
                    f"refine-{lens}",
                ),
            )
            for lens, steps in sorted(wanted.items())
        ]
        codes = executor.run(jobs, log)
        failed = [job for job in jobs if codes.get(job.folder, 0) != 0]
        if failed:
            raise RunFolderError(
                f"refining {folder.path}: the replay of {failed[0].folder.name} "
                f"failed; see {RunFolder(failed[0].folder).log}"
            )
        steps = {s for group in wanted.values() for s in group}
        return [
            row
            for lens in wanted
            for row in read_metrics(folder.replay_metrics(f"refine-{lens}"))
            if row["step"] in steps
        ]

    table, _ = refine_events(
        folder.read_measurements(),
        measure,
        steps_per_epoch=int(summary["steps_per_epoch"]),
        threshold=float(summary.get("threshold", 0.99)),
        test_threshold=summary.get("test_threshold"),
        relative=relative,
    )
    return table
