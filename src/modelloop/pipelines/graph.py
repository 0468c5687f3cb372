"""The pipeline graph: steps (functions with run options), nodes, and the :class:`Pipeline` DAG.

Calling a :class:`Step` while a pipeline is being built (see :mod:`~modelloop.pipelines.dsl`) adds
a node; outside, it is the plain function. Builders that do not trace (the ``loop.yaml``
compiler) use :meth:`Pipeline.add` directly.
"""

from __future__ import annotations

import contextlib
import inspect
import textwrap
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from modelloop.common.hashing import sha256_bytes
from modelloop.errors import InvalidInput
from modelloop.pipelines.context import context_parameter
from modelloop.pipelines.refs import Condition, Param, Ref, as_condition

#: Changing it invalidates every cache entry (part of every recipe).
ENGINE_VERSION = "1"

_building = threading.local()


# -- steps ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StepOptions:
    """How a step is run: retries, timeout, caching."""

    max_attempts: int = 1
    backoff: float = 0.0  # seconds before the 2nd attempt; doubles after each failure
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    timeout: float | None = None  # seconds per attempt
    cache: bool = True
    cache_expires: float | None = None  # seconds; a hit must be younger than this
    cache_version: str | None = None  # bump to invalidate by hand

    def __post_init__(self):
        if self.max_attempts < 1:
            raise InvalidInput("max_attempts must be at least 1")
        if isinstance(self.cache_expires, timedelta):
            object.__setattr__(self, "cache_expires", self.cache_expires.total_seconds())
        if isinstance(self.retry_on, type):
            object.__setattr__(self, "retry_on", (self.retry_on,))


def source_hash(fn: Callable) -> str:
    """sha256 of a function's source from its ``def`` (decorators excluded), else of its bytecode."""
    try:
        lines = textwrap.dedent(inspect.getsource(fn)).splitlines()
        start = next(
            (i for i, line in enumerate(lines) if line.lstrip().startswith(("def ", "async def "))),
            0,
        )
        text = "\n".join(lines[start:])
    except (OSError, TypeError):
        code = fn.__code__
        text = repr((code.co_code, code.co_consts, code.co_names))
    return sha256_bytes(text)


class Step:
    """A function made into a pipeline step. Called outside a pipeline, it is just the function."""

    def __init__(self, fn: Callable, name: str | None = None, options: StepOptions | None = None):
        if not callable(fn):
            raise InvalidInput(f"@step needs a function, not {type(fn).__name__}")
        self.fn = fn
        self.name = name or fn.__name__
        self.options = options or StepOptions()
        self.signature = inspect.signature(fn)
        self.source_hash = source_hash(fn)
        self.ref = f"{fn.__module__}.{fn.__qualname__}"
        try:
            import typing

            self.hints = typing.get_type_hints(fn)
        except Exception:  # unresolvable forward references: no type checks
            self.hints = {}
        # the parameter the runner fills with the run's StepContext (not passed by the pipeline)
        self.context_arg = context_parameter(self.hints)
        self.__doc__ = fn.__doc__
        self.__name__ = getattr(fn, "__name__", self.name)
        self.__wrapped__ = fn

    def with_options(self, *, name: str | None = None, **options) -> Step:
        """The same function with other options, e.g. ``train.with_options(max_attempts=3)``."""
        return Step(self.fn, name or self.name, replace(self.options, **options))

    def __call__(self, *args, **kwargs):
        builder = current_builder()
        if builder is None:
            return self.fn(*args, **kwargs)
        try:
            bind = self.signature.bind_partial if self.context_arg else self.signature.bind
            bound = bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidInput(f"step {self.name!r}: {exc}") from None
        return builder.add(self, args=dict(bound.arguments))

    def __repr__(self) -> str:
        return f"<step {self.name}>"


def step(fn: Callable | None = None, /, *, name: str | None = None, **options):
    """Make a function a pipeline step; options are those of :class:`StepOptions`."""
    opts = StepOptions(**options)
    if fn is None:
        return lambda f: Step(f, name, opts)
    return Step(fn, name, opts)


# -- the DAG -------------------------------------------------------------------------------------
KINDS = ("step", "dataset", "fail", "approval", "callback")


@dataclass
class Node:
    """One vertex of the DAG: a step call, a dataset input, or a control step."""

    name: str
    kind: str = "step"
    step: Step | None = None
    args: dict[str, Any] = field(default_factory=dict)  # argument -> Ref or literal
    after: list[str] = field(default_factory=list)
    conditions: list[Condition] = field(default_factory=list)
    message: str | None = None  # fail / approval text
    notify: Callable | None = None  # callback: called with the token when the step is reached
    dataset: Any = None  # dataset: "name", "name@3" or a Param

    def upstream(self) -> list[str]:
        names = list(self.after)
        refs = [v for v in self.args.values() if isinstance(v, Ref)]
        refs += [r for c in self.conditions for r in c.refs()]
        if isinstance(self.dataset, Ref):
            refs.append(self.dataset)
        names += [r.node for r in refs if not r.node.startswith("params.")]
        return list(dict.fromkeys(names))

    def to_spec(self) -> dict:
        def arg(v):
            return v.to_spec() if isinstance(v, Ref) else {"value": repr(v)}

        return {
            "name": self.name,
            "kind": self.kind,
            "func": self.step.ref if self.step else None,
            "upstream": self.upstream(),
            "args": {k: arg(v) for k, v in self.args.items()},
            "conditions": [c.describe() for c in self.conditions],
            "message": self.message,
        }


class Pipeline:
    """A named DAG of nodes plus the parameters it takes."""

    def __init__(
        self, name: str, params: dict[str, Any] | None = None, *, source: dict | None = None
    ):
        self.name = name
        self.params: dict[str, Any] = dict(params or {})
        self.nodes: dict[str, Node] = {}
        self.source = source  # how another process loads this pipeline again (for resume)
        self._conditions: list[Condition] = []
        self._after: list[str] = []
        self._last_when: Condition | None = None

    # -- building -----------------------------------------------------------------------------
    def param(self, name: str, default: Any = None) -> Param:
        self.params.setdefault(name, default)
        return Param(name)

    def _unique(self, name: str) -> str:
        if name not in self.nodes:
            return name
        i = 2
        while f"{name}_{i}" in self.nodes:
            i += 1
        return f"{name}_{i}"

    def add(
        self,
        step: Step | None = None,
        *,
        kind: str = "step",
        name: str | None = None,
        args: dict[str, Any] | None = None,
        after: list[str | Ref] | None = None,
        when: Condition | Ref | None = None,
        **extra,
    ) -> Ref:
        """Add a node; returns a :class:`Ref` to its output. Names are made unique (``_2``…)."""
        if kind not in KINDS:
            raise InvalidInput(f"unknown node kind {kind!r}", hint=f"one of {', '.join(KINDS)}")
        if kind == "step" and not isinstance(step, Step):
            raise InvalidInput("a step node needs a @step function")
        node_name = self._unique(name or (step.name if step else kind))
        names_after = [a.node if isinstance(a, Ref) else a for a in (after or [])]
        conditions = list(self._conditions) + ([as_condition(when)] if when is not None else [])
        node = Node(
            name=node_name,
            kind=kind,
            step=step,
            args=dict(args or {}),
            after=list(dict.fromkeys(self._after + names_after)),
            conditions=conditions,
            **extra,
        )
        self.nodes[node_name] = node
        return Ref(node_name)

    # -- checking -----------------------------------------------------------------------------
    def order(self) -> list[str]:
        """Node names in an order where every node comes after its upstream nodes."""
        import graphlib

        sorter = graphlib.TopologicalSorter()
        for node in self.nodes.values():
            for up in node.upstream():
                if up not in self.nodes:
                    raise InvalidInput(
                        f"step {node.name!r} of pipeline {self.name!r} depends on {up!r}, "
                        "which is not a step of the pipeline",
                        hint="add that step first, or fix the name",
                    )
            sorter.add(node.name, *node.upstream())
        try:
            return list(sorter.static_order())
        except graphlib.CycleError as exc:
            cycle = exc.args[1]
            raise InvalidInput(
                f"pipeline {self.name!r} has a cycle: {' -> '.join(cycle)}",
                hint="a step cannot depend, directly or not, on its own output",
            ) from None

    def spec(self) -> dict:
        """The DAG as plain data (kept with each run, drawn by ``runs show``)."""
        self.order()
        return {
            "name": self.name,
            "params": {k: repr(v) for k, v in self.params.items()},
            "nodes": [n.to_spec() for n in self.nodes.values()],
            "source": self.source,
        }

    # -- running ------------------------------------------------------------------------------
    def run(
        self,
        workspace,
        params: dict | None = None,
        *,
        executor="threads",
        concurrency: int | None = None,
        wait: bool = True,
        wait_timeout: float | None = None,
    ):
        """Run the pipeline in ``workspace``; returns a :class:`~modelloop.pipelines.recording.RunResult`.

        ``executor`` is a name from :mod:`modelloop.common.executors` ("threads": this process;
        "local": this process, one step at a time; "processes": a warm process pool; "ray") or an
        :class:`~modelloop.common.executors.Executor`. With ``wait`` (default), approval and
        callback steps are waited for (up to ``wait_timeout`` seconds); otherwise the run stops
        ``waiting`` and is continued by ``modelloop runs approve`` / ``runs resume``.
        """
        return workspace.runs.start(self, params or {}, executor=executor,
                                    concurrency=concurrency, wait=wait, wait_timeout=wait_timeout)

    def resume(self, workspace, run_id: int, *, executor="threads", **kwargs):
        """Continue a failed, interrupted or waiting run of this pipeline."""
        return workspace.runs.resume(run_id, pipeline=self, executor=executor, **kwargs)

    def __repr__(self) -> str:
        return f"<pipeline {self.name} ({len(self.nodes)} steps)>"


# -- the tracing context: set while a @pipeline function runs (see dsl.py) --------------------------
def current_builder() -> Pipeline | None:
    return getattr(_building, "pipeline", None)


@contextlib.contextmanager
def building(pipe: Pipeline) -> Iterator[Pipeline]:
    previous = current_builder()
    _building.pipeline = pipe
    try:
        yield pipe
    finally:
        _building.pipeline = previous


@dataclass(frozen=True)
class DatasetInput:
    """A dataset version as passed to a step."""

    name: str
    version: int
    content_hash: str

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"
