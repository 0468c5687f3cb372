"""Where step code runs. One interface, three executors:

- :class:`LocalExecutor` — threads in the runner's process (least overhead; a step past its
  timeout is abandoned, not stopped, since Python cannot stop a thread);
- :class:`ProcessExecutor` — a warm pool of worker processes reused across runs (isolation, real
  parallelism, timeouts enforced inside the worker);
- :class:`RayExecutor` — Ray tasks, on a local Ray instance or a cluster (extra ``ray``).

Every executor returns a ``concurrent.futures.Future`` of a :class:`StepResult`, so the runner
waits on all of them the same way. Code travels to other processes with cloudpickle (the library
Ray and Dask use to ship functions); outputs travel back as artifact-store digests, not values.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import hashlib
import inspect
import io
import os
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from modelloop.errors import InvalidInput
from modelloop.pipelines import values


@dataclass
class StepTask:
    """What an executor needs to run one attempt of one step."""

    step: str
    fn: Any  # the function (in process) — replaced by ``fn_blob`` to travel
    args: dict[str, Any]  # argument -> value
    loads: dict[str, tuple[dict, list]] = field(default_factory=dict)  # arg -> (output row, path)
    timeout: float | None = None
    returns: Any = None  # the declared return type, checked
    artifacts: Any = None  # an ArtifactStore (in process) or (url, options)
    fn_blob: bytes | None = None
    keep_value: bool = False


@dataclass
class StepResult:
    ok: bool
    output: dict | None = None
    value: Any = None
    log: str = ""
    error: str | None = None
    error_types: list[str] = field(default_factory=list)  # the exception's MRO, qualified
    retryable: bool = True
    duration: float = 0.0


class StepTimeout(Exception):
    pass


# -- per-thread capture of print() output ----------------------------------------------------------
class _Router(io.TextIOBase):
    """Stands in for sys.stdout/stderr: a thread running a step writes to its own buffer."""

    def __init__(self, original):
        self.original = original
        self.local = threading.local()

    def write(self, text):
        buf = getattr(self.local, "buf", None)
        return (buf if buf is not None else self.original).write(text)

    def flush(self):
        if getattr(self.local, "buf", None) is None:
            self.original.flush()


_install_lock = threading.Lock()


def _routers() -> tuple[_Router, _Router]:
    with _install_lock:
        if not isinstance(sys.stdout, _Router):
            sys.stdout = _Router(sys.stdout)
        if not isinstance(sys.stderr, _Router):
            sys.stderr = _Router(sys.stderr)
    return sys.stdout, sys.stderr


@contextlib.contextmanager
def _captured(buf: io.StringIO):
    out, err = _routers()
    out.local.buf = err.local.buf = buf
    try:
        yield
    finally:
        out.local.buf = err.local.buf = None


@contextlib.contextmanager
def _alarm(seconds: float | None):
    """Raise StepTimeout in this (main) thread after ``seconds``; elsewhere, do nothing."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def fire(_sig, _frame):
        raise StepTimeout(f"timed out after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _check_type(value, declared, what: str) -> None:
    import typing

    if declared is None or declared is inspect.Signature.empty or declared is typing.Any:
        return
    origin = typing.get_origin(declared) or declared
    if origin is typing.Union or not isinstance(origin, type):
        return  # unions and typing constructs: not checked
    if declared is float and isinstance(value, int):
        return
    if not isinstance(value, origin):
        raise InvalidInput(
            f"{what} is a {values.type_name(value)}, but the step declares {getattr(declared, '__name__', declared)}",
            hint="fix the step's type annotation or what it returns",
        )


def execute(task: StepTask, artifacts) -> StepResult:
    """Run one attempt: load inputs, call the function, store the output. Never raises."""
    log = io.StringIO()
    start = time.perf_counter()
    try:
        kwargs = dict(task.args)
        for arg, (row, path) in task.loads.items():
            value = values.fetch(artifacts, row)
            for key in path:
                value = value[key]
            kwargs[arg] = value
        fn = task.fn
        sig = inspect.signature(fn)
        hints = getattr(fn, "__annotations__", {})
        for arg, value in kwargs.items():
            if arg in hints and isinstance(hints[arg], type):
                _check_type(value, hints[arg], f"argument {arg!r} of step {task.step!r}")
        bound = inspect.BoundArguments(sig, kwargs)
        with _captured(log), _alarm(task.timeout):
            result = fn(*bound.args, **bound.kwargs)
        _check_type(result, task.returns, f"the output of step {task.step!r}")
        output = values.store(artifacts, result, task.step)
        return StepResult(
            ok=True,
            output=output,
            value=result if task.keep_value else None,
            log=log.getvalue(),
            duration=time.perf_counter() - start,
        )
    except BaseException as exc:  # noqa: BLE001 - reported to the runner, which decides
        if isinstance(exc, KeyboardInterrupt | SystemExit) and not isinstance(exc, StepTimeout):
            raise
        user_error = isinstance(exc, values.Unstorable | InvalidInput) and "step" in str(exc)
        tb = "" if user_error else traceback.format_exc()
        return StepResult(
            ok=False,
            log=log.getvalue() + tb,
            error=str(exc) if user_error else f"{type(exc).__name__}: {exc}",
            error_types=[f"{c.__module__}.{c.__qualname__}" for c in type(exc).__mro__],
            retryable=not user_error,
            duration=time.perf_counter() - start,
        )


# -- the interface -------------------------------------------------------------------------------
class Executor:
    """Runs :class:`StepTask` s; ``submit`` returns a Future of a :class:`StepResult`."""

    name = "base"
    in_process = False  # whether values may be handed over by reference
    concurrency = 1

    def submit(self, task: StepTask) -> cf.Future:
        raise NotImplementedError

    def cancel(self, future: cf.Future) -> None:
        future.cancel()

    def close(self) -> None:
        pass


class LocalExecutor(Executor):
    """Threads in this process."""

    name = "local"
    in_process = True

    def __init__(self, concurrency: int | None = None):
        self.concurrency = concurrency or min(8, os.cpu_count() or 1)
        self._pool = cf.ThreadPoolExecutor(self.concurrency, thread_name_prefix="modelloop-step")

    def submit(self, task: StepTask) -> cf.Future:
        return self._pool.submit(execute, task, task.artifacts)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _pickle_fn(fn) -> bytes:
    try:
        import cloudpickle
    except ImportError:  # plain pickle handles importable module-level functions
        import pickle as cloudpickle
    return cloudpickle.dumps(fn)


@lru_cache(maxsize=256)
def _load_fn(blob: bytes):
    import pickle

    return pickle.loads(blob)


@lru_cache(maxsize=8)
def _artifacts(url: str, options: tuple):
    from modelloop.artifacts import ArtifactStore

    return ArtifactStore(url, dict(options))


def _portable(task: StepTask) -> StepTask:
    """A copy of ``task`` that can travel to another process."""
    store = task.artifacts
    return StepTask(
        step=task.step,
        fn=None,
        args=task.args,
        loads=task.loads,
        timeout=task.timeout,
        returns=None,
        artifacts=(store.url, tuple(sorted(store.options.items()))),
        fn_blob=task.fn_blob,
    )


def run_portable(task: StepTask) -> StepResult:
    """Entry point in a worker process (pool or Ray)."""
    task.fn = _load_fn(task.fn_blob)
    task.returns = getattr(task.fn, "__annotations__", {}).get("return")
    url, options = task.artifacts
    return execute(task, _artifacts(url, options))


_POOLS: dict[int, cf.ProcessPoolExecutor] = {}


class ProcessExecutor(Executor):
    """A warm pool of worker processes, shared by every run in this process that asks for it."""

    name = "process"

    def __init__(self, concurrency: int | None = None):
        import multiprocessing as mp

        self.concurrency = concurrency or (os.cpu_count() or 1)
        pool = _POOLS.get(self.concurrency)
        if pool is None or getattr(pool, "_broken", False):
            pool = cf.ProcessPoolExecutor(self.concurrency, mp_context=mp.get_context("forkserver"))
            _POOLS[self.concurrency] = pool
        self._pool = pool

    def submit(self, task: StepTask) -> cf.Future:
        return self._pool.submit(run_portable, _portable(task))

    def close(self) -> None:
        if getattr(self._pool, "_broken", False):
            _POOLS.pop(self.concurrency, None)


class RayExecutor(Executor):
    """Ray tasks: ``ray.init(address)`` unless Ray is already initialised in this process."""

    name = "ray"

    def __init__(self, address: str | None = None, concurrency: int | None = None, **init):
        try:
            import ray
        except ImportError:
            raise InvalidInput(
                "the ray executor needs Ray", hint="pip install 'modelloop[ray]'"
            ) from None
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False, **init)
        self._ray = ray
        self._remote = ray.remote(num_cpus=1, max_retries=0)(run_portable)
        self.concurrency = concurrency or int(ray.cluster_resources().get("CPU", 1))

    def submit(self, task: StepTask) -> cf.Future:
        ref = self._remote.remote(_portable(task))
        future = ref.future()
        future.ray_ref = ref  # to cancel the task itself
        return future

    def cancel(self, future: cf.Future) -> None:
        with contextlib.suppress(Exception):
            self._ray.cancel(future.ray_ref, force=True)
        future.cancel()


def fn_blob(fn) -> bytes:
    return _pickle_fn(fn)


def digest(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def make_executor(executor, concurrency: int | None = None) -> Executor:
    if isinstance(executor, Executor):
        return executor
    kinds = {"local": LocalExecutor, "process": ProcessExecutor, "ray": RayExecutor}
    if executor not in kinds:
        raise InvalidInput(f"unknown executor {executor!r}", hint="use 'local', 'process' or 'ray'")
    return kinds[executor](concurrency=concurrency)
