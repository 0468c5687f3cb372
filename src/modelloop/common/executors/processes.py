"""``processes``: a warm pool of worker processes, reused by every caller in this process.

Workers are forked from a fork server (``forkserver``), not from this process: this process runs
store connections and library threads that a fork would copy mid-use, while a spawned worker would
import everything again. Modules named in ``preload`` (or set by the caller with
``multiprocessing.get_context("forkserver").set_forkserver_preload`` before the first pool) load
once in the server and are shared by every worker. A worker ends when this process is gone.
"""

from __future__ import annotations

import atexit
import concurrent.futures as cf
import multiprocessing as mp
import os
import threading
from collections.abc import Callable
from typing import Any

from modelloop.common.executors.base import Executor
from modelloop.common.executors.registry import register

_POOLS: dict[int, cf.ProcessPoolExecutor] = {}
_LOCK = threading.Lock()


@register
class ProcessExecutor(Executor):
    name = "processes"
    summary = "a warm pool of worker processes"
    aliases = ("process",)  # the pipelines' name before executors were shared

    def __init__(self, concurrency: int | None = None, **options):
        super().__init__(concurrency or os.cpu_count() or 1, **options)
        with _LOCK:
            pool = _POOLS.get(self.concurrency)
            if pool is None or getattr(pool, "_broken", False):
                pool = _POOLS[self.concurrency] = cf.ProcessPoolExecutor(
                    self.concurrency, mp_context=mp.get_context("forkserver"),
                    initializer=_watch_parent, initargs=(os.getpid(),))
        self._pool = pool

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> cf.Future:
        return self._pool.submit(fn, *args)

    def close(self) -> None:
        """Keep the pool warm for the next caller, unless a worker died and broke it."""
        if getattr(self._pool, "_broken", False):
            with _LOCK:
                if _POOLS.get(self.concurrency) is self._pool:
                    del _POOLS[self.concurrency]


@atexit.register
def _shutdown_pools() -> None:
    """Stop the warm pools while the interpreter is whole: a pool left for the module teardown to
    collect runs its clean-up on half-destroyed modules ("Exception ignored in weakref_cb")."""
    with _LOCK:
        pools = list(_POOLS.values())
        _POOLS.clear()
    for pool in pools:
        pool.shutdown(wait=True, cancel_futures=True)


def _watch_parent(owner_pid: int) -> None:
    """End this worker when its owner is gone (e.g. SIGKILLed), not leave it orphaned.

    A pool worker waits on its task queue forever when its owner dies without closing the pool;
    the standard library has no parent-death option for pools, so a daemon thread polls.
    """
    import time

    server = os.getppid()  # the fork server, which exits when the owner does

    def watch() -> None:
        while True:
            time.sleep(0.5)
            try:
                os.kill(owner_pid, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:
                pass
            if os.getppid() != server:
                os._exit(1)

    threading.Thread(target=watch, daemon=True, name="watch-owner").start()
