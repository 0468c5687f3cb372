"""One attempt of one step, wherever it runs: the task an executor is given and what it returns.

:func:`execute` runs an attempt in this process (``local`` and ``threads`` executors);
:func:`run_portable` is what ``processes`` and ``ray`` run in their workers: the function travels
as cloudpickle bytes and its outputs come back as artifact-store digests, not values. A step that
takes a :class:`~modelloop.pipelines.context.StepContext` gets the runner's open one in process;
elsewhere the task carries the picklable factory and the worker opens and closes its own.
"""

from __future__ import annotations

import contextlib
import inspect
import io
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
    context_arg: str | None = None  # the parameter the step takes its StepContext in
    context: Any = None  # in another process: the ContextFactory that opens it


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
        return _failed(exc, log, start)


def _failed(exc: BaseException, log: io.StringIO, start: float) -> StepResult:
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


def fn_blob(fn) -> bytes:
    """The step's function as bytes that another process can load (cloudpickle: the library Ray
    and Dask use to ship functions, which also carries functions defined in ``__main__``)."""
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


def portable(task: StepTask) -> StepTask:
    """A copy of ``task`` that can travel to another process (its context as the factory)."""
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
        context_arg=task.context_arg,
        context=task.context,
    )


def run_portable(task: StepTask) -> StepResult:
    """Entry point in a worker process (pool or Ray): opens the step's context around it."""
    task.fn = _load_fn(task.fn_blob)
    task.returns = getattr(task.fn, "__annotations__", {}).get("return")
    url, options = task.artifacts
    if not task.context_arg:
        return execute(task, _artifacts(url, options))
    try:
        opened = task.context()
        ctx = opened.__enter__()
    except Exception as exc:  # noqa: BLE001 - reported as the attempt's failure
        return _failed(exc, io.StringIO(), time.perf_counter())
    try:
        task.args = {**task.args, task.context_arg: ctx}
        return execute(task, _artifacts(url, options))
    finally:
        opened.__exit__(None, None, None)
