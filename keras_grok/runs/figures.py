"""Figures of a run, drawn from its metrics (matplotlib, headless)."""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass

from keras_grok.runs.run_folder import write_atomic


@dataclass(frozen=True)
class Panel:
    """One panel of a run's figure: some metrics against the step.

    Args:
        label: the y-axis label.
        keys: the metric names drawn, one line each (labelled by name).
        log_y: a logarithmic y axis. Defaults to `False`.
        limits: fixed y limits, or None. Defaults to `None`.
        horizontal_marks: names of ``plot_metrics``' marks also drawn as
            horizontal lines (a panel of predicted steps marks the true step).
            Defaults to `()`.
    """

    label: str
    keys: tuple[str, ...]
    log_y: bool = False
    limits: tuple[float, float] | None = None
    horizontal_marks: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlanePanel:
    """One panel of a run's figure: one metric against another, coloured by step.

    The trajectory of the run in a plane, e.g. paper A's information plane
    (Sakamoto & Sato, arXiv 2509.20829): ``nHSIC(Z;X)`` on x, ``nHSIC(Z;Y)`` on
    y. Drawn below the step panels, on its own axes (``draw_plane``).

    Args:
        label: the panel's title.
        x_key: the metric on the x axis.
        y_key: the metric on the y axis.
    """

    label: str
    x_key: str
    y_key: str


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
        panels: what to draw, top to bottom (the monitors' ``panels()``);
            ``PlanePanel`` entries are drawn last, each on its own axes.
        title: the figure's title. Defaults to `""`.
        marks: named steps drawn as vertical lines in every panel, e.g.
            ``{"memorized": 1200, "generalized": 5400}``; None values are skipped.
            Defaults to `None`.
    """
    from matplotlib.ticker import NullLocator

    plt = pyplot()
    planes = [p for p in panels if isinstance(p, PlanePanel)]
    panels = tuple(p for p in panels if not isinstance(p, PlanePanel))
    rows = len(panels) + len(planes)
    figure, axes = plt.subplots(
        rows, 1, figsize=(7, 1.2 + 2.8 * rows), dpi=120, sharex=not planes
    )
    axes = [axes] if rows == 1 else list(axes)
    for axis in axes[1 : len(panels)] if planes else ():
        axis.sharex(axes[0])  # the step panels share one axis, the planes not
    for axis in axes[: len(panels) - 1] if planes else ():
        axis.tick_params(labelbottom=False)
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
                if name in panel.horizontal_marks:
                    axis.axhline(step, color="black", linestyle=style, linewidth=0.8)
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
    for axis, plane in zip(axes[len(panels) :], planes):
        draw_plane(axis, records, plane)
    axes[0].set_title(title)
    axes[len(panels) - 1].set_xlabel("optimization step")
    save_figure(figure, path)


def draw_plane(axis, records: list[dict[str, float]], panel: PlanePanel) -> None:
    """Draws the run's trajectory in ``panel``'s plane, coloured by log10(step).

    Points are the rows where both metrics are finite, joined in step order by
    a thin grey line; a colour bar gives the step.
    """
    points = [
        (max(int(r["step"]), 1), r[panel.x_key], r[panel.y_key])
        for r in records
        if all(
            isinstance(r.get(k), float) and math.isfinite(r[k])
            for k in (panel.x_key, panel.y_key)
        )
    ]
    axis.set_title(panel.label, fontsize="medium")
    axis.set_xlabel(panel.x_key)
    axis.set_ylabel(panel.y_key)
    axis.grid(alpha=0.3)
    if not points:
        return
    steps, xs, ys = zip(*points)
    axis.plot(xs, ys, color="lightgray", linewidth=1, zorder=1)
    dots = axis.scatter(
        xs, ys, c=[math.log10(s) for s in steps], cmap="viridis", s=18, zorder=2
    )
    axis.figure.colorbar(dots, ax=axis).set_label("log10 step")


def save_figure(figure, path: str | os.PathLike) -> None:
    """Lays out ``figure``, writes it as a PNG atomically and closes it."""
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    pyplot().close(figure)
    write_atomic(path, buffer.getvalue())
