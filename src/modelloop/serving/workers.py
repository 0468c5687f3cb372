"""Worker processes of ``modelloop serve``: a fixed number, or autoscaled on one machine.

The parent binds the listening socket once and hands it to every worker (uvicorn's multiprocess
supervisor does the spawning, the health pings and the restarts of dead workers). The kernel
spreads new connections over the workers that accept on the shared socket; unlike SO_REUSEPORT,
a worker that leaves drops nothing queued, because the accept queue belongs to the shared socket.
Workers run httptools and uvloop where installed: uvloop sets TCP_NODELAY on accepted sockets, which the asyncio
loop does not do for a socket bound by the parent (uvicorn #3149, +40 ms per keep-alive request).

Autoscaling follows a target of in-flight requests per worker, as Knative's concurrency
autoscaler does: each worker adds every request's duration to a counter in a shared-memory
board; the parent turns the counters into the average number of requests in flight over the last
couple of seconds (Little's law, so short requests are not missed between samples), wants
``ceil(in_flight / target)`` workers (within min..max), adds them at once after the scale-out
cooldown and removes one at a time after the scale-in cooldown. A worker that leaves first
*drains*: it stops accepting connections and answers each request with ``Connection: close``, so
clients move to the other workers without a failed request; then it gets SIGTERM. A worker with
more than its share of the requests in flight also closes connections after answering, so
keep-alive clients spread over new workers.

``GET /workers`` on any worker reports the board (pids, states, in-flight and request counts).

Hand-written around uvicorn's supervisor because neither uvicorn nor gunicorn scales workers on
load (gunicorn's TTIN/TTOU and uvicorn's equivalents only react to signals someone sends).
"""

from __future__ import annotations

import asyncio
import math
import os
import sys
import threading
import time
from multiprocessing.sharedctypes import RawArray

from uvicorn.config import STARTUP_FAILURE, Config
from uvicorn.supervisors.multiprocess import Multiprocess, Process

from modelloop.serving.connections import uvicorn_options  # header limits, loop

# board layout: a header, then one record per worker slot (int64 each)
_H_MIN, _H_MAX, _H_TARGET_MILLI, _H_SCALE_OUTS, _H_SCALE_INS, _H_PARENT = range(6)
_HEADER = 8
_S_PID, _S_STATE, _S_INFLIGHT, _S_REQUESTS, _S_BUSY_US = range(5)
_SLOT = 6
STATES = {0: "free", 1: "starting", 2: "serving", 3: "draining"}
STARTING, SERVING, DRAINING = 1, 2, 3

DEFAULTS = {"target_inflight": 4.0, "scale_out_cooldown": 10.0, "scale_in_cooldown": 60.0,
            "drain_seconds": 2.0}
_TICK = 0.25  # seconds between the parent's looks at the board
_WINDOW = 8  # ticks averaged into one in-flight figure (2 s)


class WorkerBoard:
    """Shared memory the parent and the workers both see: who runs, and how busy each is.

    Each worker writes only its own slot (single writer, so no lock); the parent writes the
    header and the pid/state of slots. Plain ctypes integers: reading one costs ~100 ns.
    """

    def __init__(self, max_workers: int):
        self.size = max_workers
        self.cells = RawArray("q", _HEADER + _SLOT * max_workers)

    def at(self, slot: int, field: int) -> int:
        return self.cells[_HEADER + _SLOT * slot + field]

    def put(self, slot: int, field: int, value: int) -> None:
        self.cells[_HEADER + _SLOT * slot + field] = value

    def free_slot(self) -> int | None:
        return next((i for i in range(self.size) if self.at(i, _S_STATE) == 0), None)

    def clear(self, slot: int) -> None:
        for field in range(_SLOT):
            self.put(slot, field, 0)

    def report(self) -> dict:
        """What ``GET /workers`` answers."""
        c = self.cells
        workers = [{"slot": i, "pid": self.at(i, _S_PID), "state": STATES[self.at(i, _S_STATE)],
                    "in_flight": self.at(i, _S_INFLIGHT), "requests": self.at(i, _S_REQUESTS)}
                   for i in range(self.size) if self.at(i, _S_STATE)]
        return {"mode": "autoscaled" if c[_H_MIN] != c[_H_MAX] else "fixed",
                "parent_pid": c[_H_PARENT], "min_workers": c[_H_MIN], "max_workers": c[_H_MAX],
                "target_inflight": c[_H_TARGET_MILLI] / 1000.0, "scale_outs": c[_H_SCALE_OUTS],
                "scale_ins": c[_H_SCALE_INS], "pid": os.getpid(), "workers": workers}


def single_report() -> dict:
    """``GET /workers`` of a single-process server."""
    return {"mode": "single", "parent_pid": None, "min_workers": 1, "max_workers": 1,
            "pid": os.getpid(), "workers": [{"slot": 0, "pid": os.getpid(), "state": "serving"}]}


def desired_workers(in_flight: float, target: float, lo: int, hi: int) -> int:
    """How many workers keep ``in_flight`` requests at ``target`` per worker, within lo..hi."""
    return max(lo, min(hi, math.ceil(in_flight / target - 1e-9)))


# -- worker side ----------------------------------------------------------------------------------
_LAUNCH: dict = {}  # set in the worker process before uvicorn imports the app
_LOOP: list = []  # the worker's event loop, once its app started


class SlotCounter:
    """ASGI middleware: counts this worker's requests in flight and their total time on the
    board; while the worker drains, answers with ``Connection: close``."""

    def __init__(self, app, board: WorkerBoard, slot: int):
        self.app, self.board, self.slot = app, board, slot
        self.base = _HEADER + _SLOT * slot

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            return await self.app(scope, receive, self._lifespan_send(send))
        if scope["type"] != "http" or scope["method"] == "GET":  # probes and reports
            return await self.app(scope, receive, send)
        cells, base = self.board.cells, self.base

        async def send_closing(message):
            if message["type"] == "http.response.start" and (
                    cells[base + _S_STATE] == DRAINING or self._overloaded()):
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"connection", b"close")]}
            await send(message)

        cells[base + _S_INFLIGHT] += 1
        t0 = time.perf_counter()
        try:
            await self.app(scope, receive, send_closing)
        finally:
            cells[base + _S_INFLIGHT] -= 1
            cells[base + _S_REQUESTS] += 1
            cells[base + _S_BUSY_US] += int((time.perf_counter() - t0) * 1e6)

    def _overloaded(self) -> bool:
        """Whether this worker holds more than its share of the requests in flight: then the
        response closes its connection, so the client reconnects and the kernel may hand the
        new connection to a less busy worker (keep-alive clients would otherwise stay on the
        workers that existed when they connected, and new workers would idle)."""
        mine = self.board.cells[self.base + _S_INFLIGHT]
        if mine <= 1:
            return False
        total = serving = 0
        for slot in range(self.board.size):
            if self.board.at(slot, _S_STATE) == SERVING:
                serving += 1
                total += self.board.at(slot, _S_INFLIGHT)
        return serving > 1 and mine > total / serving + 1

    def _lifespan_send(self, send):
        async def wrapped(message):
            if message["type"] == "lifespan.startup.complete":
                _LOOP.append(asyncio.get_running_loop())
                if self.board.at(self.slot, _S_STATE) == STARTING:
                    self.board.put(self.slot, _S_STATE, SERVING)
            await send(message)
        return wrapped


def worker_app():
    """The app of one worker process (a uvicorn factory: built after the spawn, by the app
    factory the face passed to :func:`run_workers`)."""
    board, slot = _LAUNCH["board"], _LAUNCH["slot"]
    app = SlotCounter(_LAUNCH["app_factory"](board), board, slot)
    freeze_heap()
    return app


def freeze_heap() -> None:
    """Take what a serving process has loaded so far (libraries, its app) out of the cyclic
    garbage collector's sight: it lives as long as the process, and a full collection no
    longer walks it. Capture keeps thousands of records a second alive until the writer's
    flush, which set off a full collection about every flush: a capturing server spent 5-15%
    more CPU per request in them. Only for a process that does nothing but serve."""
    import gc

    gc.collect()
    gc.freeze()


class Worker(Process):
    """uvicorn's worker process, plus its slot on the board and a drain watcher."""

    def __init__(self, config: Config, sockets, *, board: WorkerBoard, slot: int, launch: dict):
        self.board, self.slot, self.launch = board, slot, launch
        super().__init__(config, sockets)

    def target(self, sockets=None):  # runs in the worker process
        _LAUNCH.update(self.launch, board=self.board, slot=self.slot)
        threading.Thread(target=self._watch_drain, daemon=True).start()
        super().target(sockets)

    def _watch_drain(self) -> None:
        """Stop accepting connections once the parent marks this worker draining."""
        while self.board.at(self.slot, _S_STATE) != DRAINING or not _LOOP:
            time.sleep(0.05)

        def close_listeners():
            for server in getattr(self.server, "servers", []):
                server.close()
        _LOOP[0].call_soon_threadsafe(close_listeners)


# -- parent side ----------------------------------------------------------------------------------
class Autoscaler(Multiprocess):
    """uvicorn's multiprocess supervisor with a worker count that follows the load."""

    def __init__(self, config: Config, sockets, *, launch: dict, min_workers: int,
                 max_workers: int, target_inflight: float, scale_out_cooldown: float,
                 scale_in_cooldown: float, drain_seconds: float):
        super().__init__(config, sockets)
        self.launch = launch
        self.min, self.max = min_workers, max_workers
        self.target = target_inflight
        self.out_cooldown, self.in_cooldown = scale_out_cooldown, scale_in_cooldown
        self.drain_seconds = drain_seconds
        self.board = WorkerBoard(max_workers)
        h = self.board.cells
        h[_H_MIN], h[_H_MAX], h[_H_PARENT] = min_workers, max_workers, os.getpid()
        h[_H_TARGET_MILLI] = int(target_inflight * 1000)
        self.draining: list[tuple[Worker, float]] = []  # (worker, when to stop it)
        self.samples: list[float] = []
        self.last_busy: dict[int, int] = {}
        self.last_change = 0.0

    # workers
    def _start_worker(self) -> bool:
        slot = self.board.free_slot()
        if slot is None:
            return False
        self.board.put(slot, _S_STATE, STARTING)
        worker = Worker(self.config, self.sockets, board=self.board, slot=slot,
                        launch=self.launch)
        worker.start()
        self.board.put(slot, _S_PID, worker.pid or 0)
        self.processes.append(worker)
        return True

    def init_processes(self) -> None:
        for _ in range(self.min):
            self._start_worker()

    def keep_subprocess_alive(self) -> None:
        """Replace workers that died (uvicorn's check, keeping the slot on the board)."""
        if self.should_exit.is_set():
            return
        for worker in list(self.processes):
            if self.board.at(worker.slot, _S_STATE) == STARTING:  # still importing/loading
                if worker.process.is_alive():
                    continue
            elif worker.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            worker.kill()
            worker.join()
            self.processes.remove(worker)
            self.board.clear(worker.slot)
            self._log(f"worker {worker.pid} died (exit code {worker.exitcode}); replacing it")
            if worker.exitcode == STARTUP_FAILURE:  # it would fail the same way again
                self._log("a worker failed to start; stopping")
                self.should_exit.set()
                return
            self._start_worker()

    def _retire_one(self, now: float) -> None:
        worker = max(self.processes, key=lambda w: w.slot)  # the newest slot goes first
        self.processes.remove(worker)
        self.board.put(worker.slot, _S_STATE, DRAINING)
        self.draining.append((worker, now + self.drain_seconds))

    def _reap(self, now: float) -> None:
        for item in list(self.draining):
            worker, due = item
            if now >= due and worker.exitcode is None and not getattr(worker, "stopping", 0):
                worker.terminate()
                worker.stopping = now
            if worker.exitcode is not None or (getattr(worker, "stopping", 0)
                                               and now - worker.stopping > 60):
                if worker.exitcode is None:
                    worker.kill()
                worker.join()
                self.board.clear(worker.slot)
                self.draining.remove(item)

    # load
    def in_flight(self) -> float:
        """Average requests in flight over the last window, summed over serving workers."""
        busy = 0
        now_inflight = 0
        for worker in self.processes:
            b = self.board.at(worker.slot, _S_BUSY_US)
            busy += b - self.last_busy.get(worker.slot, b)
            self.last_busy[worker.slot] = b
            now_inflight += self.board.at(worker.slot, _S_INFLIGHT)
        # completed request time says how busy the tick was; requests still running count too
        self.samples = [*self.samples, max(busy / 1e6 / _TICK, now_inflight)][-_WINDOW:]
        return sum(self.samples) / len(self.samples)

    def scale(self, now: float) -> None:
        load = self.in_flight()
        want = desired_workers(load, self.target, self.min, self.max)
        have = len(self.processes)
        if want > have and now - self.last_change >= self.out_cooldown:
            added = sum(self._start_worker() for _ in range(want - have))
            if added:
                self.board.cells[_H_SCALE_OUTS] += 1
                self.last_change = now
                self._log(f"scaled out to {have + added} workers ({load:.1f} requests in "
                          f"flight, target {self.target:g} per worker)")
        elif want < have and now - self.last_change >= self.in_cooldown:
            self._retire_one(now)
            self.board.cells[_H_SCALE_INS] += 1
            self.last_change = now
            self._log(f"scaling in to {have - 1} workers ({load:.1f} requests in flight, "
                      f"target {self.target:g} per worker)")

    def run(self) -> None:
        self.init_processes()
        self.last_change = time.monotonic()
        health_due = 0.0
        while not self.should_exit.wait(_TICK):
            now = time.monotonic()
            self.handle_signals()
            if now >= health_due:
                self.keep_subprocess_alive()
                health_due = now + 1.0
            if self.should_exit.is_set():
                break
            self._reap(now)
            if self.min != self.max:
                self.scale(now)
        for worker, _ in self.draining:
            self.processes.append(worker)
        self.terminate_all()
        self.join_all()

    # signals uvicorn's supervisor handles that would bypass the board
    def handle_ttin(self) -> None:
        self._log("SIGTTIN ignored: the worker count is set by --workers/--max-workers")

    handle_ttou = handle_ttin

    def handle_hup(self) -> None:
        self._log("SIGHUP ignored: models reload by themselves when an endpoint changes")

    @staticmethod
    def _log(message: str) -> None:
        print(f"modelloop: {message}", file=sys.stderr, flush=True)


def bind(host: str, port: int):
    """The listening socket of a server, bound and listening before anything is announced;
    InvalidInput (one line in the CLI) when the address is taken or not this machine's.

    What uvicorn's ``Config.bind_socket`` does, without its ``sys.exit`` on failure."""
    import socket

    from modelloop.errors import InvalidInput

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family=family)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise InvalidInput(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                           hint="another server may use the port: choose another --port, or "
                                "stop it") from None
    sock.set_inheritable(True)
    return sock


def run_workers(app_factory, *, host: str, port: int, log_level: str,
                min_workers: int, max_workers: int, target_inflight: float | None = None,
                scale_out_cooldown: float | None = None, scale_in_cooldown: float | None = None,
                drain_seconds: float | None = None, sock=None) -> None:
    """Serve with ``min_workers``..``max_workers`` processes until interrupted (on ``sock``, a
    socket from :func:`bind`, or one bound here). Each worker builds its app with
    ``app_factory(board)``: a picklable callable (a module-level function of a face, which opens
    the workspace in the worker process)."""
    config = Config(worker_app, factory=True, host=host, port=port, log_level=log_level,
                    lifespan="on", workers=min_workers, **uvicorn_options())
    sock = sock or bind(host, port)
    launch = {"app_factory": app_factory}

    def pick(value, key):
        return DEFAULTS[key] if value is None else float(value)

    Autoscaler(config, [sock], launch=launch, min_workers=min_workers, max_workers=max_workers,
               target_inflight=pick(target_inflight, "target_inflight"),
               scale_out_cooldown=pick(scale_out_cooldown, "scale_out_cooldown"),
               scale_in_cooldown=pick(scale_in_cooldown, "scale_in_cooldown"),
               drain_seconds=pick(drain_seconds, "drain_seconds")).run()
    sock.close()
