"""Figures of a run, drawn from its metrics (matplotlib, headless)."""

from __future__ import annotations

import io
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from keras_grok.callbacks.results import write_atomic  # noqa: E402


def plot_accuracy(
    records: list[dict[str, float]],
    path: str | os.PathLike,
    title: str = "",
    marks: dict[str, int | None] | None = None,
) -> None:
    """Draws train and test accuracy against the step (log x) into a PNG, atomically.

    Args:
        records: rows with ``step``, ``train_accuracy`` and ``test_accuracy``.
        path: where to write the PNG.
        title: the figure's title. Defaults to `""`.
        marks: named steps drawn as vertical lines, e.g. ``{"memorized":
            1200, "generalized": 5400}``; None values are skipped. Defaults to `None`.
    """
    steps = [r["step"] for r in records]
    figure, axis = plt.subplots(figsize=(7, 4), dpi=120)
    for key, label in (("train_accuracy", "train"), ("test_accuracy", "test")):
        axis.plot(steps, [r.get(key, float("nan")) for r in records], label=label)
    for (name, step), style in zip((marks or {}).items(), (":", "--", "-.")):
        if step:
            axis.axvline(step, color="gray", linestyle=style, label=f"{name} ({step})")
    axis.set_xscale("log")
    axis.set_xlabel("optimization step")
    axis.set_ylabel("accuracy")
    axis.set_ylim(-0.02, 1.02)
    axis.grid(alpha=0.3)
    axis.legend(loc="center left")
    axis.set_title(title)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    write_atomic(path, buffer.getvalue())
