"""``ray``: Ray tasks, on the cluster at ``address`` (or ``$RAY_ADDRESS``), else a local Ray.

Ray is started here unless it already runs in this process (then its settings are kept), and
shut down on ``close`` only if it was started here. Needs the ``ray`` extra. :func:`connect` is
also how jobs reach Ray (:mod:`modelloop.training.ray_jobs`).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import os
import socket
from collections.abc import Callable
from typing import Any

from modelloop.common.executors.base import Executor
from modelloop.common.executors.registry import register
from modelloop.errors import ConfigError, InvalidInput

#: Seconds to wait for a cluster's address to answer before saying it cannot be reached.
CONNECT_TIMEOUT = 5.0


@register
class RayExecutor(Executor):
    name = "ray"
    summary = "Ray tasks, on a local Ray or the cluster at $RAY_ADDRESS"

    def __init__(self, concurrency: int | None = None, **options):
        super().__init__(concurrency, **options)
        self._ray, self._started_here = connect(self.address, num_cpus=concurrency)
        self.concurrency = concurrency or int(self._ray.cluster_resources().get("CPU", 1))
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


def connect(address: str | None = None, *, num_cpus: int | None = None) -> tuple[Any, bool]:
    """Ray, ready to take tasks, and whether it was started here.

    Kept as it is when this process already runs Ray (a test's instance, or inside a Ray task);
    else connected to ``address`` or ``$RAY_ADDRESS``, else a local Ray is started with
    ``num_cpus`` (default: every core). An address that does not answer is a
    :class:`~modelloop.errors.ConfigError` after :data:`CONNECT_TIMEOUT` seconds: ``ray.init``
    itself retries an absent cluster for minutes.
    """
    try:
        import ray
    except ImportError:
        raise InvalidInput("the ray executor needs Ray",
                           hint="pip install 'modelloop[ray]'") from None
    if ray.is_initialized():
        return ray, False
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address and address not in ("auto", "local"):
        _check_reachable(address)
    try:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    except ConnectionError as exc:  # it answered but refused us (e.g. its token is not ours)
        raise ConfigError(f"cannot connect to the Ray cluster at {address}: {exc}",
                          hint="a cluster with token authentication needs its token "
                               "(RAY_AUTH_TOKEN or ~/.ray/auth_token); " + _HINT) from None
    return ray, True


_HINT = ("start one ('ray start --head') or set RAY_ADDRESS to a running cluster's address "
         "(host:port, or ray://host:10001); unset it to start a local Ray")


def _check_reachable(address: str) -> None:
    """Fail fast when nothing answers at ``address`` (``host:port`` or ``ray://host:port``)."""
    where = address.removeprefix("ray://").rsplit("/", 1)[0]
    host, sep, port = where.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"cannot read the Ray address {address!r}", hint=_HINT)
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        raise ConfigError(f"cannot reach the Ray cluster at {address}: "
                          f"{exc.strerror or exc or 'no answer'}", hint=_HINT) from None


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
