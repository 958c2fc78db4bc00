"""Who holds a run folder's lock: the owner's process id and start time."""

from __future__ import annotations

import os
from pathlib import Path


def lock_owner(path: Path) -> tuple[int, int | None] | None:
    # "PID START" (START: the process's start time, where /proc has it).
    try:
        words = path.read_text().split()
        return int(words[0]), (int(words[1]) if len(words) > 1 else None)
    except (OSError, ValueError, IndexError):
        return None


def is_alive(pid: int, start: int | None = None) -> bool:
    # A pid no process can have (0 and negatives address process groups, a huge
    # one overflows): a damaged lock, held by nobody.
    if not 0 < pid < 2**22:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    except OSError:  # any other answer: no such process to wait for
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): the process id is all there is
    fields = stat[stat.rfind(")") + 2 :].split()
    if not fields or fields[0] in ("Z", "X"):  # killed, not yet reaped
        return False
    return start is None or (len(fields) > 19 and int(fields[19]) == start)


def start_time(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat[stat.rfind(")") + 2 :].split()[19])
    except (OSError, ValueError, IndexError):
        return None
