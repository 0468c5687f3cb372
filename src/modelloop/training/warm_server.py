"""The warm job server of one workspace: a fresh interpreter that has imported what jobs need, and
forks one worker process per job (the client side, and why, is :mod:`~.warm_workers`).

``python -m modelloop.worker --serve ROOT SOCKET FINGERPRINT`` runs :func:`serve`. It imports
(``preload``), then listens on a Unix socket, single-threaded, so forking it is safe (the same
reason ``multiprocessing``'s forkserver exists; batch transform uses that one for its chunks).
The server never opens the workspace's store or artifacts: each forked worker opens its own, as a
cold worker does, so no connection or lock crosses a fork.

One request per connection, JSON lines:

* ``{"job": ID, "root": ..., "fingerprint": ..., "parent": PID, "log": PATH, "cwd": ..., "env":
  {...}}`` → ``{"pid": PID}`` once the worker is forked, then ``{"exit": CODE}`` when the server
  has reaped it (``CODE`` as ``Popen.returncode``: ``-9`` for ``kill -9``). The worker keeps its
  end of the connection: when the caller's end closes (the caller died), it gets SIGHUP, as a cold
  worker does when the process it follows dies.
* ``{"ping": FINGERPRINT, "root": ...}`` → ``{"ok": true}``, or ``{"refused": REASON}``;
* ``{"shutdown": true}`` → ``{"ok": true}``; the server exits once its workers have ended.

A request from another workspace, another version of the code or another user is refused. The
server exits after ``idle`` seconds without a worker, or as soon as its socket is no longer the
file at its path (a client replaced a server it found stale or of another version, or the
workspace was deleted), once its last worker has ended.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable

from modelloop.common.exiting import exit_code, exit_now

#: One request or reply, at most (a request carries the caller's environment).
MAX_MESSAGE = 1 << 20

#: run_job(root, job_id, parent_pid, follow) -> exit status: the worker's job (modelloop.worker).
RunJob = Callable[[str, int, int, Callable[[], None]], int]

#: Packages whose modules the server imports when its workers did (see :func:`learn`): libraries
#: with no side effects on import (no threads: the server must stay safe to fork). A user's own
#: modules (custom trainers, plugins) are never imported into the server.
LEARNABLE = frozenset({
    "modelloop", "sklearn", "scipy", "numpy", "pandas", "pyarrow", "optuna", "skops", "joblib",
    "threadpoolctl", "matplotlib", "PIL", "lightgbm", "xgboost", "narwhals", "sqlalchemy",
    "psycopg", "fsspec", "s3fs", "botocore", "aiobotocore", "yaml", "pydantic", "cloudpickle",
    "dateutil", "pytz", "json", "email", "html", "xml", "http", "urllib", "zipfile", "tarfile",
})  # fmt: skip
LEARNED = "learned.json"


def send(conn: socket.socket, message: dict) -> None:
    conn.sendall(json.dumps(message).encode() + b"\n")


class Messages:
    """The JSON lines arriving on one connection (a reply and the exit may come in one read)."""

    def __init__(self, conn: socket.socket):
        self.conn = conn
        self._buffer = b""

    def next(self, deadline: float | None = None) -> dict | None:
        """The next message; None if the connection closed first. ``TimeoutError`` at
        ``deadline`` (a monotonic time), after which reading again is safe."""
        while b"\n" not in self._buffer:
            self.conn.settimeout(None if deadline is None
                                 else max(0.001, deadline - time.monotonic()))  # fmt: skip
            chunk = self.conn.recv(65536)
            if not chunk:
                return None
            self._buffer += chunk
            if len(self._buffer) > MAX_MESSAGE:
                raise ValueError("message too long")
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)


def serve(root: str, path: str, *, fingerprint: str, preload: Callable[[], None],
          run_job: RunJob, idle: float, home: str) -> int:  # fmt: skip
    """Import what jobs need, then fork a worker per request until idle or replaced. ``home``
    is the workspace's warm folder (what earlier servers learned their workers import)."""
    started = time.monotonic()
    preload()
    with contextlib.suppress(OSError, ValueError), open(os.path.join(home, LEARNED)) as f:
        learn(json.load(f))
    print(f"warm server pid {os.getpid()} for {root}: preloaded in "
          f"{time.monotonic() - started:.2f} s", flush=True)  # fmt: skip
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    temporary = f"{path}.{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temporary)
    listener.bind(temporary)
    listener.listen(64)
    os.rename(temporary, path)  # ready: a client that connects gets a warm server
    mine = os.stat(path).st_ino
    return _Server(root, path, mine, fingerprint, listener, run_job, idle, home).loop()


def learn(names: list[str]) -> list[str]:
    """Import the modules of :data:`LEARNABLE` packages among ``names`` not imported yet; those
    newly imported (one that fails to import is skipped: its worker imports it, or fails, alone)."""
    from modelloop.common import loading

    done = []
    for name in names:
        if (isinstance(name, str) and name not in sys.modules
                and name.partition(".")[0] in LEARNABLE):  # fmt: skip
            with contextlib.suppress(Exception):
                loading.import_module(name)
                done.append(name)
    return done


class _Server:
    def __init__(self, root, path, inode, fingerprint, listener, run_job, idle, home):
        self.root, self.path, self.inode, self.home = root, path, inode, home
        self.fingerprint, self.listener, self.run_job, self.idle = (
            fingerprint, listener, run_job, idle)  # fmt: skip
        self.children: dict[int, socket.socket] = {}
        self.taught: list[int] = []  # ended workers whose imports are not learned yet
        self.stopping = False
        self.wake_r, wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes select through the pipe

    def loop(self) -> int:
        last = time.monotonic()
        while True:
            watched = [self.wake_r] + ([self.listener] if not self.stopping else [])
            try:
                ready, _, _ = select.select(watched, [], [], 0.2 if self.taught else 1.0)
            except InterruptedError:
                ready = []
            if not ready:
                self._learn()
            if self.wake_r in ready:
                with contextlib.suppress(BlockingIOError):
                    while os.read(self.wake_r, 512):
                        pass
            if self._reap():
                last = time.monotonic()
            if self.listener in ready:
                self._accept()
                last = time.monotonic()
            if not self.stopping and (
                time.monotonic() - last > self.idle or not self._still_mine()
            ):
                self._stop_listening()
            if self.stopping and not self.children:
                print(f"warm server pid {os.getpid()} exits", flush=True)
                return 0

    def _still_mine(self) -> bool:
        try:
            return os.stat(self.path).st_ino == self.inode
        except OSError:
            return False

    def _stop_listening(self) -> None:
        self.stopping = True
        if self._still_mine():
            with contextlib.suppress(OSError):
                os.unlink(self.path)
        self.listener.close()

    def _reap(self) -> bool:
        reaped = False
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            reaped = True
            conn = self.children.pop(pid, None)
            if conn is not None:
                with contextlib.suppress(OSError):
                    send(conn, {"exit": os.waitstatus_to_exitcode(status)})
                conn.close()
            self.taught.append(pid)
        return reaped

    def _learn(self) -> None:
        """Import what ended workers imported beyond what we hold (when no request waits: a
        job never waits for it), and remember it for the next server."""
        while self.taught:
            self._learn_from(self.taught.pop())

    def _learn_from(self, pid: int) -> None:
        report = os.path.join(self.home, f"imported.{pid}.json")
        try:
            with open(report) as f:
                names = json.load(f)
            os.unlink(report)
        except (OSError, ValueError):
            return
        if learn(names):
            known = []
            with (
                contextlib.suppress(OSError, ValueError),
                open(os.path.join(self.home, LEARNED)) as f,
            ):
                known = json.load(f)
            merged = sorted({*known, *(n for n in names if n.partition(".")[0] in LEARNABLE)})
            temporary = os.path.join(self.home, f"{LEARNED}.{os.getpid()}")
            with contextlib.suppress(OSError):
                with open(temporary, "w") as f:
                    json.dump(merged, f)
                os.replace(temporary, os.path.join(self.home, LEARNED))

    def _accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        try:
            conn.settimeout(5.0)  # a request is one short line: a stuck client cannot hold us
            if not _same_user(conn):
                send(conn, {"refused": "another user"})
                conn.close()
                return
            request = Messages(conn).next(time.monotonic() + 5.0)
            if not request:
                conn.close()
                return
            reply = self._answer(request)
            if reply is not None:
                send(conn, reply)
                conn.close()
                return
            self._fork(conn, request)
        except (OSError, ValueError):
            conn.close()

    def _answer(self, request: dict) -> dict | None:
        """The reply to a request that starts no worker; None for a job to run."""
        if request.get("shutdown"):
            self._stop_listening()
            return {"ok": True}
        if os.path.realpath(str(request.get("root"))) != os.path.realpath(self.root):
            return {"refused": "another workspace"}
        given = request.get("ping", request.get("fingerprint"))
        if given != self.fingerprint:
            return {"refused": "another version of the code or environment"}
        if "ping" in request:
            self._learn()  # so that a server which answers a ping is idle (benchmarks wait so)
            return {"ok": True}
        if not isinstance(request.get("job"), int):
            return {"refused": "no job id"}
        return None

    def _fork(self, conn: socket.socket, request: dict) -> None:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()  # or the worker would write the server's pending output to its log
        pid = os.fork()
        if pid == 0:
            others = [c for c in self.children.values()]
            _worker(conn, request, self.run_job, [self.listener, *others], self.wake_r, self.home)
        self.children[pid] = conn
        with contextlib.suppress(OSError):
            send(conn, {"pid": pid})


def _same_user(conn: socket.socket) -> bool:
    if not hasattr(socket, "SO_PEERCRED"):
        return True  # the socket's folder is the workspace's, with its permissions
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid == os.getuid()


def _worker(conn: socket.socket, request: dict, run_job: RunJob, inherited: list,
            wake_r: int, home: str) -> None:  # fmt: skip
    """In the forked worker: become what ``python -m modelloop.worker`` is, run the job, exit."""
    code = 1
    held = set(sys.modules)
    try:
        for other in inherited:  # the other callers' ends: theirs to watch, not ours to hold
            other.close()
        os.close(wake_r)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()  # its own session: a cancel signals its group, as a cold worker's
        # the server's exit handlers are the server's (a temporary folder of its own, say): the
        # worker runs those the job registers, and flushes its logs
        atexit._clear()
        if "logging" in sys.modules:
            atexit.register(sys.modules["logging"].shutdown)
        log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        os.environ.clear()
        os.environ.update(request.get("env") or {})
        cwd = request.get("cwd") or "/"
        if sys.path and sys.path[0] == os.getcwd():  # as ``python -m`` there would have it
            sys.path[0] = cwd  # (a trainer named as a module of the caller's folder)
        with contextlib.suppress(OSError):
            os.chdir(cwd)
        _reseed()
        conn.settimeout(None)
        code = run_job(request["root"], request["job"], int(request["parent"]),
                       lambda: _follow_caller(conn))  # fmt: skip
    except SystemExit as exc:
        code = exit_code(exc)
    except BaseException:  # noqa: BLE001 - as an uncaught exception ends a cold worker
        with contextlib.suppress(Exception):
            traceback.print_exc()
        code = 1
    finally:
        imported = [n for n in sys.modules if n not in held and n.partition(".")[0] in LEARNABLE]
        if imported:  # for the server to import before the next job (see _Server._learn_from)
            with (
                contextlib.suppress(Exception),
                open(os.path.join(home, f"imported.{os.getpid()}.json"), "w") as f,
            ):
                json.dump(imported, f)
        # as a cold worker ends (its threads, atexit handlers, streams), never back in the loop
        exit_now(code)


def _follow_caller(conn: socket.socket) -> None:
    """SIGHUP to this worker when the caller's end of ``conn`` closes (the caller died): what
    ``PR_SET_PDEATHSIG`` gives a cold worker, whose parent is the caller."""

    def watch() -> None:
        while True:
            try:
                data = conn.recv(1)
            except OSError:
                data = b""
            if not data:
                os.kill(os.getpid(), signal.SIGHUP)
                return

    threading.Thread(target=watch, name="follow-caller", daemon=True).start()


def _reseed() -> None:
    """Forked workers share the server's random state; a cold worker starts from fresh entropy.
    (``random`` reseeds itself after a fork; NumPy's legacy global generator does not.)"""
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()
