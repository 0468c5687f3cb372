"""Starting a job's worker process (``python -m modelloop.worker``): the one way to spawn it, and
the early start of a cold one (:func:`prestart`), before its job exists.

Standard library only: ``modelloop train`` starts its cold worker from here before it imports
the store, so everything this module imports is paid before the worker's own start.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

#: Set by :func:`spawn`: the pid of the process the worker follows.
ENV_PARENT = "MODELLOOP_JOB_PARENT"
#: Set on import by a library, in whichever process imports it (scikit-learn's ``setdefault``s):
#: a caller's value says what it happened to import, not how jobs would run; a worker that
#: imports the library sets them itself.
SET_ON_IMPORT = frozenset({"KMP_DUPLICATE_LIB_OK", "KMP_INIT_AT_FORK"})


def spawn(args: list[str], log_path: Path, *, stdin) -> subprocess.Popen:
    """A worker process, ``python -m modelloop.worker ARGS``, its output appended to
    ``log_path``, leading a session of its own, following this process (see modelloop.worker)."""
    log = open(log_path, "ab")  # noqa: SIM115 - handed to the child
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "modelloop.worker", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=stdin,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", ENV_PARENT: str(os.getpid())},
        )
    finally:
        log.close()


# -- a cold worker started before its job exists ---------------------------------------------------
class _EarlyWorker:
    """A worker started by :func:`prestart`, importing while it waits for its job's id on stdin;
    its output goes to a file of its own until the job exists."""

    def __init__(self, root: Path, logs_dir: Path, kind: str):
        logs_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".early-", suffix=".log", dir=logs_dir)
        os.close(fd)
        self.log = Path(name)
        self.environ, self.cwd = dict(os.environ), os.getcwd()
        self.proc = spawn([str(root), "-", kind], self.log, stdin=subprocess.PIPE)

    def hand(self, job_id: int, log_path: Path) -> subprocess.Popen | None:
        """Give the worker its job; None (and the worker ended) when it cannot take it: it
        died, or the caller's environment or folder changed since (a worker must run the job
        as one started now would), or the job's log exists already (a worker appends to it)."""
        if (self.proc.poll() is not None or _environ(os.environ) != _environ(self.environ)
                or os.getcwd() != self.cwd or log_path.exists()):
            self.discard()
            return None
        os.replace(self.log, log_path)  # the worker's output goes on into the job's log
        with contextlib.suppress(BrokenPipeError):  # died just now: waiting says how
            self.proc.stdin.write(f"{job_id}\n".encode())
            self.proc.stdin.close()
        return self.proc

    def discard(self) -> None:
        kill_group(self.proc.pid)
        self.proc.wait()
        with contextlib.suppress(BrokenPipeError):
            self.proc.stdin.close()
        self.log.unlink(missing_ok=True)


def _environ(env) -> dict:
    """What of an environment makes a worker run a job differently."""
    return {k: v for k, v in env.items() if k not in SET_ON_IMPORT}


#: Early workers not yet given a job, by workspace root (:func:`prestart`).
_EARLY: dict[Path, _EarlyWorker] = {}


def prestart(root: Path, logs_dir: Path, kind: str) -> None:
    """Start now the cold worker of a job of ``kind`` that this process is about to create and
    run in workspace ``root`` (:class:`ProcessRunner`): its interpreter and imports (the store,
    the job kind's module and the libraries it reads and fits with) then overlap the caller's
    own start-up, checks and records instead of following them. The next job started here runs
    in it, whatever its kind; :func:`discard_early` ends one never used (and it ends with this
    process, which it follows). Call it from the thread that will run the job: a worker follows
    the thread that started it."""
    root = Path(root)
    if root not in _EARLY:
        _EARLY[root] = _EarlyWorker(root, Path(logs_dir), kind)


def take_early(root: Path) -> _EarlyWorker | None:
    """The early worker started for workspace ``root`` (:func:`prestart`), now the caller's to
    give a job (:meth:`_EarlyWorker.hand`), or None."""
    return _EARLY.pop(Path(root), None)


def discard_early(root: Path) -> None:
    """End the early worker of ``root`` that no job was given (the request was refused)."""
    early = take_early(root)
    if early is not None:
        early.discard()


def kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
