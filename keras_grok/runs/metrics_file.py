"""A run's metrics CSV: one row per measured step, each written in one flushed write.

Values are written with ``repr`` (every digit of a float), a torn last line is
dropped when read back, and rewrites go through ``write_atomic``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from keras_grok.runs.file_io import (
    FIX,
    RunFolderError,
    name_the_file,
    write_atomic,
)


def read_metrics(path: str | os.PathLike) -> list[dict[str, float]]:
    """Reads a metrics CSV into dicts of floats (``step`` as int); [] if absent.

    A last line without its newline (a write cut off by a crash) is ignored.

    Raises:
        RunFolderError: the file is not a metrics file of keras-grok (no ``step``
            column, or a repeated column), holds a line that does not parse, or
            its steps do not increase. Columns are read by name, in any order.
    """
    path = Path(path)
    if not path.exists():
        return []
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise RunFolderError(f"{path} cannot be read ({error}); {FIX}") from None
    if text.startswith("\ufeff"):  # a byte-order mark (a spreadsheet's save)
        text = text[1:]
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    lines = text.splitlines()
    while lines and not lines[-1].strip():  # blank lines at the end: nothing lost
        lines.pop()
    if not lines:
        return []
    columns = lines[0].split(",")
    # Read by name: a file whose columns another tool reordered reads the same.
    if "step" not in columns or len(set(columns)) != len(columns):
        raise RunFolderError(
            f"{path} is not a metrics file of keras-grok (its header is "
            f"{lines[0][:80]!r}); {FIX}"
        )
    step_at, rows, last = columns.index("step"), [], -1
    for number, line in enumerate(lines[1:], start=2):
        cells = line.split(",")
        try:
            if len(cells) != len(columns):
                raise ValueError(f"{len(cells)} cells for {len(columns)} columns")
            row = {k: _to_float(v) for k, v in zip(columns, cells) if k != "step"}
            row = {"step": int(cells[step_at]), **row}
        except ValueError:
            raise RunFolderError(
                f"{path} line {number} is not a row of numbers: {line[:80]!r}; {FIX}"
            ) from None
        if row["step"] <= last:
            raise RunFolderError(
                f"{path} line {number} has step {row['step']} after step {last} "
                f"(steps must increase); {FIX}"
            )
        last = row["step"]
        rows.append(row)
    return rows


def _to_float(value: str) -> float:
    return float(value) if value not in ("", None) else math.nan


def format_row(record: dict, columns: list[str]) -> str:
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
        RunFolderError: the file exists with other columns, or is damaged.
        ValueError: ``columns`` not distinct names with ``"step"`` first
            (``check_columns``).
    """

    def __init__(self, path: str | os.PathLike, columns: list[str]):
        self.path = Path(path)
        self.columns = check_columns(columns)
        existing = self.path.exists() and self.path.stat().st_size > 0
        if existing:
            with self.path.open() as f:
                header = f.readline().strip().split(",")
            if header != self.columns:
                raise RunFolderError(
                    f"{self.path} has other columns than this run writes "
                    f"({len(header)} columns, expected {len(self.columns)}): "
                    "record to another path, or remove that file first (for a "
                    "keras-grok run: pass --overwrite, or choose another --out)"
                )
        rows = read_metrics(self.path)
        self.last_step = rows[-1]["step"] if rows else -1
        self._file = self.path.open("a", buffering=1)
        if not existing:
            self._write(",".join(self.columns) + "\n")

    def append(self, record: dict) -> None:
        """Writes one row: ``record``'s values of ``columns``, in their order.

        A column the record lacks is written as NaN; a key of the record that is
        not a column is not written (a monitor's records may carry more than its
        logged metrics): make the file with every column to keep.
        """
        self._write(format_row(record, self.columns))
        self.last_step = int(record["step"])

    def close(self) -> None:
        self._file.close()

    def _write(self, line: str) -> None:
        try:
            self._file.write(line)
            self._file.flush()
        except OSError as error:
            name_the_file(error, self.path)
            raise


def check_columns(columns) -> list[str]:
    """Returns ``columns`` as a list if they can head a metrics CSV.

    Raises:
        TypeError: not a list of strings.
        ValueError: empty, ``"step"`` not first, a name listed twice, or a name
            that is empty or holds a comma or a line break.
    """
    if isinstance(columns, (str, bytes)) or not isinstance(columns, (list, tuple)):
        raise TypeError(
            f"columns must be a list of column names. Received: columns={columns!r}"
        )
    columns = list(columns)
    if not all(isinstance(c, str) for c in columns):
        raise TypeError(
            f"columns must be a list of strings. Received: columns={columns!r}"
        )
    if not columns or columns[0] != "step":
        raise ValueError(
            f'columns must start with "step". Received: columns={columns!r}'
        )
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise ValueError(
            f"columns must be distinct; {', '.join(repeated)} is listed twice. "
            f"Received: columns={columns!r}"
        )
    bad = [c for c in columns if not c or any(ch in c for ch in ",\r\n")]
    if bad:
        raise ValueError(
            "a column name must be non-empty, without commas or line breaks. "
            f"Received: columns={columns!r}"
        )
    return columns


def last_metrics_step(path: str | os.PathLike) -> int:
    """The step of the last whole row of a metrics CSV; -1 if it has none.

    Reads the end of the file only, so it is cheap to call at every checkpoint.
    """
    try:
        with Path(path).open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(f.tell() - 65536, 0))
            tail = f.read().decode(errors="replace")
    except OSError:
        return -1
    lines = tail[: tail.rfind("\n") + 1].splitlines()
    for line in reversed(lines):
        first = line.split(",", 1)[0]
        if first.isdigit():
            return int(first)
    return -1


def truncate_metrics(path: str | os.PathLike, last_step: int) -> list[dict[str, float]]:
    """Keeps the rows of steps <= ``last_step`` (atomically) and returns them."""
    path = Path(path)
    if not path.exists():
        return []
    rows = [r for r in read_metrics(path) if r["step"] <= last_step]
    with path.open() as f:
        header = f.readline()
    columns = header.strip().split(",")
    lines = [header] + [format_row(r, columns) for r in rows]
    write_atomic(path, "".join(lines) if header.endswith("\n") else "")
    return rows


def merge_rows(*tables) -> list[dict]:
    """Rows of several metrics tables merged per step, in step order.

    A later table's value wins, except a NaN ("not measured here"), which never
    hides a measured value.
    """
    merged: dict[int, dict] = {}
    for rows in tables:
        for row in rows:
            into = merged.setdefault(int(row["step"]), {})
            for key, value in row.items():
                if key not in into or not _is_nan(value):
                    into[key] = value
    return [merged[s] for s in sorted(merged)]


def _is_nan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)


def write_metrics_atomic(
    path: str | os.PathLike, columns: list[str], rows: list[dict]
) -> None:
    """Writes a whole metrics CSV (``columns``, then ``rows``) atomically.

    The file's folder is made if it does not exist (with its parents).

    Raises:
        ValueError: ``columns`` not distinct names with ``"step"`` first.
        OSError: the folder cannot be made or the file written; it names
            the path.
    """
    columns = check_columns(columns)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(columns) + "\n"] + [format_row(r, columns) for r in rows]
    write_atomic(path, "".join(lines))


def with_columns_of(columns: list[str], rows) -> list[str]:
    """``columns``, then every other key of ``rows`` in first-seen order.

    For a file rewritten with new rows: the columns of the rows it held stay.
    """
    seen = dict.fromkeys(columns)
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)
