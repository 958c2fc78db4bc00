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

import contextlib
import io
import json
import math
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_CONFIG, _METRICS, _SUMMARY = "config.json", "metrics.csv", "summary.json"
_FIGURE, _CHECKPOINT = "figure.png", "checkpoint.npz"
_LOG, _LOCK, _RUNS = "log.txt", ".lock", "runs"
_FIX = "pass --overwrite to start the run over, or choose another --out"


class RunFolderError(ValueError):
    """A run folder holds a file this run cannot use (damaged, or another run's).

    The message names the file and what to do; nothing has been changed on disk.
    """


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

    Raises:
        RunFolderError: the file is not a metrics file of keras-grok (no ``step``
            column), holds a line that does not parse, or its steps do not
            increase.
    """
    path = Path(path)
    if not path.exists():
        return []
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise RunFolderError(f"{path} cannot be read ({error}); {_FIX}") from None
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    lines = text.splitlines()
    if not lines:
        return []
    columns = lines[0].split(",")
    if columns[0] != "step" or len(set(columns)) != len(columns):
        raise RunFolderError(
            f"{path} is not a metrics file of keras-grok (its header is "
            f"{lines[0][:80]!r}); {_FIX}"
        )
    rows, last = [], -1
    for number, line in enumerate(lines[1:], start=2):
        cells = line.split(",")
        try:
            if len(cells) != len(columns):
                raise ValueError(f"{len(cells)} cells for {len(columns)} columns")
            row = {"step": int(cells[0])}
            row.update((k, _to_float(v)) for k, v in zip(columns[1:], cells[1:]))
        except ValueError:
            raise RunFolderError(
                f"{path} line {number} is not a row of numbers: {line[:80]!r}; {_FIX}"
            ) from None
        if row["step"] <= last:
            raise RunFolderError(
                f"{path} line {number} has step {row['step']} after step {last} "
                f"(steps must increase); {_FIX}"
            )
        last = row["step"]
        rows.append(row)
    return rows


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
        RunFolderError: the file exists with other columns, or is damaged.
    """

    def __init__(self, path: str | os.PathLike, columns: list[str]):
        self.path = Path(path)
        self.columns = list(columns)
        existing = self.path.exists() and self.path.stat().st_size > 0
        if existing:
            with self.path.open() as f:
                header = f.readline().strip().split(",")
            if header != self.columns:
                raise RunFolderError(
                    f"{self.path} has other columns than this run writes "
                    f"({len(header)} columns, expected {len(self.columns)}); {_FIX}"
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
    rows = [r for r in read_metrics(path) if r["step"] <= last_step]
    with path.open() as f:
        header = f.readline()
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
    random: list[np.ndarray] = (),
) -> None:
    """Writes weights, optimizer variables, random states and ``state`` as one
    ``.npz``, atomically."""
    arrays = {f"weight_{i}": w for i, w in enumerate(weights)}
    arrays.update((f"optimizer_{i}", v) for i, v in enumerate(optimizer))
    arrays.update((f"random_{i}", v) for i, v in enumerate(random))
    buffer = io.BytesIO()
    np.savez(
        buffer, epoch=state.epoch, step=state.step, elapsed=state.elapsed, **arrays
    )
    write_atomic(path, buffer.getvalue())


def read_checkpoint(
    path: str | os.PathLike,
    num_weights: int,
    num_optimizer: int,
    num_random: int = 0,
) -> tuple[CheckpointState, list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Reads a checkpoint written by ``write_checkpoint``; None if there is none.

    Returns:
        ``(state, weights, optimizer variables, random states)``; the random
        states are ``[]`` for a checkpoint written without them.

    Raises:
        RunFolderError: the file is damaged, or holds another number of weights,
            optimizer variables or random states than asked for (another model).
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        with np.load(path) as data:
            counts = {
                group: sum(1 for k in data.files if k.startswith(f"{group}_"))
                for group in ("weight", "optimizer", "random")
            }
            expected = {
                "weight": num_weights,
                "optimizer": num_optimizer,
                "random": num_random if counts["random"] else 0,
            }
            if counts != expected:
                raise RunFolderError(
                    f"{path} does not match this model: it holds "
                    f"{counts['weight']} weights and {counts['optimizer']} "
                    f"optimizer variables, the model has {num_weights} and "
                    f"{num_optimizer}; {_FIX}"
                )
            weights = [data[f"weight_{i}"] for i in range(num_weights)]
            optimizer = [data[f"optimizer_{i}"] for i in range(num_optimizer)]
            random = [data[f"random_{i}"] for i in range(expected["random"])]
            state = CheckpointState(
                int(data["epoch"]), int(data["step"]), float(data["elapsed"])
            )
    except RunFolderError:
        raise
    except Exception as error:  # a torn or foreign file: zip, pickle or key errors
        raise RunFolderError(
            f"{path} is damaged or not a keras-grok checkpoint "
            f"({type(error).__name__}: {str(error)[:80]}); {_FIX}"
        ) from None
    return state, weights, optimizer, random


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

    @property
    def log(self) -> Path:
        """The output of the run's process, when a sweep started it."""
        return self.path / _LOG

    def child(self, name: str) -> RunFolder:
        """The run folder ``name`` nested in this one (a sweep's runs)."""
        return RunFolder(self.path / _RUNS / name)

    def saved_config(self) -> dict | None:
        """The contents of ``config.json``, or None if there is none.

        Raises:
            RunFolderError: the file is not a JSON object.
        """
        return _read_json(self.config)

    def write_config(self, record: dict) -> None:
        """Writes ``config.json`` atomically."""
        write_json_atomic(self.config, record)

    def read_metrics(self) -> list[dict[str, float]]:
        """The rows of ``metrics.csv`` ([] before the first)."""
        return read_metrics(self.metrics)

    def read_summary(self) -> dict | None:
        """The contents of ``summary.json``, or None for an unfinished run."""
        return _read_json(self.summary)

    def write_summary(self, summary: dict) -> None:
        """Writes ``summary.json``, the "finished" mark: call it once, last."""
        write_json_atomic(self.summary, summary)

    def clear(self) -> None:
        """Removes this run's files and nested run folders, and nothing else."""
        nested = self.path / _RUNS
        if nested.is_dir():
            for path in sorted(nested.iterdir()):
                if path.is_dir():
                    child = RunFolder(path)
                    child.clear()
                    child.log.unlink(missing_ok=True)
                    _remove_if_empty(path)
            _remove_if_empty(nested)
        for path in (
            self.config,
            self.metrics,
            self.summary,
            self.figure,
            self.checkpoint,
        ):
            path.unlink(missing_ok=True)

    @contextlib.contextmanager
    def lock(self):
        """Holds the folder for one process while the ``with`` block runs.

        The lock is a file created exclusively and holding the owner's process
        id; it is removed on leaving the block. A lock left by a process that is
        gone (killed) is taken over.

        Raises:
            RunFolderError: another live process holds the folder.
        """
        path = self.path / _LOCK
        for _ in range(3):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = _lock_owner(path)
                if owner is None:  # created but not yet written: look again
                    time.sleep(0.2)
                    owner = _lock_owner(path)
                if owner is not None and _alive(owner):
                    raise RunFolderError(
                        f"{self.path} is in use by process {owner}; wait for it to "
                        "end, or choose another --out"
                    ) from None
                path.unlink(missing_ok=True)  # a stale lock: its process is gone
                continue
            with os.fdopen(fd, "w") as f:
                f.write(str(os.getpid()))
            break
        else:
            raise RunFolderError(f"{self.path} cannot be locked; try again")
        try:
            yield self
        finally:
            if _lock_owner(path) == os.getpid():
                path.unlink(missing_ok=True)


def _read_json(path: Path) -> dict | None:
    if not path.exists():
        return None
    try:
        value = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RunFolderError(
            f"{path} is not readable JSON ({str(error)[:60]}); {_FIX}"
        ) from None
    if not isinstance(value, dict):
        raise RunFolderError(f"{path} does not hold a JSON object; {_FIX}")
    return value


def _remove_if_empty(path: Path) -> None:
    with contextlib.suppress(OSError):  # it holds files not a run's: leave them
        path.rmdir()


def _lock_owner(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
