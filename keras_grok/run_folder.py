"""The files of one run, and the only module that knows their names and formats.

- ``config.json``: the resolved config, backend, package versions and seed;
- ``metrics.csv``: one row per measured step, written row by row;
- ``checkpoint.npz``: the latest training state, for resuming;
- ``figure.png``: the run's figure;
- ``summary.json``: memorized_at, generalized_at, final metrics, wall time. Written
  once, last and atomically: its presence marks a finished run.

A run killed at any moment leaves every file whole: JSON, the figure and the
checkpoint are replaced by an atomic rename; each metrics row is one ``write``
followed by a flush, a torn last line is dropped when the file is read back, and a
rewrite (on resume) goes through a temporary file and an atomic rename.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_CONFIG, _METRICS, _SUMMARY = "config.json", "metrics.csv", "summary.json"
_FIGURE, _CHECKPOINT = "figure.png", "checkpoint.npz"


def write_atomic(path: str | os.PathLike, data: bytes | str) -> None:
    """Writes ``data`` to ``path`` so that a reader sees the old file or the new one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a result file is not
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | os.PathLike, obj) -> None:
    """Writes ``obj`` as indented JSON (NaN and inf become null), atomically."""
    write_atomic(path, json.dumps(_nan_to_none(obj), indent=2, sort_keys=True) + "\n")


def _nan_to_none(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nan_to_none(v) for v in obj]
    return obj


def read_metrics(path: str | os.PathLike) -> list[dict[str, float]]:
    """Reads a metrics CSV into dicts of floats (``step`` as int); [] if absent.

    A last line without its newline (a write cut off by a crash) is ignored.
    """
    path = Path(path)
    if not path.exists():
        return []
    text = path.read_text()
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    rows = list(csv.DictReader(text.splitlines()))
    return [
        {k: int(v) if k == "step" else _to_float(v) for k, v in row.items()}
        for row in rows
    ]


def _to_float(value: str) -> float:
    return float(value) if value not in ("", None) else math.nan


def _format_row(record: dict, columns: list[str]) -> str:
    cells = []
    for name in columns:
        value = record.get(name, math.nan)
        cells.append(str(int(value)) if name == "step" else repr(float(value)))
    return ",".join(cells) + "\n"


class MetricsFile:
    """Appends rows to a metrics CSV, one flushed ``write`` per row.

    Args:
        path: the CSV file; appended to if it exists with the same columns.
        columns: the column names, ``"step"`` first.

    Raises:
        ValueError: the file exists with other columns.
    """

    def __init__(self, path: str | os.PathLike, columns: list[str]):
        self.path = Path(path)
        self.columns = list(columns)
        existing = self.path.exists() and self.path.stat().st_size > 0
        if existing:
            with self.path.open() as f:
                header = f.readline().strip().split(",")
            if header != self.columns:
                raise ValueError(
                    f"{self.path} has columns {header}, expected {self.columns}; "
                    "write to another file."
                )
        rows = read_metrics(self.path)
        self.last_step = rows[-1]["step"] if rows else -1
        self._file = self.path.open("a", buffering=1)
        if not existing:
            self._write(",".join(self.columns) + "\n")

    def append(self, record: dict) -> None:
        """Writes one row (missing columns are NaN)."""
        self._write(_format_row(record, self.columns))
        self.last_step = int(record["step"])

    def close(self) -> None:
        self._file.close()

    def _write(self, line: str) -> None:
        self._file.write(line)
        self._file.flush()


def truncate_metrics(path: str | os.PathLike, last_step: int) -> list[dict[str, float]]:
    """Keeps the rows of steps <= ``last_step`` (atomically) and returns them."""
    path = Path(path)
    if not path.exists():
        return []
    with path.open() as f:
        header = f.readline()
    rows = [r for r in read_metrics(path) if r["step"] <= last_step]
    columns = header.strip().split(",")
    lines = [header] + [_format_row(r, columns) for r in rows]
    write_atomic(path, "".join(lines) if header.endswith("\n") else "")
    return rows


@dataclass(frozen=True)
class CheckpointState:
    """What a checkpoint says about the run: where to go on from."""

    epoch: int
    step: int
    elapsed: float


def write_checkpoint(
    path: str | os.PathLike,
    state: CheckpointState,
    weights: list[np.ndarray],
    optimizer: list[np.ndarray],
) -> None:
    """Writes weights, optimizer variables and ``state`` as one ``.npz``, atomically."""
    arrays = {f"weight_{i}": w for i, w in enumerate(weights)}
    arrays.update((f"optimizer_{i}", v) for i, v in enumerate(optimizer))
    buffer = io.BytesIO()
    np.savez(
        buffer, epoch=state.epoch, step=state.step, elapsed=state.elapsed, **arrays
    )
    write_atomic(path, buffer.getvalue())


def read_checkpoint(
    path: str | os.PathLike, num_weights: int, num_optimizer: int
) -> tuple[CheckpointState, list[np.ndarray], list[np.ndarray]] | None:
    """Reads a checkpoint written by ``write_checkpoint``; None if there is none.

    Raises:
        ValueError: the file holds another number of weights or optimizer
            variables than asked for (another model).
    """
    path = Path(path)
    if not path.exists():
        return None
    with np.load(path) as data:
        saved_weights = sum(1 for k in data.files if k.startswith("weight_"))
        saved_optimizer = sum(1 for k in data.files if k.startswith("optimizer_"))
        if (saved_weights, saved_optimizer) != (num_weights, num_optimizer):
            raise ValueError(
                f"Checkpoint {path} does not match this model: it holds "
                f"{saved_weights} weights and {saved_optimizer} optimizer variables, "
                f"the model has {num_weights} and {num_optimizer}."
            )
        weights = [data[f"weight_{i}"] for i in range(num_weights)]
        optimizer = [data[f"optimizer_{i}"] for i in range(num_optimizer)]
        state = CheckpointState(
            int(data["epoch"]), int(data["step"]), float(data["elapsed"])
        )
    return state, weights, optimizer


@dataclass(frozen=True)
class RunFolder:
    """The files of one run folder, and whether it holds a finished run."""

    path: Path

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))

    @property
    def config(self) -> Path:
        return self.path / _CONFIG

    @property
    def metrics(self) -> Path:
        return self.path / _METRICS

    @property
    def summary(self) -> Path:
        return self.path / _SUMMARY

    @property
    def figure(self) -> Path:
        return self.path / _FIGURE

    @property
    def checkpoint(self) -> Path:
        return self.path / _CHECKPOINT

    def is_finished(self) -> bool:
        """True once ``summary.json`` exists."""
        return self.summary.exists()

    def saved_config(self) -> dict | None:
        """The contents of ``config.json``, or None if there is none."""
        if not self.config.exists():
            return None
        return json.loads(self.config.read_text())

    def write_config(self, record: dict) -> None:
        """Writes ``config.json`` atomically."""
        write_json_atomic(self.config, record)

    def read_metrics(self) -> list[dict[str, float]]:
        """The rows of ``metrics.csv`` ([] before the first)."""
        return read_metrics(self.metrics)

    def read_summary(self) -> dict | None:
        """The contents of ``summary.json``, or None for an unfinished run."""
        if not self.summary.exists():
            return None
        return json.loads(self.summary.read_text())

    def write_summary(self, summary: dict) -> None:
        """Writes ``summary.json``, the "finished" mark: call it once, last."""
        write_json_atomic(self.summary, summary)

    def clear(self) -> None:
        """Removes this run's files (and nothing else) from the folder."""
        for path in (
            self.config,
            self.metrics,
            self.summary,
            self.figure,
            self.checkpoint,
        ):
            path.unlink(missing_ok=True)
