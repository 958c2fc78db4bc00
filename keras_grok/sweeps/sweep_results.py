"""A sweep's results: mean +- std curves over seeds, a table of events, a figure.

The finished runs of ``keras_grok.sweeps.sweep`` are grouped by swept value
(``read_groups``); each group's seeds are averaged into one curve per metric against
the step (``mean_curve``) and into a table of ``memorized_at`` / ``generalized_at``
(``summarize``, ``table_markdown``, ``table_csv``), and drawn as one figure
(``plot_sweep``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from keras_grok.analysis.events import first_step_at, in_step_order
from keras_grok.runs.figures import pyplot, save_figure
from keras_grok.runs.run_folder import RunFolder
from keras_grok.sweeps.sweep import SweepRun
from keras_grok.utils.argument_validation import ACCURACY_LEVEL


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
            steps = [
                first_step_at(rows, key, threshold, missing_ok=True) for rows in runs
            ]
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

    value_name = str(value_name).replace("|", "\\|")  # a pipe would add a cell
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
