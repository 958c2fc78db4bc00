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
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from keras_grok.runs.checkpoint_file import (
    CheckpointState,
    checkpoint_bytes,
    read_checkpoint,
    read_checkpoint_state,
    write_checkpoint,
)
from keras_grok.runs.file_io import (
    FIX,
    RunFolderError,
    nan_to_none,
    read_json,
    remove_if_empty,
    write_atomic,
    write_json_atomic,
)
from keras_grok.runs.folder_lock import is_alive, lock_owner, start_time
from keras_grok.runs.metrics_file import (
    MetricsFile,
    last_metrics_step,
    merge_rows,
    read_metrics,
    truncate_metrics,
    write_metrics_atomic,
)

__all__ = [
    "CheckpointState",
    "MetricsFile",
    "RunFolder",
    "RunFolderError",
    "checkpoint_bytes",
    "checkpoint_stamp",
    "config_fingerprint",
    "merge_rows",
    "read_checkpoint",
    "read_metrics",
    "truncate_metrics",
    "write_atomic",
    "write_checkpoint",
    "write_json_atomic",
    "write_metrics_atomic",
]

_CONFIG, _METRICS, _SUMMARY = "config.json", "metrics.csv", "summary.json"
_FIGURE, _CHECKPOINT = "figure.png", "checkpoint.npz"
_LOG, _LOCK, _RUNS = "log.txt", ".lock", "runs"
_TABLES = ("table.md", "table.csv")
_IDENTITY = ("recipe", "backend", "seed", "config")
_HISTORY, _REPLAYS, _JOBS = "checkpoints", "replays", "jobs"


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
    text = json.dumps(nan_to_none(identity), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


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

    def replay_job(self, name: str) -> Path:
        """The folder of one replay job of a fan-out (``replays/jobs/NAME``:
        its ``log.txt``)."""
        return self.path / _REPLAYS / _JOBS / name

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
            self.read_summary()  # a damaged summary is named as such
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
                    f"they may belong to another config; {FIX}"
                )
            return
        changed = [k for k in _IDENTITY if not _same(k, saved.get(k), record.get(k))]
        if changed:
            kind = "a finished" if self.is_finished() else "an unfinished"
            raise RunFolderError(
                f"{self.path} holds {kind} run with another {', '.join(changed)} "
                f"({_differences(saved, record, changed)}); rerun with the same "
                "settings to resume, pass --overwrite to start over, or choose "
                "another --out"
            )
        if not self.checkpoint.exists():
            return
        state = read_checkpoint_state(self.checkpoint)
        if state.fingerprint and state.fingerprint != config_fingerprint(record):
            raise RunFolderError(
                f"{self.checkpoint} was saved by a run of another config or seed "
                f"than {_CONFIG} records; {FIX}"
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
                f"of the steps before it are lost; {FIX}"
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
        return read_json(self.config)

    def write_config(self, record: dict) -> None:
        """Writes ``config.json`` atomically."""
        write_json_atomic(self.config, record)

    def read_metrics(self) -> list[dict[str, float]]:
        """The rows of ``metrics.csv`` ([] before the first)."""
        return read_metrics(self.metrics)

    def read_summary(self) -> dict | None:
        """The contents of ``summary.json``, or None for an unfinished run."""
        return read_json(self.summary)

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
                    remove_if_empty(path)
            remove_if_empty(nested)
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
        jobs = self.path / _REPLAYS / _JOBS
        if jobs.is_dir():
            for path in jobs.iterdir():
                RunFolder(path).log.unlink(missing_ok=True)
                remove_if_empty(path)
            remove_if_empty(jobs)
        for owned in (self.history, self.path / _REPLAYS):
            if owned.is_dir():
                for path in owned.iterdir():
                    if path.suffix in (".npz", ".csv", ".tmp"):
                        path.unlink(missing_ok=True)
                remove_if_empty(owned)

    @contextlib.contextmanager
    def lock(self, part: str | None = None):
        """Holds the folder for one process while the ``with`` block runs.

        ``part`` holds only one part of the folder instead (``.lock-PART``), so
        that processes writing different parts (replays of different lenses)
        run side by side; it leaves other processes' temporary files alone.

        The lock is a file created exclusively and holding the owner's process
        id and start time; it is removed on leaving the block. A lock left by a
        process that is gone (killed, a zombie, or its id reused by another
        process) is taken over. Once locked, the temporary files of atomic writes
        that an earlier process left half-done are removed.

        Raises:
            RunFolderError: another live process holds the folder, or the lock's
                path is a directory.
        """
        path = self.path / (_LOCK if part is None else f"{_LOCK}-{part}")
        if path.exists() and not path.is_file():
            raise RunFolderError(
                f"{path} is a directory, not a lock file; remove it, or choose "
                "another --out"
            )
        for _ in range(3):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = lock_owner(path)
                if owner is None:  # created but not yet written: look again
                    time.sleep(0.2)
                    owner = lock_owner(path)
                if owner is not None and is_alive(*owner):
                    raise RunFolderError(
                        f"{self.path} is in use by process {owner[0]}; wait for it "
                        "to end, or choose another --out"
                    ) from None
                path.unlink(missing_ok=True)  # a stale lock: its process is gone
                continue
            me = (os.getpid(), start_time(os.getpid()))
            with os.fdopen(fd, "w") as f:
                f.write(" ".join(str(v) for v in me if v is not None))
            break
        else:
            raise RunFolderError(f"{self.path} cannot be locked; try again")
        try:
            if part is None:
                self._remove_temporary()
            yield self
        finally:
            if (lock_owner(path) or (None,))[0] == os.getpid():
                path.unlink(missing_ok=True)


def _differences(saved: dict, record: dict, changed: list[str]) -> str:
    # What config.json records against what was asked, for the first few keys.
    found = []
    for key in changed:
        if key == "config" and isinstance(saved.get("config"), dict):
            wanted = json.loads(json.dumps(nan_to_none(record.get("config") or {})))
            keys = sorted(
                k
                for k in {*saved["config"], *wanted}
                if saved["config"].get(k, "missing") != wanted.get(k, "missing")
            )
            found += [
                f"{k}={_short(saved['config'].get(k, 'missing'))}, asked "
                f"{_short(wanted.get(k, 'missing'))}"
                for k in keys
            ]
        else:
            found.append(
                f"{key}={_short(saved.get(key, 'missing'))}, asked "
                f"{_short(record.get(key))}"
            )
    more = f" and {len(found) - 3} more" if len(found) > 3 else ""
    return f"{_CONFIG} records " + "; ".join(found[:3]) + more


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _same(key: str, saved, wanted) -> bool:
    if key == "recipe" and saved and wanted:
        return Path(saved).resolve() == Path(wanted).resolve()
    if key == "config":
        return json.loads(json.dumps(nan_to_none(wanted))) == saved
    return saved == wanted
