"""Executors: where a sweep's runs run (local processes, or tasks on a Ray cluster).

An executor takes the sweep's unfinished runs (``keras_grok.sweeps.sweep.SweepRun``) and
runs each one's ``keras-grok run`` command line to completion; it returns the
exit code of every run it started, by folder, and logs one line per started,
ended or failed run (a failed run's line holds its own last error line). Each
run still writes its own run folder, in the same layout whichever executor ran
it, so resume, skip-finished, aggregation, the figure and the table do not
depend on the executor.

- ``ProcessExecutor``: local subprocesses, at most ``parallel`` at a time (the
  default; nothing to install).
- ``RayExecutor``: one Ray task per run, scheduled by Ray over the cluster's
  CPUs and GPUs (``pip install 'keras-grok[ray]'``). The task runs the same
  command line with ``subprocess`` on a worker, so the run folders must live on
  a file system every worker sees (a shared or network file system) when the
  cluster has more than one machine.

Ray is the engine: keras-grok adds no scheduler, queue or RPC of its own.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from keras_grok.runs.run_folder import RunFolder
from keras_grok.sweeps.sweep import (
    CANNOT_START,
    WORKER_LOST,
    SweepRun,
    check_distinct_folders,
    run_all,
    run_failure,
)
from keras_grok.utils.argument_validation import (
    validate_choice_arg,
    validate_float_arg,
    validate_int_arg,
)

EXECUTORS = ("process", "ray")
RAY_INSTALL_HINT = "pip install 'keras-grok[ray]'"
_ADDRESS = re.compile(r"^(?:ray://)?([A-Za-z0-9_.\-\[\]:]+):(\d{1,5})$")


class ProcessExecutor:
    """Runs a sweep's runs as local processes, at most ``parallel`` at a time.

    Each run is a ``keras-grok run`` subprocess whose output goes to the
    ``log.txt`` of its run folder. Interrupting the sweep ends the processes it
    started.

    Args:
        parallel: most processes at once, >= 1. Defaults to `2`.
        poll_seconds: time between checks on running processes, in seconds,
            > 0. Defaults to `0.2`.

    Raises:
        ValueError: ``parallel`` not an integer >= 1, or ``poll_seconds`` not a
            number > 0.

    Example:
    ```python
    codes = ProcessExecutor(parallel=2).run(runs)
    ```
    """

    def __init__(self, parallel: int = 2, poll_seconds: float = 0.2):
        self.parallel = validate_int_arg(parallel, "parallel", minimum=1)
        self.poll_seconds = validate_float_arg(
            poll_seconds, "poll_seconds", allow_minimum=False
        )

    def run(
        self, runs: Sequence[SweepRun], log: Callable[[str], None] = print
    ) -> dict[Path, int]:
        """Runs ``runs``; returns the exit code of each started run, by folder."""
        return run_all(runs, self.parallel, log, self.poll_seconds)


class RayExecutor:
    """Runs a sweep's runs as Ray tasks, one task per run.

    Each task runs the run's ``keras-grok run`` command line with ``subprocess``
    on a Ray worker (with the worker's own Python), writes the output to the
    ``log.txt`` of its run folder and returns its exit code and last error line.
    Ray decides where and when each task runs from the resources it asks for
    (``num_cpus_per_run``, ``num_gpus_per_run``); a GPU task sees only the GPUs
    Ray gave it (``CUDA_VISIBLE_DEVICES``).

    If Ray is already initialized in this process, the executor uses that
    instance; otherwise it connects to ``address`` (``"auto"``: the cluster this
    machine belongs to; ``"host:port"``: a cluster's head node) or, for None,
    starts a local Ray instance with ``num_cpus`` CPUs (loopback only, no
    dashboard), and shuts down what it started when the runs end.

    Args:
        address: the Ray cluster to use; None starts a local one.
            Defaults to `None`.
        num_cpus_per_run: CPUs each run reserves, > 0. Defaults to `1`.
        num_gpus_per_run: GPUs each run reserves (fractions share a GPU), >= 0.
            Defaults to `0`.
        num_cpus: CPUs of a local Ray instance started by the executor; None
            lets Ray count this machine's. Defaults to `None`.

    Example:
    ```python
    codes = RayExecutor(address="auto", num_gpus_per_run=1).run(runs)
    ```
    """

    def __init__(
        self,
        address: str | None = None,
        num_cpus_per_run: float = 1,
        num_gpus_per_run: float = 0,
        num_cpus: int | None = None,
    ):
        self.address = check_ray_address(address or "", "address") or None
        self.num_cpus_per_run = validate_float_arg(
            num_cpus_per_run, "num_cpus_per_run", allow_minimum=False
        )
        self.num_gpus_per_run = validate_float_arg(num_gpus_per_run, "num_gpus_per_run")
        self.num_cpus = (
            None if num_cpus is None else validate_int_arg(num_cpus, "num_cpus")
        )

    def run(
        self, runs: Sequence[SweepRun], log: Callable[[str], None] = print
    ) -> dict[Path, int]:
        """Runs ``runs`` as Ray tasks; returns each run's exit code, by folder.

        Raises:
            ImportError: Ray is not installed (the message says how to add it).
        """
        ray = import_ray()
        runs = list(runs)
        check_distinct_folders(runs)
        if not runs:
            return {}
        started = not ray.is_initialized()
        # ray.init installs a SIGTERM handler of its own (sys.exit) in this
        # process and ray.shutdown leaves it: the caller's is put back after.
        sigterm_handler = signal.getsignal(signal.SIGTERM)
        if started:
            options = {"include_dashboard": False, "log_to_driver": False}
            if self.address is None:
                options.update(num_cpus=self.num_cpus, _node_ip_address="127.0.0.1")
            else:
                _check_reachable(self.address)  # ray.init would retry for minutes
            ray.init(address=self.address, **options)
        try:
            self._check_resources(ray.cluster_resources())
        except ValueError:
            if started:
                _shutdown(ray, sigterm_handler)
            raise
        task = ray.remote(_run_command).options(
            num_cpus=self.num_cpus_per_run, num_gpus=self.num_gpus_per_run
        )
        pending = {}
        try:
            for run in runs:
                run.folder.mkdir(parents=True, exist_ok=True)
                pending[task.remote(run.command, str(run.folder))] = run
                log(f"submit {run.folder.name}")
            codes: dict[Path, int] = {}
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                run = pending.pop(done[0])
                try:
                    code, error = ray.get(done[0])
                except ray.exceptions.RayError as failure:  # the worker itself died
                    code, error = WORKER_LOST, _one_line(failure)
                    with (
                        contextlib.suppress(OSError),
                        RunFolder(run.folder).log.open("a") as output,
                    ):
                        output.write(f"Error: its Ray worker died: {error}\n")
                codes[run.folder] = code
                if code == 0:
                    log(f"done {run.folder.name}")
                else:
                    log(f"FAILED {run.folder.name} (exit {code}): {error}")
            return codes
        finally:  # interrupted: cancel the tasks still queued or running
            for ref in pending:
                ray.cancel(ref)
            if started:
                _shutdown(ray, sigterm_handler)

    def _check_resources(self, total: dict) -> None:
        # A task asking more than the whole cluster has would wait forever.
        asked = {"CPU": self.num_cpus_per_run, "GPU": self.num_gpus_per_run}
        keys = {"CPU": "num_cpus_per_run", "GPU": "num_gpus_per_run"}
        for resource, amount in asked.items():
            if amount > total.get(resource, 0):
                raise ValueError(
                    f"each run asks for {amount:g} {resource}s, but the Ray cluster "
                    f"has {total.get(resource, 0):g} in all, so no run could ever "
                    f"start. Received: {keys[resource]}={amount:g}"
                )


def _check_reachable(address: str, seconds: float = 10.0) -> None:
    # Something must listen at host:port ("auto" finds the cluster itself).
    match = _ADDRESS.match(address)
    if match is None:
        return
    host, port = match.group(1).strip("[]"), int(match.group(2))
    try:
        socket.create_connection((host, port), timeout=seconds).close()
    except OSError as error:
        raise ValueError(
            f"no Ray cluster answers at {address} ({error.strerror or error}); "
            "start one there (ray start --head) or fix the address. "
            f"Received: address={address!r}"
        ) from None


def import_ray():
    """Imports Ray; ImportError with the install command if it is missing."""
    try:
        import ray
    except ImportError:
        raise ImportError(
            f"executor='ray' needs Ray, which is not installed: {RAY_INSTALL_HINT}"
        ) from None
    return ray


def make_executor(
    name: str,
    parallel: int = 2,
    address: str = "",
    cpus_per_run: float = 1,
    gpus_per_run: float = 0,
) -> ProcessExecutor | RayExecutor:
    """The executor a sweep's config names (``executor``, ``ray_address``, ...).

    Args:
        name: ``"process"`` or ``"ray"``.
        parallel: runs at a time (process executor; a local Ray instance gets
            ``parallel * cpus_per_run`` CPUs so it runs as many). Defaults to `2`.
        address: the Ray cluster (``""``: start a local one; ``"auto"``;
            ``"host:port"``). Defaults to `""`.
        cpus_per_run: CPUs each Ray task reserves. Defaults to `1`.
        gpus_per_run: GPUs each Ray task reserves. Defaults to `0`.

    Raises:
        ValueError: an unknown executor name, or a bad address or resource value
            (the message names the config key).
    """
    validate_choice_arg(name, "executor", EXECUTORS)
    parallel = validate_int_arg(parallel, "parallel", minimum=1)
    address = check_ray_address(address, "ray_address")
    cpus_per_run = validate_float_arg(cpus_per_run, "cpus_per_run", allow_minimum=False)
    gpus_per_run = validate_float_arg(gpus_per_run, "gpus_per_run")
    if name == "process":
        return ProcessExecutor(parallel)
    machine = os.cpu_count() or 1
    if not address and cpus_per_run > machine:
        raise ValueError(
            f"cpus_per_run must be at most this machine's {machine} CPUs for a "
            "local Ray instance (ray_address names a larger cluster). "
            f"Received: cpus_per_run={cpus_per_run:g}"
        )
    num_cpus = None if address else max(1, round(parallel * cpus_per_run))
    return RayExecutor(address or None, cpus_per_run, gpus_per_run, num_cpus)


def check_ray_address(address: str, name: str = "ray_address") -> str:
    """Returns ``address`` if it names a Ray cluster the way ``ray.init`` takes it.

    ``""`` (start a local instance), ``"auto"`` (the cluster of this machine), or
    ``[ray://]host:port``.

    Raises:
        ValueError: anything else (the message uses ``name``).
    """
    match = _ADDRESS.match(address) if isinstance(address, str) else None
    if address in ("", "auto") or (match and 0 < int(match.group(2)) < 65536):
        return address
    raise ValueError(
        f'{name} must be "" (start a local Ray), "auto" or "host:port" (a Ray '
        f"cluster's head node, or ray://host:port). Received: {name}={address!r}"
    )


def _run_command(command: Sequence[str], folder: str) -> tuple[int, str]:
    # The body of a Ray task: one run's command line, on whichever worker Ray
    # picked. A command of this package's CLI runs under the worker's Python
    # (the driver's interpreter path may not exist on another machine).
    command = list(command)
    if command[1:3] == ["-m", "keras_grok.cli"]:
        command[0] = sys.executable
    log_path = RunFolder(folder).log
    with open(log_path, "ab") as output:
        try:
            code = subprocess.run(
                command, stdout=output, stderr=subprocess.STDOUT
            ).returncode
        except (OSError, ValueError) as error:  # no such program, not runnable
            code = 126 if isinstance(error, PermissionError) else CANNOT_START
            reason = f"cannot start: {error}"
            output.write(f"Error: {reason}\n".encode())
            return code, reason
    return code, ("" if code == 0 else run_failure(code, log_path))


def _one_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[-1] if lines else ''}"


def executor_from_config(config: dict) -> ProcessExecutor | RayExecutor:
    """``make_executor`` from a sweep recipe's keys of the same names
    (``executor``, ``parallel``, ``ray_address``, ``cpus_per_run``,
    ``gpus_per_run``). A missing key takes ``make_executor``'s default
    (``executor``: ``"process"``, ``parallel``: 2, ``ray_address``: ``""``,
    ``cpus_per_run``: 1, ``gpus_per_run``: 0).

    Raises:
        TypeError: ``config`` is not a dict.
        ValueError: as ``make_executor`` (the message names the key).
    """
    if not isinstance(config, Mapping):
        raise TypeError(
            f"config must be a dict. Received: config of type {type(config).__name__}"
        )
    return make_executor(
        config.get("executor", "process"),
        config.get("parallel", 2),
        config.get("ray_address", ""),
        config.get("cpus_per_run", 1),
        config.get("gpus_per_run", 0),
    )


def _shutdown(ray, sigterm_handler) -> None:
    """Shuts Ray down and puts back the SIGTERM handler ray.init replaced."""
    ray.shutdown()
    # Off the main thread signal.signal raises, and ray.init set no handler.
    if sigterm_handler is not None and threading.current_thread() is (
        threading.main_thread()
    ):
        signal.signal(signal.SIGTERM, sigterm_handler)
