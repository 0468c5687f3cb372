"""Where a job runs: its own worker process (``process``, the default) or the caller's thread
(``inline``, for tests and development).

A worker process is what production wants: a crash, a leak or ``kill -9`` takes down the job, not
the caller, and a cancel is a signal. But it costs a fresh interpreter and its imports (seconds)
for each job, which dwarfs a small job in a test suite. The inline runner runs the same
:func:`~modelloop.training.job_context.execute_job` in the calling thread, with the same records:
status transitions, the log (the job thread's output, tracebacks included, goes to the job log
file), metrics, artifacts; a timeout or a cancel (from this process, or recorded by another)
raises :class:`~modelloop.training.job_context.JobCancelled` inside the job. What it cannot give
is isolation: a job that crashes the interpreter takes the caller with it.

The runner is chosen by ``$MODELLOOP_JOB_RUNNER`` or ``[jobs] runner`` in ``modelloop.toml``.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

from modelloop._faults import pid_alive
from modelloop.common.status import JobStatus
from modelloop.store import MetadataStore
from modelloop.training.job_context import ACTIVE, TERMINAL, JobCancelled, now
from modelloop.training.worker_start import kill_group, spawn, take_early


def finish_abnormal(store: MetadataStore, job_id: int, error: str) -> bool:
    """Record a job failed for a reason outside its code (its process died, it timed out)."""
    return bool(
        store.update_job(
            job_id, only_if_status=ACTIVE, status=JobStatus.FAILED, error=error, ended_at=now()
        )
    )


class ProcessRunner:
    """Each job in a worker process of its own: ``python -m modelloop.worker ROOT JOB_ID``."""

    def __init__(self, store: MetadataStore, root: Path, log_path: Callable[[int], Path]):
        self.store = store
        self.root = root
        self.log_path = log_path

    def run(self, job_id: int, timeout: float | None = None) -> None:
        self.wait(job_id, self.start(job_id), timeout=timeout)

    def start(self, job_id: int) -> subprocess.Popen:
        path = self.log_path(job_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        early = take_early(self.root)
        proc = early.hand(job_id, path) if early is not None else None
        if proc is None:
            proc = spawn([str(self.root), str(job_id)], path, stdin=subprocess.DEVNULL)
        self.store.update_job(job_id, host=socket.gethostname(), pid=proc.pid)
        return proc

    def wait(self, job_id: int, proc: subprocess.Popen, *, timeout: float | None = None) -> None:
        """Wait for the worker; record the job failed if it died, overran or was abandoned."""
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc.pid)
            proc.wait()
            finish_abnormal(self.store, job_id, f"timed out after {timeout:g} s and was killed")
        except BaseException:  # the caller was interrupted: stop the worker with it
            kill_group(proc.pid)
            proc.wait()
            finish_abnormal(self.store, job_id, "the process waiting for it was interrupted")
            raise
        else:
            if code != 0:
                how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
                finish_abnormal(self.store, job_id, f"its worker process {how}")


class InlineRunner:
    """Each job in the calling thread, recorded as a worker would record it (tests, development)."""

    def __init__(
        self,
        store: MetadataStore,
        log_path: Callable[[int], Path],
        execute: Callable[..., str | None],
    ):
        self.store = store
        self.log_path = log_path
        self.execute = execute  # (job_id, *, cancellable, log): Jobs.execute

    def run(self, job_id: int, timeout: float | None = None) -> None:
        path = self.log_path(job_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        key = (self.store.url, job_id)
        done = threading.Event()
        watcher = threading.Thread(target=self._watch, args=(job_id, timeout, done), daemon=True,
                                   name=f"watch-job-{job_id}")  # fmt: skip
        with open(path, "a", buffering=1, encoding="utf-8", errors="replace") as log:
            try:
                with _output_to(log):
                    watcher.start()
                    self.execute(job_id, cancellable=lambda: INLINE.cancellable(key), log=log)
            except SystemExit as exc:  # a job's sys.exit() ends the job, as it ends a worker
                finish_abnormal(self.store, job_id, f"its worker process exited with status "
                                f"{exc.code}")  # fmt: skip
            except BaseException:
                finish_abnormal(self.store, job_id, "the process waiting for it was interrupted")
                raise
            finally:
                done.set()
                watcher.join()

    def _watch(self, job_id: int, timeout: float | None, done: threading.Event) -> None:
        """Stop the job when it overruns ``timeout`` or is cancelled from another process (which
        records it ``cancelled`` but sends no signal to a process that is not a worker)."""
        key = (self.store.url, job_id)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = 0.25 if deadline is None else max(0.0, min(0.25, deadline - time.monotonic()))
            if done.wait(left):
                return
            if deadline is not None and time.monotonic() >= deadline:
                error = f"timed out after {timeout:g} s and was killed"
                if finish_abnormal(self.store, job_id, error):
                    INLINE.interrupt(key)
                return
            try:
                cancelled = self.store.get_job(job_id)["status"] == JobStatus.CANCELLED
            except Exception:  # noqa: BLE001 - a store hiccup: look again at the next tick
                continue
            if cancelled:
                INLINE.interrupt(key)
                return


def stop(store: MetadataStore, job: dict, *, grace: float) -> None:
    """Stop a running job: by :class:`JobCancelled` if it runs inline in this process, else by
    SIGTERM to its worker (which ends it ``cancelled``), then SIGKILL after ``grace`` seconds.
    The caller then records the job cancelled, which is how an inline job elsewhere hears of it."""
    if INLINE.interrupt((store.url, job["id"])):
        _await_end(store, job, grace, lambda: True)
        return
    if not job["pid"] or job["host"] != socket.gethostname() or not _is_worker(job["pid"]):
        return  # the record is enough: an inline runner elsewhere watches it (see InlineRunner)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(job["pid"], signal.SIGTERM)
    _await_end(store, job, grace, lambda: pid_alive(job["pid"]))
    if pid_alive(job["pid"]) and store.get_job(job["id"])["status"] in ACTIVE:
        kill_group(job["pid"])


def _is_worker(pid: int) -> bool:
    """Whether ``pid`` is a worker process, which leads a session of its own; a process running
    jobs inline (a CLI command, a test run) is never signalled by a cancel."""
    try:
        return pid != os.getpid() and os.getsid(pid) == pid
    except OSError:  # gone, or not ours to ask about
        return False


def _await_end(store: MetadataStore, job: dict, grace: float, alive: Callable[[], bool]) -> None:
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and alive():
        if store.get_job(job["id"])["status"] in TERMINAL:
            return
        time.sleep(0.05)


# -- inline jobs of this process ------------------------------------------------------------------
def _raise_in(thread_id: int, exc: type[BaseException]) -> None:
    """Raise ``exc`` in another thread at its next bytecode. CPython's way to interrupt a thread;
    a thread blocked in C (a long numpy call, a sleep) sees it when that call returns, as a
    worker sees a signal. Never called with NULL to withdraw one: that leaves the interpreter's
    "asynchronous exception pending" flag set for good, which slows every thread from then on
    and stalls any tracer (a debugger, coverage, cProfile) at its next function entry."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exc))


def _arrive() -> None:
    """A Python call: the point at which a pending asynchronous exception is raised."""


class _InlineJobs:
    """The jobs running inline in this process, by (store URL, job id): what a cancel or a
    timeout may interrupt. Registered only while the job's code runs (see ``execute_job``)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._threads: dict[tuple[str, int], int] = {}
        self._sent: dict[tuple[str, int], bool] = {}  # keys whose thread was sent JobCancelled

    @contextlib.contextmanager
    def cancellable(self, key: tuple[str, int]) -> Iterator[None]:
        with self._lock:
            self._threads[key] = threading.get_ident()
        try:
            yield
        finally:
            self._close(key)

    def _close(self, key: tuple[str, int]) -> None:
        """Leave the window: no interrupt can be sent once the key is gone, and one sent before
        is taken here (it may arrive at any bytecode until then), not by the caller's code."""
        sent = False
        while True:
            try:
                with self._lock:
                    self._threads.pop(key, None)
                    sent = self._sent.pop(key, False) or sent
                if sent:
                    for _ in range(2):  # at most one is pending; a call is where it arrives
                        _arrive()
                return
            except JobCancelled:  # arrived as the job ended: too late to cancel it
                return

    def interrupt(self, key: tuple[str, int]) -> bool:
        """Raise :class:`JobCancelled` in the job's thread; False if it is not running here."""
        with self._lock:
            thread = self._threads.get(key)
            if thread is not None and not self._sent.get(key):
                self._sent[key] = True
                _raise_in(thread, JobCancelled)
            return thread is not None


INLINE = _InlineJobs()


# -- the job thread's output to its log ------------------------------------------------------------
_route = threading.local()
_install = threading.Lock()
_installed: list = []  # [count, saved stdout, saved stderr] while inline jobs run


class _Routed:
    """Stands for ``sys.stdout`` / ``sys.stderr`` while inline jobs run: what a thread running a
    job writes goes to that job's log; every other thread writes where it did before."""

    def __init__(self, fallback: TextIO):
        self._fallback = fallback

    def _target(self) -> TextIO:
        return getattr(_route, "log", None) or self._fallback

    def write(self, text: str) -> int:
        return self._target().write(text)

    def flush(self) -> None:
        self._target().flush()

    def __getattr__(self, name: str):
        return getattr(self._target(), name)


@contextlib.contextmanager
def _output_to(log: TextIO) -> Iterator[None]:
    with _install:
        if not _installed:
            _installed[:] = [0, sys.stdout, sys.stderr]
            sys.stdout, sys.stderr = _Routed(sys.stdout), _Routed(sys.stderr)
        _installed[0] += 1
    previous = getattr(_route, "log", None)
    _route.log = log
    try:
        yield
    finally:
        _route.log = previous
        with _install:
            _installed[0] -= 1
            if not _installed[0]:
                _, out, err = _installed
                if isinstance(sys.stdout, _Routed):
                    sys.stdout = out
                if isinstance(sys.stderr, _Routed):
                    sys.stderr = err
                _installed.clear()
