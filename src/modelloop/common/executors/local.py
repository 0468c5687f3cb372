"""``local``: each call runs to its end in the calling thread, one at a time.

No pool, no pickling, nothing to start: the least overhead, and a debugger or a traceback sees
the call as ordinary code.
"""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Callable
from typing import Any

from modelloop.common.executors.base import Executor
from modelloop.common.executors.registry import register


@register
class LocalExecutor(Executor):
    name = "local"
    summary = "in this process, one at a time"
    in_process = True

    def __init__(self, concurrency: int | None = None, **options):
        super().__init__(1, **options)

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> cf.Future:
        future: cf.Future = cf.Future()
        future.set_running_or_notify_cancel()
        try:
            future.set_result(fn(*args))
        except BaseException as exc:  # noqa: BLE001 - delivered through the future, as by a pool
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            future.set_exception(exc)
        return future
