"""Warm job workers (``[jobs] runner = "warm"``, the default on Linux): each job still runs in a
worker process of its own, forked from a per-workspace server that has already imported what jobs
need, so a job starts in milliseconds instead of paying an interpreter and seconds of imports.

Why a fork server per workspace, started on first use and left running while it is used:

* A ``modelloop train`` command lives for one job; a pool inside it would help nobody. The server
  outlives the command (its own session, ``idle`` seconds without a job before it exits, 600 by
  default, ``$MODELLOOP_WARM_IDLE``), so the second command finds it warm. The first command
  starts it and waits for it (one set of imports, as a cold worker pays), then forks its job.
* It is a fresh, single-purpose, single-threaded interpreter (like ``multiprocessing``'s
  forkserver, which batch transform uses for its chunks), so forking it is safe where forking a
  caller with store connections and threads would not be; each worker opens the workspace itself.
* One server per workspace: its socket lives under the workspace's state folder (or, if that path
  is too long for a Unix socket, under a private temporary folder named by its hash), and it
  refuses requests for another workspace, so jobs of different workspaces never share a process.

Everything a cold worker (:class:`~.job_runners.ProcessRunner`) gives holds: the worker leads its
own session and its pid and host are recorded (``jobs cancel`` signals it); its output goes to the
job's log; the caller hears how it ended from the server (a crash, ``os._exit``, a segfault or
``kill -9`` ends the worker, never the caller, and the job is marked failed with its log); a
timeout or an interrupted caller kills it; and the worker follows its caller through the
connection (when the caller dies, the worker gets SIGHUP and records the job ``cancelled``).

Start-up is guarded: a file lock serialises clients that find no server, a socket that refuses
connections (its server died) is replaced, and a server started from other code or with another
import-time environment (:func:`fingerprint`) is replaced by a new one (the old one exits once its
socket is gone and its last worker has ended). Whenever no warm worker can be had (no ``fork``, the
server fails to start), the job runs cold, correct and only slower; ``[jobs] runner = "process"``
always runs cold.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from modelloop.store import MetadataStore
from modelloop.training.job_runners import ProcessRunner, finish_abnormal
from modelloop.training.warm_server import Messages, send
from modelloop.training.worker_start import ENV_PARENT, SET_ON_IMPORT, kill_group

#: Seconds a warm server waits for a job before it exits.
ENV_IDLE = "MODELLOOP_WARM_IDLE"
DEFAULT_IDLE = 600.0
#: Seconds a client waits for a server it started to be ready before running its job cold.
START_LIMIT = 180.0
#: Environment read when libraries are imported (so a server imported under other values would
#: run jobs unlike a cold worker): part of the fingerprint.
IMPORT_TIME_ENV = ("PYTHON", "OMP_", "MKL_", "OPENBLAS_", "KMP_", "NUMEXPR_", "VECLIB_",
                   "SKLEARN_", "SCIPY_", "NUMPY_")  # fmt: skip
_SUN_PATH = 100  # a Unix socket's path must fit in about 104-108 bytes


def available() -> bool:
    """Whether this platform can fork warm workers safely (Linux; macOS frameworks are not
    fork-safe, Windows has no fork)."""
    return sys.platform.startswith("linux") and hasattr(os, "fork")


def folder(state_dir: Path) -> Path:
    return Path(state_dir) / "warm"


def socket_path(state_dir: Path) -> Path:
    """Where the workspace's server listens: in its state folder when that path is short enough,
    else in a private folder of this user's under the temporary directory."""
    path = folder(state_dir) / "server.sock"
    if len(os.fsencode(path)) <= _SUN_PATH:
        return path
    key = hashlib.sha256(os.fsencode(Path(state_dir).resolve())).hexdigest()[:24]
    private = Path(tempfile.gettempdir()) / f"modelloop-{os.getuid()}"
    private.mkdir(mode=0o700, exist_ok=True)
    if private.stat().st_uid != os.getuid() or private.stat().st_mode & 0o077:
        raise OSError(f"{private} is not a private folder of this user")
    return private / f"{key}.sock"


@functools.cache
def _code_version() -> str:
    """The installed modelloop's files (names, sizes, times) and the interpreter."""
    digest = hashlib.sha256(f"{sys.executable}\0{sys.version}".encode())
    package = Path(__file__).resolve().parents[1]  # modelloop/
    for path in sorted(package.rglob("*.py")):
        with contextlib.suppress(OSError):
            stat = path.stat()
            digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    return digest.hexdigest()


def fingerprint(env: dict[str, str] | None = None) -> str:
    """What a server's preloaded state depends on: the code and the import-time environment."""
    env = os.environ if env is None else env
    digest = hashlib.sha256(_code_version().encode())
    for key in sorted(k for k in env if k.startswith(IMPORT_TIME_ENV)):
        # SET_ON_IMPORT left out: else a server started before the caller imported scikit-learn
        # would refuse its jobs after, and commands that import it and those that do not would
        # replace each other's servers
        if key != "PYTHONUNBUFFERED" and key not in SET_ON_IMPORT:
            digest.update(f"{key}={env[key]}\0".encode())
    return digest.hexdigest()[:32]


class WarmRunner:
    """Each job in a worker forked from the workspace's warm server (cold if none can be had)."""

    def __init__(self, store: MetadataStore, root: Path, state_dir: Path,
                 log_path: Callable[[int], Path], cold: ProcessRunner):  # fmt: skip
        self.store = store
        self.root = Path(root)
        self.state_dir = Path(state_dir)
        self.log_path = log_path
        self.cold = cold

    def run(self, job_id: int, timeout: float | None = None) -> None:
        path = self.log_path(job_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        started = self._submit(job_id, path)
        if started is None:
            self.cold.run(job_id, timeout)
            return
        messages, pid = started
        try:
            self.store.update_job(job_id, host=socket.gethostname(), pid=pid)
            self._wait(job_id, messages, pid, timeout)
        finally:
            messages.conn.close()

    def _wait(self, job_id: int, messages: Messages, pid: int, timeout: float | None) -> None:
        """As :meth:`ProcessRunner.wait`: the server reports the worker's exit status."""
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            code = _exit_code(messages, deadline)
        except TimeoutError:
            kill_group(pid)
            _exit_code(messages, time.monotonic() + 30, quiet=True)
            finish_abnormal(self.store, job_id, f"timed out after {timeout:g} s and was killed")
        except BaseException:  # the caller was interrupted: stop the worker with it
            kill_group(pid)
            _exit_code(messages, time.monotonic() + 30, quiet=True)
            finish_abnormal(self.store, job_id, "the process waiting for it was interrupted")
            raise
        else:
            if code is None:  # the server died: its worker ended (its end of our socket closed)
                finish_abnormal(self.store, job_id, "its worker process ended, and its warm "
                                "server died before it could say how")  # fmt: skip
            elif code != 0:
                how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
                finish_abnormal(self.store, job_id, f"its worker process {how}")

    def _submit(self, job_id: int, log: Path) -> tuple[Messages, int] | None:
        """Hand the job to the server (starting one if there is none); None: run it cold."""
        env = {k: v for k, v in os.environ.items() if k != ENV_PARENT}
        request = {"job": job_id, "root": str(self.root), "fingerprint": fingerprint(env),
                   "parent": os.getpid(), "log": str(log), "cwd": os.getcwd(), "env": env}  # fmt: skip
        try:
            path = socket_path(self.state_dir)
        except OSError as exc:
            _note(log, f"no warm worker ({exc}); starting a fresh one")
            return None
        for attempt in range(2):
            messages = _connect(path)
            if messages is not None:
                try:
                    send(messages.conn, request)
                    reply = messages.next(time.monotonic() + 30)
                except (OSError, ValueError):
                    reply = None
                if reply and isinstance(reply.get("pid"), int):
                    return messages, reply["pid"]
                messages.conn.close()
            if attempt == 0:
                try:
                    if not self.start_server(path, log):
                        return None
                except OSError as exc:  # e.g. a state folder we cannot write to
                    _note(log, f"cannot start the warm server ({exc}); starting a fresh worker")
                    return None
        _note(log, "the warm server did not take the job; starting a fresh worker")
        return None

    def start_server(self, path: Path | None = None, log: Path | None = None) -> bool:
        """Start the workspace's server unless one of this code is answering; wait until it is
        ready. Serialised by a file lock, so concurrent callers start one server between them."""
        import fcntl

        path = path or socket_path(self.state_dir)
        home = folder(self.state_dir)
        home.mkdir(parents=True, exist_ok=True)
        with open(home / "server.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if _ping(path, str(self.root)) == {"ok": True}:
                return True
            with contextlib.suppress(FileNotFoundError):
                path.unlink()  # stale (nobody listens), or a server of other code: replaced
            idle = os.environ.get(ENV_IDLE) or str(DEFAULT_IDLE)
            env = {k: v for k, v in os.environ.items() if k != ENV_PARENT}
            with open(home / "server.log", "wb") as out:
                server = subprocess.Popen(
                    [sys.executable, "-m", "modelloop.worker", "--serve", str(self.root),
                     str(path), fingerprint(env), idle, str(home)],
                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    start_new_session=True, cwd=self.root, env={**env, "PYTHONUNBUFFERED": "1"},
                )  # fmt: skip
            _SERVERS[:] = [s for s in _SERVERS if s.poll() is None] + [server]  # reap the ended
            deadline = time.monotonic() + START_LIMIT
            reply = None
            while time.monotonic() < deadline and server.poll() is None:
                reply = _ping(path, str(self.root))
                if reply == {"ok": True}:
                    return True
                if reply is not None:
                    break  # it is up but refuses us (our environment changed since): no use waiting
                time.sleep(0.02)
            if log is not None:
                why = f"refused the job: {reply.get('refused')}" if reply else "did not start"
                _note(log, f"the warm server {why} (see {home / 'server.log'}); "
                      "starting a fresh worker")  # fmt: skip
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, 9)
            return False


#: Servers this process started and did not see end: held (and polled, so an ended one leaves no
#: zombie) rather than dropped, which would make ``subprocess`` warn that they still run.
_SERVERS: list[subprocess.Popen] = []


def shutdown(state_dir: Path) -> bool:
    """Ask the workspace's warm server to exit once its workers have ended; whether one answered."""
    with contextlib.suppress(OSError):
        messages = _connect(socket_path(state_dir))
        if messages is not None:
            with messages.conn:
                send(messages.conn, {"shutdown": True})
                return messages.next(time.monotonic() + 10) == {"ok": True}
    return False


def wait_ready(state_dir: Path, root: Path, limit: float = 120.0) -> bool:
    """Wait until the workspace's server answers (it answers between its own work: forking,
    reaping, importing what its workers taught it); False if none is running."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            path = socket_path(state_dir)
            if not path.exists():
                return False
            reply = _ping(path, str(root), timeout=max(0.1, deadline - time.monotonic()))
            if reply == {"ok": True}:
                return True
            if reply is not None:
                return False  # refused: not a server for this workspace and code
        time.sleep(0.05)
    return False


def _connect(path: Path) -> Messages | None:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.settimeout(10)
        conn.connect(str(path))
    except OSError:  # none there, or a stale socket whose server died
        conn.close()
        return None
    return Messages(conn)


def _ping(path: Path, root: str, timeout: float = 10.0) -> dict | None:
    messages = _connect(path)
    if messages is None:
        return None
    with messages.conn:
        try:
            send(messages.conn, {"ping": fingerprint(), "root": root})
            return messages.next(time.monotonic() + timeout)
        except (OSError, ValueError):
            return None


def _exit_code(messages: Messages, deadline: float | None, *, quiet: bool = False) -> int | None:
    """The worker's exit status as the server reports it; None if the server is gone."""
    while True:
        try:
            message = messages.next(deadline)
        except TimeoutError:
            if quiet:
                return None
            raise
        except (OSError, ValueError):
            return None
        if message is None:
            return None
        if "exit" in message:
            return int(message["exit"])


def _note(log: Path, text: str) -> None:
    with contextlib.suppress(OSError), open(log, "a", encoding="utf-8") as out:
        out.write(f"[modelloop] {text}\n")
