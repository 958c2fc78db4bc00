"""The files of one run, and the only module that knows their names and formats.

- ``config.json``: the resolved config, backend, package versions and seed;
- ``metrics.csv``: one row per measured step, written row by row;
- ``checkpoint.npz``: the latest training state, for resuming, stamped with the
  fingerprint of ``config.json`` and the step of the last metrics row;
- ``figure.png``: the run's figure;
- ``table.md``, ``table.csv``: a sweep's table;
- ``runs/NAME/``: nested run folders (a sweep's runs, a recipe's parts);
- ``summary.json``: memorized_at, generalized_at, final metrics, wall time. Written
  once, last and atomically: its presence marks a finished run.

A folder's files always belong to its ``config.json``: ``RunFolder.check_resumable``
refuses, before training, a folder whose files disagree with each other or with
the run asked for, and ``RunFolder.clear`` removes everything a run owns.

A run killed at any moment leaves every file whole: JSON, the figure and the
checkpoint are replaced by an atomic rename; each metrics row is one ``write``
followed by a flush, a torn last line is dropped when the file is read back, and a
rewrite (on resume) goes through a temporary file and an atomic rename. The
temporary files of a write cut short (``.NAME.*.tmp``) are removed when the folder
is next locked. A write that fails (a full disk) raises ``OSError`` naming the file.
"""

from __future__ import annotations

import contextlib
import hashlib
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
_TABLES = ("table.md", "table.csv")
_IDENTITY = ("recipe", "backend", "seed", "config")
_HISTORY, _REPLAYS = "checkpoints", "replays"
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
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        _name_the_file(error, path)
        raise


def _name_the_file(error: BaseException, path: Path) -> None:
    # A failed write (ENOSPC, EIO) says which file it was writing.
    if isinstance(error, OSError) and error.filename is None:
        error.filename = str(path)


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
        try:
            self._file.write(line)
            self._file.flush()
        except OSError as error:
            _name_the_file(error, self.path)
            raise


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
    lines = [header] + [_format_row(r, columns) for r in rows]
    write_atomic(path, "".join(lines) if header.endswith("\n") else "")
    return rows


@dataclass(frozen=True)
class CheckpointState:
    """What a checkpoint says about the run: where to go on from, and whose it is.

    ``fingerprint`` is ``config_fingerprint`` of the run's config (``""`` when the
    checkpoint lies outside a run folder, or was written before fingerprints);
    ``last_row`` the step of the last metrics row written before it (None when
    unknown), so a metrics file that lost rows is recognized on resume.
    """

    epoch: int
    step: int
    elapsed: float
    fingerprint: str = ""
    last_row: int | None = None


def checkpoint_bytes(
    state: CheckpointState,
    weights: list[np.ndarray],
    optimizer: list[np.ndarray],
    random: list[np.ndarray] = (),
) -> bytes:
    """The ``.npz`` bytes of a checkpoint: weights, optimizer variables, random
    states and ``state``."""
    arrays = {f"weight_{i}": w for i, w in enumerate(weights)}
    arrays.update((f"optimizer_{i}", v) for i, v in enumerate(optimizer))
    arrays.update((f"random_{i}", v) for i, v in enumerate(random))
    if state.last_row is not None:
        arrays["last_row"] = np.asarray(state.last_row)
    buffer = io.BytesIO()
    np.savez(
        buffer,
        epoch=state.epoch,
        step=state.step,
        elapsed=state.elapsed,
        fingerprint=np.asarray(state.fingerprint),
        **arrays,
    )
    return buffer.getvalue()


def write_checkpoint(
    path: str | os.PathLike,
    state: CheckpointState,
    weights: list[np.ndarray],
    optimizer: list[np.ndarray],
    random: list[np.ndarray] = (),
) -> None:
    """Writes weights, optimizer variables, random states and ``state`` as one
    ``.npz``, atomically."""
    write_atomic(path, checkpoint_bytes(state, weights, optimizer, random))


def checkpoint_stamp(path: str | os.PathLike) -> dict:
    """``fingerprint`` and ``last_row`` for the checkpoint ``path`` of a run folder.

    The ``CheckpointState`` fields that say whose the checkpoint is, read from
    the folder that holds ``path`` (``""`` and -1 outside a run folder).
    """
    folder = RunFolder(Path(path).parent)
    return {
        "fingerprint": folder.fingerprint() or "",
        "last_row": last_metrics_step(folder.metrics),
    }


def config_fingerprint(record: dict) -> str:
    """A short hash of what makes a run: its recipe, backend, seed and config."""
    identity = {key: record.get(key) for key in _IDENTITY}
    if identity["recipe"]:
        identity["recipe"] = str(Path(identity["recipe"]).resolve())
    text = json.dumps(_nan_to_none(identity), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


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
            state = _state(data)
    except RunFolderError:
        raise
    except Exception as error:  # a torn or foreign file: zip, pickle or key errors
        raise RunFolderError(
            f"{path} is damaged or not a keras-grok checkpoint "
            f"({type(error).__name__}: {str(error)[:80]}); {_FIX}"
        ) from None
    return state, weights, optimizer, random


def _read_state(path: Path) -> CheckpointState:
    # The state of an existing checkpoint (with its stamp), without its arrays.
    try:
        with np.load(path) as data:
            return _state(data)
    except Exception as error:  # a torn or foreign file: zip, pickle or key errors
        raise RunFolderError(
            f"{path} is damaged or not a keras-grok checkpoint "
            f"({type(error).__name__}: {str(error)[:80]}); {_FIX}"
        ) from None


def _state(data) -> CheckpointState:
    files = data.files
    return CheckpointState(
        int(data["epoch"]),
        int(data["step"]),
        float(data["elapsed"]),
        str(data["fingerprint"]) if "fingerprint" in files else "",
        int(data["last_row"]) if "last_row" in files else None,
    )


@dataclass(frozen=True)
class RunFolder:
    """The files of one run folder: their names, whether they agree, their lock.

    Everything a run owns is named here, so ``clear`` removes all of it (nested
    runs and a sweep's tables included) and ``check_resumable`` can tell whether
    the files belong to the run asked for before it trains.
    """

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

    @property
    def history(self) -> Path:
        """The folder of the checkpoint history (``checkpoints/step_N.npz``)."""
        return self.path / _HISTORY

    def history_checkpoint(self, step: int) -> Path:
        """The history checkpoint of ``step`` (whether it exists or not)."""
        return self.history / f"step_{int(step):09d}.npz"

    def history_checkpoints(self) -> list[tuple[int, Path]]:
        """``(step, path)`` of every checkpoint of the history, by step."""
        if not self.history.is_dir():
            return []
        found = []
        for path in self.history.glob("step_*.npz"):
            with contextlib.suppress(ValueError):
                found.append((int(path.stem[len("step_") :]), path))
        return sorted(found)

    def replay_metrics(self, name: str) -> Path:
        """The metrics file of lenses measured after the fact (``replays/NAME.csv``)."""
        return self.path / _REPLAYS / f"{name}.csv"

    def read_measurements(self) -> list[dict[str, float]]:
        """Every measured row of the run: ``metrics.csv`` and the replays' files,
        merged per step (every lens on one time axis)."""
        replays = sorted((self.path / _REPLAYS).glob("*.csv"))
        return merge_rows(self.read_metrics(), *(read_metrics(p) for p in replays))

    def is_finished(self) -> bool:
        """True once ``summary.json`` exists."""
        return self.summary.exists()

    @property
    def log(self) -> Path:
        """The output of the run's process, when a sweep started it."""
        return self.path / _LOG

    def child(self, name: str) -> RunFolder:
        """The run folder ``name`` nested in this one (a sweep's or a recipe's runs)."""
        return RunFolder(self.path / _RUNS / name)

    @property
    def tables(self) -> tuple[Path, Path]:
        """A sweep's tables: ``table.md`` and ``table.csv``."""
        return tuple(self.path / name for name in _TABLES)

    def write_tables(self, markdown: str, csv: str) -> None:
        """Writes a sweep's tables, each atomically."""
        for path, text in zip(self.tables, (markdown, csv)):
            write_atomic(path, text)

    def fingerprint(self) -> str | None:
        """``config_fingerprint`` of ``config.json``; None if there is none."""
        saved = self.saved_config()
        return None if saved is None else config_fingerprint(saved)

    def check_resumable(self, record: dict) -> None:
        """Refuses, before training, a folder this run cannot go on in.

        A folder is resumed only if it is not finished and its files agree with
        each other and with ``record`` (see ``check_matches``).

        Args:
            record: what ``config.json`` would hold for the run asked for: at
                least ``recipe``, ``backend``, ``seed`` and ``config``.

        Raises:
            RunFolderError: one line naming the file that disagrees and what to do.
        """
        self.check_files()
        if self.is_finished():
            raise RunFolderError(
                f"{self.path} already holds a finished run; pass --overwrite to "
                "replace it or choose another --out"
            )
        self.check_matches(record)

    def check_matches(self, record: dict) -> None:
        """Refuses files that belong to another run than ``record``'s.

        - files without ``config.json`` (whose config is unknown);
        - ``config.json`` of another recipe, backend, seed or config (a recipe
          named by another path to the same file is the same recipe);
        - a checkpoint stamped with another config's fingerprint;
        - a metrics file that lost rows the checkpoint was saved after (deleted,
          cut short, or a checkpoint of a later run).

        Raises:
            RunFolderError: one line naming the file and what to do.
        """
        self.check_files()
        saved = self.saved_config()
        if saved is None:
            found = self._owned()
            if found:
                raise RunFolderError(
                    f"{self.path} holds {', '.join(found)} but no {_CONFIG}, so "
                    f"they may belong to another config; {_FIX}"
                )
            return
        changed = [k for k in _IDENTITY if not _same(k, saved.get(k), record.get(k))]
        if changed:
            kind = "a finished" if self.is_finished() else "an unfinished"
            raise RunFolderError(
                f"{self.path} holds {kind} run with another {', '.join(changed)}; "
                "rerun with the same settings to resume, pass --overwrite to start "
                "over, or choose another --out"
            )
        if not self.checkpoint.exists():
            return
        state = _read_state(self.checkpoint)
        if state.fingerprint and state.fingerprint != config_fingerprint(record):
            raise RunFolderError(
                f"{self.checkpoint} was saved by a run of another config or seed "
                f"than {_CONFIG} records; {_FIX}"
            )
        steps = [r["step"] for r in self.read_metrics() if r["step"] <= state.step]
        last = steps[-1] if steps else None
        needed = state.last_row if state.last_row is not None else 0
        if state.step >= 1 and needed >= 0 and (last is None or last < needed):
            found = f"ends at step {last}" if steps else "has no rows"
            if not self.metrics.exists():
                found = "is missing"
            raise RunFolderError(
                f"{self.metrics} {found}, but {self.checkpoint} (step {state.step}) "
                f"was saved after its row of step {max(needed, 1)}: the metrics "
                f"of the steps before it are lost; {_FIX}"
            )

    def check_files(self) -> None:
        """Refuses a directory (or other non-file) where a run writes a file.

        Raises:
            RunFolderError: naming the path.
        """
        files = (self.config, self.metrics, self.summary, self.figure)
        for path in (*files, self.checkpoint, *self.tables, self.path / _LOCK):
            if path.exists() and not path.is_file():
                raise RunFolderError(
                    f"{path} is a directory, not a file this run can write; "
                    "remove or rename it, or choose another --out"
                )
        for path in (self.path / _RUNS, self.history, self.path / _REPLAYS):
            if path.exists() and not path.is_dir():
                raise RunFolderError(
                    f"{path} is a file where runs keep a folder; remove or rename "
                    "it, or choose another --out"
                )

    def discard_if_untrained(self) -> None:
        """Removes ``config.json`` if nothing else of the run exists yet.

        For a run refused after its config was written: the folder is left as
        if the command had not run, so the corrected command is not refused.
        """
        if not self._owned():
            self.config.unlink(missing_ok=True)
            self._remove_temporary()

    def _owned(self) -> list[str]:
        # What the run wrote besides its config (and the process's lock and log).
        paths = (self.metrics, self.checkpoint, self.summary, self.figure)
        nested = (self.path / _RUNS, self.history, self.path / _REPLAYS)
        return [p.name for p in (*paths, *self.tables, *nested) if p.exists()]

    def _remove_temporary(self) -> None:
        # Temporary files of atomic writes cut short (``.NAME.*.tmp``).
        for folder in (self.path, self.history, self.path / _REPLAYS):
            if folder.is_dir():
                for path in folder.glob(".*.*.tmp"):
                    with contextlib.suppress(OSError):
                        path.unlink()

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
        """Removes everything this run owns, and nothing else.

        Its files, a sweep's tables, nested run folders (with their logs), the
        checkpoint history and the temporary files of interrupted writes.

        Raises:
            RunFolderError: a directory stands where the run writes a file (it
                may hold anything: it is left alone).
        """
        self.check_files()
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
            *self.tables,
        ):
            path.unlink(missing_ok=True)
        self._remove_temporary()
        for owned in (self.history, self.path / _REPLAYS):
            if owned.is_dir():
                for path in owned.iterdir():
                    if path.suffix in (".npz", ".csv", ".tmp"):
                        path.unlink(missing_ok=True)
                _remove_if_empty(owned)

    @contextlib.contextmanager
    def lock(self):
        """Holds the folder for one process while the ``with`` block runs.

        The lock is a file created exclusively and holding the owner's process
        id and start time; it is removed on leaving the block. A lock left by a
        process that is gone (killed, a zombie, or its id reused by another
        process) is taken over. Once locked, the temporary files of atomic writes
        that an earlier process left half-done are removed.

        Raises:
            RunFolderError: another live process holds the folder, or the lock's
                path is a directory.
        """
        path = self.path / _LOCK
        if path.exists() and not path.is_file():
            raise RunFolderError(
                f"{path} is a directory, not a lock file; remove it, or choose "
                "another --out"
            )
        for _ in range(3):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = _lock_owner(path)
                if owner is None:  # created but not yet written: look again
                    time.sleep(0.2)
                    owner = _lock_owner(path)
                if owner is not None and _alive(*owner):
                    raise RunFolderError(
                        f"{self.path} is in use by process {owner[0]}; wait for it "
                        "to end, or choose another --out"
                    ) from None
                path.unlink(missing_ok=True)  # a stale lock: its process is gone
                continue
            me = (os.getpid(), _start_time(os.getpid()))
            with os.fdopen(fd, "w") as f:
                f.write(" ".join(str(v) for v in me if v is not None))
            break
        else:
            raise RunFolderError(f"{self.path} cannot be locked; try again")
        try:
            self._remove_temporary()
            yield self
        finally:
            if (_lock_owner(path) or (None,))[0] == os.getpid():
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


def _same(key: str, saved, wanted) -> bool:
    if key == "recipe" and saved and wanted:
        return Path(saved).resolve() == Path(wanted).resolve()
    if key == "config":
        return json.loads(json.dumps(_nan_to_none(wanted))) == saved
    return saved == wanted


def _lock_owner(path: Path) -> tuple[int, int | None] | None:
    # "PID START" (START: the process's start time, where /proc has it).
    try:
        words = path.read_text().split()
        return int(words[0]), (int(words[1]) if len(words) > 1 else None)
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int, start: int | None = None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): the process id is all there is
    fields = stat[stat.rfind(")") + 2 :].split()
    if fields[0] in ("Z", "X"):  # killed, not yet reaped by its parent
        return False
    return start is None or int(fields[19]) == start


def _start_time(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rfind(")") + 2 :].split()[19])


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
    """Writes a whole metrics CSV (``columns``, then ``rows``) atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(columns) + "\n"] + [_format_row(r, columns) for r in rows]
    write_atomic(path, "".join(lines))
