"""A standard output whose failure does not stop a run.

The command line shows progress and a closing line on stdout, but a run's results
are its folder's files. A daemon or job runner may start it with stdout closed
(``>&-``: ``sys.stdout`` is None) or pointed at a full device (``>/dev/full``:
each flush raises ``OSError``). Either used to end the run at its first progress
update; behind ``guard_standard_output`` the run trains and records, and a lost
stdout is said once on stderr.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO


class _LossTolerantStream:
    """Forwards to ``stream``; after its first ``OSError``, drops the output."""

    def __init__(self, stream: TextIO):
        self._stream = stream
        self.failure: OSError | None = None

    def write(self, text: str) -> int:
        if self.failure is None:
            try:
                return self._stream.write(text)
            except OSError as error:
                self._fail(error)
        return len(text)

    def flush(self) -> None:
        if self.failure is None:
            try:
                self._stream.flush()
            except OSError as error:
                self._fail(error)

    def _fail(self, error: OSError) -> None:
        self.failure = error
        if sys.stderr is not None:
            sys.stderr.write(
                "Warning: writing to the standard output failed "
                f"({error.strerror or error}); the run goes on without progress "
                "output, and its results are in its folder (summary.json)\n"
            )

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def guard_standard_output() -> None:
    """Makes ``sys.stdout`` safe to write for the rest of this process.

    A closed stdout becomes ``os.devnull``; an open one is wrapped so that a
    failing write (a full device, a closed pipe) is reported once on stderr and
    later output is dropped.
    """
    if sys.stdout is None:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    elif not isinstance(sys.stdout, _LossTolerantStream):
        sys.stdout = _LossTolerantStream(sys.stdout)
