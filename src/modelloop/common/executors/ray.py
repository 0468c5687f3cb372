"""``ray``: Ray tasks, on the cluster at ``address`` (or ``$RAY_ADDRESS``), else a local Ray.

Ray is started here unless it already runs in this process (then its settings are kept), and
shut down on ``close`` only if it was started here. Needs the ``ray`` extra.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import os
from collections.abc import Callable
from typing import Any

from modelloop.common.executors.base import Executor
from modelloop.common.executors.registry import register
from modelloop.errors import InvalidInput


@register
class RayExecutor(Executor):
    name = "ray"
    summary = "Ray tasks, on a local Ray or the cluster at $RAY_ADDRESS"

    def __init__(self, concurrency: int | None = None, **options):
        super().__init__(concurrency, **options)
        try:
            import ray
        except ImportError:
            raise InvalidInput("the ray executor needs Ray",
                               hint="pip install 'modelloop[ray]'") from None
        self._ray = ray
        self._started_here = not ray.is_initialized()
        if self._started_here:
            address = self.address or os.environ.get("RAY_ADDRESS")
            where = {"address": address} if address else {"num_cpus": concurrency}
            ray.init(**where, include_dashboard=False, log_to_driver=False)
        self.concurrency = concurrency or int(ray.cluster_resources().get("CPU", 1))
        self._remote: dict[Callable, Any] = {}

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> cf.Future:
        remote = self._remote.get(fn)
        if remote is None:
            remote = self._remote[fn] = self._ray.remote(
                num_cpus=1, max_retries=self.max_retries)(fn)
        ref = remote.remote(*args)
        future: cf.Future = cf.Future()
        future.ray_ref = ref  # to cancel the task itself
        ref.future().add_done_callback(lambda done: _settle(future, done, self._ray))
        return future

    def cancel(self, future: cf.Future) -> None:
        with contextlib.suppress(Exception):
            self._ray.cancel(future.ray_ref, force=True)
        future.cancel()

    def close(self) -> None:
        if self._started_here and self._ray.is_initialized():
            self._ray.shutdown()


def _settle(future: cf.Future, done: cf.Future, ray) -> None:
    """Pass Ray's result on; a task's error as the exception the function raised."""
    if future.cancelled() or not future.set_running_or_notify_cancel():
        return
    exc = done.exception()
    if exc is None:
        future.set_result(done.result())
    elif isinstance(exc, ray.exceptions.RayTaskError):
        future.set_exception(exc.as_instanceof_cause())
    else:
        future.set_exception(exc)
