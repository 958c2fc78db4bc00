"""Figures of a run, drawn from its metrics (matplotlib, headless)."""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass

from keras_grok.run_folder import write_atomic


@dataclass(frozen=True)
class Panel:
    """One panel of a run's figure: some metrics against the step.

    Args:
        label: the y-axis label.
        keys: the metric names drawn, one line each (labelled by name).
        log_y: a logarithmic y axis. Defaults to `False`.
        limits: fixed y limits, or None. Defaults to `None`.
    """

    label: str
    keys: tuple[str, ...]
    log_y: bool = False
    limits: tuple[float, float] | None = None


def pyplot():
    """matplotlib's pyplot on the headless Agg backend, imported on first use."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_metrics(
    records: list[dict[str, float]],
    path: str | os.PathLike,
    panels: tuple[Panel, ...],
    title: str = "",
    marks: dict[str, int | None] | None = None,
) -> None:
    """Draws panels of metrics against the step (log x, shared) into a PNG, atomically.

    Args:
        records: rows with a ``step`` and the panels' keys (missing or NaN values
            are left out of the lines).
        path: where to write the PNG.
        panels: what to draw, top to bottom (the monitors' ``panels()``).
        title: the figure's title. Defaults to `""`.
        marks: named steps drawn as vertical lines in every panel, e.g.
            ``{"memorized": 1200, "generalized": 5400}``; None values are skipped.
            Defaults to `None`.
    """
    from matplotlib.ticker import NullLocator

    plt = pyplot()
    figure, axes = plt.subplots(
        len(panels), 1, figsize=(7, 1.2 + 2.8 * len(panels)), dpi=120, sharex=True
    )
    axes = [axes] if len(panels) == 1 else list(axes)
    for axis, panel in zip(axes, panels):
        for key in panel.keys:
            points = [
                (r["step"], r[key])
                for r in records
                if isinstance(r.get(key), float) and math.isfinite(r[key])
            ]
            if points:
                axis.plot(*zip(*points), label=key)
        for (name, step), style in zip((marks or {}).items(), (":", "--", "-.")):
            if step:
                axis.axvline(
                    step, color="gray", linestyle=style, label=f"{name} ({step})"
                )
        axis.set_xscale("log")
        if panel.log_y:
            axis.set_yscale("log")
            # Minor ticks over many decades cost most of the drawing time.
            axis.yaxis.set_minor_locator(NullLocator())
        if panel.limits:
            axis.set_ylim(*panel.limits)
        axis.set_ylabel(panel.label)
        axis.grid(alpha=0.3)
        axis.legend(loc="best", fontsize="small")
    axes[0].set_title(title)
    axes[-1].set_xlabel("optimization step")
    save_figure(figure, path)


def save_figure(figure, path: str | os.PathLike) -> None:
    """Lays out ``figure``, writes it as a PNG atomically and closes it."""
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    pyplot().close(figure)
    write_atomic(path, buffer.getvalue())
