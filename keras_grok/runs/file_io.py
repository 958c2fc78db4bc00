"""Writing a run's files so that a kill never leaves one half-written.

``write_atomic`` replaces a file by an atomic rename of a fsynced temporary file;
a write that fails (a full disk) raises ``OSError`` naming the file. Shared by
``run_folder`` (which alone knows the files' names), ``metrics_file`` and
``checkpoint_file``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import tempfile
from pathlib import Path

FIX = (
    "rerun its keras-grok run command with --overwrite to start it over, or "
    "choose another --out"
)


class RunFolderError(ValueError):
    """A run folder holds a file this run cannot use (damaged, or another run's).

    The message names the file and what to do; nothing has been changed on disk.
    """


def write_atomic(path: str | os.PathLike, data: bytes | str) -> None:
    """Writes ``data`` to ``path`` so that a reader sees the old file or the new one.

    Raises:
        IsADirectoryError: ``path`` is a folder.
        FileNotFoundError: ``path``'s folder does not exist.
        OSError: the write failed (a full disk); each names ``path``.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(
            errno.EISDIR, "cannot write a file over a folder of that name", str(path)
        )
    if not path.parent.is_dir():
        raise FileNotFoundError(
            errno.ENOENT, "the folder to write this file into does not exist",
            str(path),
        )  # fmt: skip
    try:
        fd, tmp = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
        )
    except OSError as error:  # it names the temporary file: name the target
        error.filename = str(path)
        raise
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a result file is not
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(error, OSError) and error.filename == tmp:
            error.filename = str(path)
        name_the_file(error, path)
        raise


def name_the_file(error: BaseException, path: Path) -> None:
    # A failed write (ENOSPC, EIO) says which file it was writing.
    if isinstance(error, OSError) and error.filename is None:
        error.filename = str(path)


def write_json_atomic(path: str | os.PathLike, obj) -> None:
    """Writes ``obj`` as indented JSON (NaN and inf become null), atomically."""
    write_atomic(path, json.dumps(nan_to_none(obj), indent=2, sort_keys=True) + "\n")


def nan_to_none(obj):
    """``obj`` as JSON holds it: NaN and inf as None, NumPy scalars and arrays
    as Python numbers and lists."""
    if type(obj).__module__ == "numpy" and hasattr(obj, "tolist"):
        obj = obj.tolist()  # np.int64(3) -> 3, an array -> a list (no NumPy import)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [nan_to_none(v) for v in obj]
    return obj


def read_json(path: Path) -> dict | None:
    if not path.exists():
        return None
    try:
        value = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RunFolderError(
            f"{path} is not readable JSON ({str(error)[:60]}); {FIX}"
        ) from None
    if not isinstance(value, dict):
        raise RunFolderError(f"{path} does not hold a JSON object; {FIX}")
    return value


def remove_if_empty(path: Path) -> None:
    with contextlib.suppress(OSError):  # it holds files not a run's: leave them
        path.rmdir()
