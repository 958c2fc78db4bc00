"""Sweeps: many runs of one recipe, each its own ``keras-grok run`` process.

Each run is a separate process with its own run folder, so it gets its own backend,
checkpoint, lock and resume logic. A run whose folder already holds a finished run
of the same settings is skipped (``check_reusable`` refuses a folder of other
settings), so an interrupted sweep resumes where it stopped. A stop signal ends the
runs before the sweep exits, so none is left training as an orphan.
``keras_grok.sweeps.sweep_results`` aggregates the finished runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from keras_grok.runs.run_folder import RunFolder
from keras_grok.utils.argument_validation import validate_float_arg, validate_int_arg

CANNOT_START = 127
"""The exit code of a run whose command cannot be started (as a shell's)."""

WORKER_LOST = 255
"""The code of a run whose Ray worker died under it (no exit code of its own)."""


@dataclass(frozen=True)
class SweepRun:
    """One run of a sweep: the swept value, its seed, its folder and its command.

    ``backend`` and ``config`` (the run's whole resolved config, seed included)
    are what its folder must hold to be reused; None skips that check.
    """

    value: float
    seed: int
    folder: Path
    command: tuple[str, ...]
    backend: str | None = None
    config: dict | None = None

    def __post_init__(self):
        if not isinstance(self.folder, (str, os.PathLike)):
            raise TypeError(
                "folder must be a path (str or os.PathLike). "
                f"Received: folder={self.folder!r}"
            )
        object.__setattr__(self, "folder", Path(self.folder))
        command = self.command
        if (
            isinstance(command, (str, bytes))
            or not isinstance(command, Sequence)
            or not command
            or not all(isinstance(word, (str, os.PathLike)) for word in command)
        ):
            raise TypeError(
                "command must be a non-empty sequence of strings, the program "
                f"first (not one string). Received: command={command!r}"
            )
        object.__setattr__(self, "command", tuple(command))


def check_reusable(runs: Sequence[SweepRun]) -> None:
    """Refuses run folders that hold a run of other settings.

    A sweep reuses a run folder (skips a finished run, resumes an unfinished
    one) only if its ``config.json`` records the backend and config the sweep
    asks for, so it never reports another run's numbers.

    Raises:
        ValueError: two runs share a folder, or a folder holds a run of another
            backend or config (the message names the folder and the keys).
        RunFolderError: a folder's ``config.json`` cannot be read.
    """
    check_distinct_folders(runs)
    for run in runs:
        saved = RunFolder(run.folder).saved_config()
        if saved is None or run.config is None:
            continue
        wanted = json.loads(json.dumps(run.config))
        found = saved.get("config") or {}
        changed = sorted(k for k in wanted if found.get(k) != wanted[k])
        if run.backend is not None and saved.get("backend") != run.backend:
            changed.insert(0, "backend")
        if changed:
            raise ValueError(
                f"{run.folder} holds a run with other settings "
                f"({', '.join(changed)}); pass --overwrite to clear the sweep and "
                "its runs, or choose another --out"
            )


def check_distinct_folders(runs: Sequence[SweepRun]) -> None:
    """Refuses runs that are not ``SweepRun``s, or two runs of one folder.

    Two runs writing one folder would mix their files, and the exit codes and
    results, kept by folder, would hold only one of them.

    Raises:
        TypeError: an item that is not a ``SweepRun``.
        ValueError: two runs share a folder (the message names it).
    """
    seen: dict[str, int] = {}
    for index, run in enumerate(runs):
        if not isinstance(run, SweepRun):
            raise TypeError(
                f"runs must hold SweepRun items. Received: runs[{index}]={run!r}"
            )
        key = os.path.normcase(os.path.abspath(run.folder))
        if key in seen:
            raise ValueError(
                f"two runs of the sweep share the folder {run.folder}: give each "
                f"run its own folder. Received: runs[{seen[key]}] and "
                f"runs[{index}] with folder={str(run.folder)!r}"
            )
        seen[key] = index


def cli_command(
    recipe: str | os.PathLike,
    out: str | os.PathLike,
    backend: str,
    seed: int,
    settings: dict,
) -> tuple[str, ...]:
    """The ``keras-grok run`` command line (through this Python) of one run."""
    words = [f"{key}={_format(value)}" for key, value in settings.items()]
    return (
        sys.executable,
        "-m",
        "keras_grok.cli",
        "run",
        str(recipe),
        "--backend",
        backend,
        "--out",
        str(out),
        "--seed",
        str(seed),
        *(word for w in words for word in ("--set", w)),
    )


def _format(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return ",".join(_format(v) for v in value)
    return str(value)


def run_all(
    runs: Sequence[SweepRun],
    parallel: int = 2,
    log: Callable[[str], None] = print,
    poll_seconds: float = 0.2,
    executor=None,
) -> dict[Path, int]:
    """Runs the unfinished ``runs``, at most ``parallel`` at a time.

    A run whose folder holds a finished run (``RunFolder.is_finished``) is skipped.
    Each process writes its output to ``log.txt`` in its folder.

    Args:
        runs: the runs.
        parallel: most processes at once, >= 1. Defaults to `2`.
        log: called with one line per started, skipped or ended run.
            Defaults to `print`.
        poll_seconds: time between checks on running processes. Defaults to `0.2`.
        executor: runs the unfinished runs instead of local processes, through
            ``executor.run(runs, log)`` (a ``keras_grok.sweeps.executors`` executor,
            e.g. ``RayExecutor``); None runs them here. Defaults to `None`.

    Returns:
        The exit code of every run that was started, by folder (skipped runs are
        left out). A run whose command cannot be started at all (no such
        program) fails with code 127, as in a shell, and the others still run.

    Raises:
        ValueError: ``parallel`` is not an integer >= 1, ``poll_seconds`` is not
            a number > 0, or two runs share a folder.
    """
    parallel = validate_int_arg(parallel, "parallel", minimum=1)
    poll_seconds = validate_float_arg(poll_seconds, "poll_seconds", allow_minimum=False)
    runs = list(runs)
    check_distinct_folders(runs)
    waiting = []
    for run in runs:
        if RunFolder(run.folder).is_finished():
            log(f"skip {run.folder.name} (finished)")
        else:
            waiting.append(run)
    if executor is not None:
        return executor.run(waiting, log)
    codes: dict[Path, int] = {}
    active: list[tuple[SweepRun, subprocess.Popen, object]] = []
    with _sigterm_unwinds():
        try:
            _run_local(waiting, parallel, log, poll_seconds, codes, active)
        finally:  # interrupted (Ctrl-C, SIGTERM): end the processes it started
            _end(active)
    return codes


def _run_local(waiting, parallel, log, poll_seconds, codes, active) -> None:
    # Starts and polls processes; fills ``codes`` and ``active`` as they change.
    while waiting or active:
        while waiting and len(active) < parallel:
            run = waiting.pop(0)
            run.folder.mkdir(parents=True, exist_ok=True)
            output = RunFolder(run.folder).log.open("ab")
            try:
                process = subprocess.Popen(
                    run.command, stdout=output, stderr=subprocess.STDOUT
                )
            except (OSError, ValueError) as error:  # no such program, not runnable
                codes[run.folder] = _failed_to_start(run, error, output, log)
                continue
            active.append((run, process, output))
            log(f"start {run.folder.name}")
        time.sleep(poll_seconds)
        for item in list(active):
            run, process, output = item
            if process.poll() is not None:
                output.close()
                active.remove(item)
                codes[run.folder] = process.returncode
                if process.returncode == 0:
                    log(f"done {run.folder.name}")
                else:
                    log(
                        f"FAILED {run.folder.name} (exit {process.returncode}): "
                        f"{run_failure(process.returncode, RunFolder(run.folder).log)}"
                    )


def _failed_to_start(run: SweepRun, error: Exception, output, log) -> int:
    # A command that cannot be started fails its run alone, as a shell would:
    # 126 for a program that cannot be executed, 127 for anything else (none
    # there). The reason goes to the run's log and to the sweep's.
    code = 126 if isinstance(error, PermissionError) else CANNOT_START
    reason = f"cannot start: {error}"
    output.write(f"Error: {reason}\n".encode())
    output.close()
    log(f"FAILED {run.folder.name} (exit {code}): {reason}")
    return code


@contextlib.contextmanager
def _sigterm_unwinds():
    # SIGTERM's default action ends Python at once, without ``finally`` blocks,
    # which would orphan the runs: from a plain script (no handler of its own)
    # it raises SystemExit(143) instead, so the runs are ended first. A handler
    # the caller installed (the CLI's) is left in place.
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    def unwind(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once, while unwinding
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, unwind)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _end(active: list, grace_seconds: float = 30.0) -> None:
    # SIGTERM to each (a run stops at its checkpoint and releases its lock),
    # then SIGKILL to any still running after the grace period: none is orphaned.
    for _, process, _ in active:
        process.terminate()
    deadline = time.monotonic() + grace_seconds
    for _, process, output in active:
        try:
            process.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        output.close()


def last_error(log_path: str | os.PathLike) -> str:
    """The last ``Error: ...`` line of a run's output, else its last line."""
    try:
        lines = Path(log_path).read_text(errors="replace").splitlines()
    except OSError:
        return "(no output)"
    lines = [line.strip() for line in lines if line.strip()]
    errors = [line for line in lines if line.startswith(("Error:", "Traceback"))]
    if errors and errors[-1].startswith("Error:"):
        return errors[-1]
    return lines[-1] if lines else "(no output)"


def run_failure(code: int, log_path: str | os.PathLike) -> str:
    """Why a run's process ended with ``code``: the signal that killed it
    (a negative code), else its last ``Error:`` line (``last_error``)."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name} (no error of its own; rerun to resume it)"
    return last_error(log_path)
