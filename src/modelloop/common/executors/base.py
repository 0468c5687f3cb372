"""The executor interface: run a function on some worker, get a ``concurrent.futures.Future``.

Pipelines submit step attempts, batch transform submits chunks; both wait on futures the same way
whatever runs them. What is submitted to an executor that is not ``in_process`` must pickle (a
module-level function and plain arguments).
"""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Callable, Iterable
from typing import Any, ClassVar


class Executor:
    """Runs functions; ``submit`` returns a Future of the result.

    ``concurrency`` is how many calls run at once. ``address`` is where a distributed executor
    connects (Ray's cluster); ``max_retries`` how often it re-runs a call lost with its worker.
    Executors that do not distribute ignore both.
    """

    name: ClassVar[str] = "base"
    #: What ``--executor``'s help says about it.
    summary: ClassVar[str] = ""
    #: Whether calls run in this process (values may be handed over by reference).
    in_process: ClassVar[bool] = False
    #: Earlier names that still select it (accepted, not listed).
    aliases: ClassVar[tuple[str, ...]] = ()

    def __init__(self, concurrency: int | None = None, *, address: str | None = None,
                 max_retries: int = 0):
        self.concurrency = max(1, int(concurrency or 1))
        self.address = address
        self.max_retries = max_retries

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> cf.Future:
        raise NotImplementedError

    def cancel(self, future: cf.Future) -> None:
        """Stop a call if the executor can (a started thread cannot be stopped)."""
        future.cancel()

    def close(self) -> None:
        """Release what this executor holds (warm pools may outlive it)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def map_bounded(executor: Executor, fn: Callable[..., Any], calls: Iterable[tuple],
                done: Callable[[Any], None], *, per_worker: int = 2) -> None:
    """Run ``fn(*args)`` for each ``args`` of ``calls``, at most ``per_worker`` per worker in
    flight (memory stays bounded however many calls there are), handing each result to ``done``
    in this thread as it comes. On any error, calls not yet started are cancelled."""
    pending = iter(calls)
    running: set[cf.Future] = set()
    try:
        while True:
            while len(running) < per_worker * executor.concurrency:
                args = next(pending, None)
                if args is None:
                    break
                running.add(executor.submit(fn, *args))
            if not running:
                return
            finished, running = cf.wait(running, return_when=cf.FIRST_COMPLETED)
            for future in finished:
                done(future.result())
    except BaseException:
        for future in running:
            executor.cancel(future)
        raise
