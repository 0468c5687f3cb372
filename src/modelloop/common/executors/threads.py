"""``threads``: a pool of threads in this process.

Nothing is pickled and nothing starts up; work that releases the GIL (pyarrow, numpy, most
scikit-learn predictors, I/O, waiting on jobs) uses several cores. A call past its time cannot be
stopped (Python cannot stop a thread): it is abandoned.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
from collections.abc import Callable
from typing import Any

from modelloop.common.executors.base import Executor
from modelloop.common.executors.registry import register


@register
class ThreadExecutor(Executor):
    name = "threads"
    summary = "a pool of threads in this process"
    in_process = True

    def __init__(self, concurrency: int | None = None, **options):
        super().__init__(concurrency or min(8, os.cpu_count() or 1), **options)
        self._pool = cf.ThreadPoolExecutor(self.concurrency, thread_name_prefix="modelloop-exec")

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> cf.Future:
        return self._pool.submit(fn, *args)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
