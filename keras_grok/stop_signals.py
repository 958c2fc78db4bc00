"""Stop signals (SIGTERM, Ctrl-C, SIGHUP) as an exception that unwinds a run.

``keras-grok run`` holds these while a run goes on: the first signal raises
``Terminated`` where the run is, so its ``finally`` blocks end a sweep's runs,
release the folder's lock and leave every file whole, and the command exits with
128 + the signal. Imports no Keras.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import threading
import time

STOP_REPEAT_SECONDS = 5.0
"""Further stop signals this soon after the first are ignored (clean-up runs)."""

STOP_SIGNALS = {
    signal.SIGTERM: "terminated (SIGTERM)",
    signal.SIGINT: "interrupted (Ctrl-C)",
    **({signal.SIGHUP: "hung up (SIGHUP)"} if hasattr(signal, "SIGHUP") else {}),
}
"""The signals that stop a run, and how its one line names each."""


class Terminated(BaseException):
    """A stop signal arrived (SIGTERM, Ctrl-C, SIGHUP): unwinds the run so its
    lock, children and files are tidied.

    A ``BaseException``, like ``KeyboardInterrupt``, so no ``except Exception``
    on the way swallows it.
    """

    def __init__(self, signum: int = signal.SIGTERM):
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def raise_on_stop_signals():
    """While the block runs, a stop signal raises ``Terminated`` in it.

    Only in the main thread (the only one that may handle signals); a signal the
    process ignores (``nohup``, a background job's Ctrl-C) stays ignored. The
    previous handlers come back afterwards.
    """
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in STOP_SIGNALS:
            if signal.getsignal(signum) is not signal.SIG_IGN:
                previous[signum] = signal.signal(signum, raise_terminated)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


_stop_raised_at: list[float] = []


def raise_terminated(signum, frame) -> None:
    """The handler: raises ``Terminated`` once, and again after a while.

    Stop signals in the few seconds after the first are ignored, so the clean-up
    (ending a sweep's runs, releasing the lock) is not cut short; a later one
    raises again, in case the first was swallowed. Inside a garbage-collection
    callback (JAX has one), where Python prints and drops an exception, the
    signal is sent again 0.1 s later instead; so it is during an import, where
    an exception raised inside a native module's initialization (jaxlib's)
    aborts the process instead of unwinding it.
    """
    if _in_gc_callback(frame) or _in_import(frame):
        threading.Timer(0.1, os.kill, (os.getpid(), signum)).start()
        return
    now = time.monotonic()
    if _stop_raised_at and now - _stop_raised_at[-1] < STOP_REPEAT_SECONDS:
        return
    _stop_raised_at.append(now)
    raise Terminated(signum)


def _in_gc_callback(frame) -> bool:
    # Whether the interrupted code is a garbage-collection callback.
    codes = {getattr(c, "__code__", None) for c in gc.callbacks}
    while frame is not None:
        if frame.f_code in codes:
            return True
        frame = frame.f_back
    return False


def _in_import(frame) -> bool:
    # Whether the interrupted code runs inside an import statement.
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib._bootstrap"):
            return True
        frame = frame.f_back
    return False
