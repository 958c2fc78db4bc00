"""Sweeps: many runs of one recipe in parallel processes, then one figure and table.

Each run is a separate ``keras-grok run`` process with its own run folder, so it
gets its own backend, checkpoint, lock and resume logic. A run whose folder already
holds a finished run of the same settings is skipped (``check_reusable`` refuses a
folder of other settings), so an interrupted sweep resumes where it stopped; the
results are then aggregated per swept value into mean +- std curves against the step
and a table of ``memorized_at`` / ``generalized_at``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from keras_grok.analysis.events import first_step_at, in_step_order
from keras_grok.runs.figures import pyplot, save_figure
from keras_grok.runs.run_folder import RunFolder
from keras_grok.utils.argument_validation import (
    ACCURACY_LEVEL,
    validate_float_arg,
    validate_int_arg,
)

CANNOT_START = 127
"""The exit code of a run whose command cannot be started (as a shell's)."""


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
                        f"{last_error(RunFolder(run.folder).log)}"
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


@dataclass(frozen=True)
class Curve:
    """Mean and standard deviation over seeds of one metric, on shared steps."""

    steps: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    count: np.ndarray


def mean_curve(runs: Sequence[list[dict]], key: str) -> Curve | None:
    """Mean +- std (over runs) of metric ``key`` against the step.

    The runs' steps are merged; each run is interpolated linearly in log(step)
    inside its own measured range and left out (NaN) outside it, so runs measured
    at different steps still average. None if no run has the key. Each run's
    rows are taken in step order (sorted by ``"step"`` if they are not).
    """
    series = []
    for rows in runs:
        points = [
            (r["step"], r[key])
            for r in in_step_order(rows)
            if isinstance(r.get(key), float) and math.isfinite(r[key])
        ]
        if points:
            series.append(np.asarray(points, dtype=np.float64))
    if not series:
        return None
    steps = np.unique(np.concatenate([s[:, 0] for s in series]))
    values = np.full((len(series), len(steps)), np.nan)
    for i, s in enumerate(series):
        inside = (steps >= s[0, 0]) & (steps <= s[-1, 0])
        values[i, inside] = np.interp(np.log(steps[inside]), np.log(s[:, 0]), s[:, 1])
    count = np.sum(np.isfinite(values), axis=0)
    mean = np.nanmean(values, axis=0)
    std = np.sqrt(np.nanmean((values - mean) ** 2, axis=0))
    return Curve(steps, mean, std, count)


def summarize(
    groups: dict[float, list[list[dict]]],
    train_threshold: float = 0.99,
    test_threshold: float = 0.99,
) -> list[dict]:
    """One table row per swept value: grokking times and accuracies over its runs.

    ``memorized_at`` (train accuracy >= ``train_threshold``) and ``generalized_at``
    (test accuracy >= ``test_threshold``) are averaged over the runs that reached
    them; ``*_runs`` counts those runs. ``best_test_accuracy`` and
    ``final_test_accuracy`` are averaged over all runs. Both thresholds default
    to 0.99, as the monitors' do.

    Raises:
        ValueError: a threshold outside (0, 1].
    """
    train_threshold = ACCURACY_LEVEL.validate(train_threshold, "train_threshold")
    test_threshold = ACCURACY_LEVEL.validate(test_threshold, "test_threshold")
    if not isinstance(groups, dict):
        raise TypeError(
            "groups must be a dict of metrics rows by swept value. "
            f"Received: groups of type {type(groups).__name__}"
        )
    table = []
    for value in sorted(groups, reverse=True):
        runs = groups[value]
        row: dict = {"value": value, "runs": len(runs)}
        for name, key, threshold in (
            ("memorized_at", "train_accuracy", train_threshold),
            ("generalized_at", "test_accuracy", test_threshold),
        ):
            steps = [first_step_at(rows, key, threshold) for rows in runs]
            reached = [s for s in steps if s is not None]
            row[name] = float(np.mean(reached)) if reached else None
            row[f"{name}_std"] = float(np.std(reached)) if reached else None
            row[f"{name}_runs"] = len(reached)
        for name, pick in (("best", max), ("final", lambda v: v[-1])):
            accuracies = [
                pick(v) for v in (_finite(rows, "test_accuracy") for rows in runs) if v
            ]
            row[f"{name}_test_accuracy"] = (
                float(np.mean(accuracies)) if accuracies else None
            )
        table.append(row)
    return table


def _finite(rows: list[dict], key: str) -> list[float]:
    return [
        r[key]
        for r in in_step_order(rows)
        if isinstance(r.get(key), float) and math.isfinite(r[key])
    ]


def table_markdown(table: list[dict], value_name: str = "weight decay") -> str:
    """The table as Markdown, grokking times as ``mean ± std (reached/runs)``."""

    def times(row: dict, name: str) -> str:
        if row[name] is None:
            return f"not reached (0/{row['runs']})"
        return (
            f"{row[name]:.0f} ± {row[f'{name}_std']:.0f} "
            f"({row[f'{name}_runs']}/{row['runs']})"
        )

    def accuracy(value: float | None) -> str:
        return "—" if value is None else f"{value:.3f}"

    lines = [
        f"| {value_name} | memorized_at | generalized_at | best test acc "
        "| final test acc |",
        "|---|---|---|---|---|",
    ]
    for row in table:
        lines.append(
            f"| {row['value']:g} | {times(row, 'memorized_at')} "
            f"| {times(row, 'generalized_at')} "
            f"| {accuracy(row['best_test_accuracy'])} "
            f"| {accuracy(row['final_test_accuracy'])} |"
        )
    return "\n".join(lines) + "\n"


def table_csv(table: list[dict]) -> str:
    """The table as CSV (empty cells for never reached)."""
    columns = list(table[0]) if table else ["value"]
    lines = [",".join(columns)]
    for row in table:
        lines.append(",".join("" if row[c] is None else str(row[c]) for c in columns))
    return "\n".join(lines) + "\n"


def read_groups(runs: Sequence[SweepRun]) -> dict[float, list[list[dict]]]:
    """The metrics of each finished run, grouped by swept value."""
    groups: dict[float, list[list[dict]]] = {}
    for run in runs:
        folder = RunFolder(run.folder)
        if folder.is_finished():
            groups.setdefault(run.value, []).append(folder.read_metrics())
    return groups


def plot_sweep(
    groups: dict[float, list[list[dict]]],
    path: str | os.PathLike,
    panels: Sequence[tuple[str, tuple[str, ...], bool]],
    title: str = "",
    value_name: str = "wd",
) -> None:
    """Draws mean +- std curves per swept value into a PNG, atomically.

    Args:
        groups: metrics rows of each run, by swept value.
        path: where to write the PNG.
        panels: ``(label, keys, log_y)`` per panel; the first key of a panel is
            drawn solid, the others dashed, dotted, ... in the value's colour.
        title: the figure's title. Defaults to `""`.
        value_name: the swept value's name in the legend. Defaults to `"wd"`.

    Raises:
        ValueError: ``groups`` or ``panels`` empty, a swept value that is not
            a number, or a panel that is not ``(label, keys, log_y)`` with one
            or more keys (each message names the argument).
        TypeError: ``groups`` not a dict or ``panels`` not a list.
    """
    _check_sweep_plot(groups, panels)
    plt = pyplot()
    figure, axes = plt.subplots(
        len(panels), 1, figsize=(7, 1.2 + 2.8 * len(panels)), dpi=120, sharex=True
    )
    axes = [axes] if len(panels) == 1 else list(axes)
    colours = plt.get_cmap("viridis")
    values = sorted(groups, reverse=True)
    for axis, (label, keys, log_y) in zip(axes, panels):
        for i, value in enumerate(values):
            colour = colours(i / max(len(values) - 1, 1))
            for key, style in zip(keys, ("-", "--", ":", "-.")):
                curve = mean_curve(groups[value], key)
                if curve is None:
                    continue
                name = f"{value_name} {value:g}" if style == "-" else None
                axis.plot(curve.steps, curve.mean, style, color=colour, label=name)
                axis.fill_between(
                    curve.steps,
                    curve.mean - curve.std,
                    curve.mean + curve.std,
                    color=colour,
                    alpha=0.2,
                    linewidth=0,
                )
        axis.set_xscale("log")
        if log_y:
            axis.set_yscale("log")
        styles = ", ".join(
            f"{k} {s}" for k, s in zip(keys, ("solid", "dashed", "dotted"))
        )
        axis.set_ylabel(label)
        axis.set_title(styles, fontsize="small", loc="right")
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend(loc="best", fontsize="small")
    axes[0].set_title(title, loc="left")
    axes[-1].set_xlabel("optimization step")
    save_figure(figure, path)


def _check_sweep_plot(groups, panels) -> None:
    """Refuses what ``plot_sweep`` cannot draw, before a figure is made."""
    if not isinstance(groups, Mapping):
        raise TypeError(
            "groups must be a dict of each swept value's runs. Received: groups of "
            f"type {type(groups).__name__}"
        )
    if not groups:
        raise ValueError(
            "groups must hold at least one swept value's runs. Received: groups={}"
        )
    for value in groups:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
            raise ValueError(
                f"groups must be keyed by the swept values (numbers). Received: "
                f"a key {value!r} in groups"
            )
    if isinstance(panels, (str, bytes)) or not isinstance(panels, Sequence):
        raise TypeError(
            "panels must be a list of (label, keys, log_y). Received: panels of "
            f"type {type(panels).__name__}"
        )
    if not panels:
        raise ValueError(
            "panels must list at least one (label, keys, log_y) panel. "
            f"Received: panels={panels!r}"
        )
    for panel in panels:
        valid = (
            isinstance(panel, (tuple, list))
            and len(panel) == 3
            and isinstance(panel[1], (tuple, list))
            and len(panel[1]) > 0
            and all(isinstance(key, str) for key in panel[1])
        )
        if not valid:
            raise ValueError(
                "each panel must be (label, keys, log_y) with one or more metric "
                f"names as keys. Received: a panel {panel!r} in panels"
            )
