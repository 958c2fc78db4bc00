"""Where measurements go: a metrics CSV written row by row, and atomic JSON files.

A run killed at any moment leaves ``metrics.csv`` whole: each row is one ``write``
followed by a flush, a torn last line is dropped when the file is read back, and a
rewrite (on resume) goes through a temporary file and an atomic rename.
"""

from __future__ import annotations

import csv
import json
import math
import os
import tempfile
import time
from pathlib import Path

import keras

from keras_grok.callbacks.monitor import ScheduledMonitor, merged_records_after


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
    """Writes ``obj`` as indented JSON (NaN becomes null), atomically."""
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


def _format_row(record: dict, columns: list[str]) -> str:
    cells = []
    for name in columns:
        value = record.get(name, math.nan)
        cells.append(str(int(value)) if name == "step" else repr(float(value)))
    return ",".join(cells) + "\n"


class MetricsRecorder(keras.callbacks.Callback):
    """Appends one CSV row per measured step of the given monitors.

    Columns are ``step``, ``elapsed`` (seconds of training, summed over resumed
    sessions) and every monitor's ``metric_names``; a monitor that did not measure
    at a step leaves NaN there. Place this callback after the monitors.

    Args:
        path: the CSV file; appended to if it exists with the same columns.
        monitors: the ``ScheduledMonitor``s whose records to write.
        elapsed_offset: seconds already spent by earlier sessions of the run.
            Defaults to `0.0`.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        monitors: list[ScheduledMonitor],
        elapsed_offset: float = 0.0,
    ):
        super().__init__()
        self.path = Path(path)
        self.monitors = list(monitors)
        self.elapsed_offset = float(elapsed_offset)
        names = [n for m in self.monitors for n in m.metric_names]
        self.columns = ["step", "elapsed", *dict.fromkeys(names)]
        self._file = None

    def on_train_begin(self, logs=None):
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
        self._last_step = rows[-1]["step"] if rows else -1
        self._started = time.perf_counter()
        self._file = self.path.open("a", buffering=1)
        if not existing:
            self._write(",".join(self.columns) + "\n")

    def on_train_batch_begin(self, batch, logs=None):
        self._flush()

    def on_epoch_end(self, epoch, logs=None):
        self._flush()

    def on_train_end(self, logs=None):
        self._flush()
        self._file.close()
        self._file = None

    def elapsed(self) -> float:
        """Seconds of training so far, earlier sessions included."""
        return self.elapsed_offset + time.perf_counter() - self._started

    def _flush(self) -> None:
        for record in merged_records_after(self.monitors, self._last_step):
            self._write(
                _format_row({**record, "elapsed": self.elapsed()}, self.columns)
            )
            self._last_step = record["step"]

    def _write(self, line: str) -> None:
        self._file.write(line)
        self._file.flush()
