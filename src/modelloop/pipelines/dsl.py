"""How pipelines are written: ``@step`` functions composed by a ``@pipeline`` function.

    @step
    def load(n: int) -> list:
        return list(range(n))

    @step(max_attempts=3, backoff=0.5, retry_on=(ConnectionError,), timeout=60)
    def train(rows: list, alpha: float = 0.1) -> dict:
        return {"score": sum(rows) * alpha}

    @pipeline
    def demo(n: int = 10, alpha: float = 0.1):
        model = train(load(n), alpha=alpha)
        with when(model["score"] > 1):
            ok = approval("ship-it", message="deploy this model?")
            with after(ok):
                deploy(model)
        with otherwise():
            fail("the model scored too low")

    demo.run(workspace, {"alpha": 0.2}, executor="process")

The ``@pipeline`` function runs once, when it is defined, with placeholders: calling a step there
adds a node to the DAG and returns a :class:`Ref` to its future output instead of running it.
Outside a pipeline a step is a plain function. Builders that do not trace (the ``loop.yaml``
compiler) use :meth:`Pipeline.add` directly.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import operator
import textwrap
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from modelloop.errors import InvalidInput

#: Changing it invalidates every cache entry (part of every recipe).
ENGINE_VERSION = "1"

_building = threading.local()


# -- references to values that exist only when the pipeline runs ---------------------------------
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "truthy": lambda a, _b: bool(a),
}


class Ref:
    """The output of a node (or a key inside it, ``ref["score"]``), known once the node ran."""

    __hash__ = object.__hash__

    def __init__(self, node: str, path: tuple = ()):
        self.node = node
        self.path = tuple(path)

    def __getitem__(self, key) -> Ref:
        return Ref(self.node, (*self.path, key))

    def __repr__(self) -> str:
        return self.node + "".join(f"[{k!r}]" for k in self.path)

    def to_spec(self) -> dict:
        return {"ref": self.node, "path": list(self.path)}

    def _cmp(self, op: str, other) -> Condition:
        return Condition(self, op, other)

    def __eq__(self, other):  # type: ignore[override]
        return self._cmp("==", other)

    def __ne__(self, other):  # type: ignore[override]
        return self._cmp("!=", other)

    def __lt__(self, other):
        return self._cmp("<", other)

    def __le__(self, other):
        return self._cmp("<=", other)

    def __gt__(self, other):
        return self._cmp(">", other)

    def __ge__(self, other):
        return self._cmp(">=", other)

    def __bool__(self):
        raise InvalidInput(
            f"{self!r} has no value while the pipeline is being defined",
            hint="branch with 'with when(ref > x):' instead of a Python 'if'",
        )


class Param(Ref):
    """A pipeline parameter: ``params[name]`` of the run, else its default."""

    def __init__(self, name: str, path: tuple = ()):
        super().__init__(f"params.{name}", path)
        self.name = name

    def __getitem__(self, key) -> Ref:
        p = Param(self.name, (*self.path, key))
        return p


@dataclass(frozen=True)
class Condition:
    """``left op right``, e.g. ``model["score"] > 0.8``; ``~cond`` negates it."""

    left: Ref
    op: str = "truthy"
    right: Any = None
    negate: bool = False

    def __invert__(self) -> Condition:
        return replace(self, negate=not self.negate)

    def __bool__(self):
        raise InvalidInput(
            f"the condition {self.describe()} has no value while the pipeline is being defined",
            hint="use it as 'with when(condition):'",
        )

    def refs(self) -> list[Ref]:
        return [r for r in (self.left, self.right) if isinstance(r, Ref)]

    def evaluate(self, resolve: Callable[[Ref], Any]) -> bool:
        right = resolve(self.right) if isinstance(self.right, Ref) else self.right
        try:
            result = bool(_OPS[self.op](resolve(self.left), right))
        except TypeError as exc:
            raise InvalidInput(f"cannot evaluate the condition {self.describe()}: {exc}") from None
        return result != self.negate

    def describe(self) -> str:
        text = repr(self.left) if self.op == "truthy" else f"{self.left!r} {self.op} {self.right!r}"
        return f"not ({text})" if self.negate else text


def as_condition(value) -> Condition:
    if isinstance(value, Condition):
        return value
    if isinstance(value, Ref):
        return Condition(value)
    raise InvalidInput(
        f"when() needs a step output or a comparison of one, not {type(value).__name__}",
        hint="e.g. when(evaluate_out['passed']) or when(evaluate_out['auc'] > 0.8)",
    )


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
    return hashlib.sha256(text.encode()).hexdigest()


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
            bound = self.signature.bind(*args, **kwargs)
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
        executor="local",
        concurrency: int | None = None,
        wait: bool = True,
        wait_timeout: float | None = None,
    ):
        """Run the pipeline in ``workspace``; returns a :class:`~modelloop.pipelines.runner.RunResult`.

        ``executor`` is "local" (threads in this process), "process" (a warm process pool),
        "ray", or an :class:`~modelloop.pipelines.executors.Executor`. With ``wait`` (default),
        approval and callback steps are waited for (up to ``wait_timeout`` seconds); otherwise
        the run stops ``waiting`` and is continued by ``modelloop approve`` / ``runs resume``.
        """
        from modelloop.pipelines.runner import Runner

        return Runner.for_workspace(workspace, executor=executor, concurrency=concurrency).start(
            self, params or {}, wait=wait, wait_timeout=wait_timeout
        )

    def resume(self, workspace, run_id: int, *, executor="local", **kwargs):
        """Continue a failed, interrupted or waiting run of this pipeline."""
        from modelloop.pipelines.runner import Runner

        return Runner.for_workspace(workspace, executor=executor, **kwargs).resume(
            run_id, pipeline=self
        )

    def __repr__(self) -> str:
        return f"<pipeline {self.name} ({len(self.nodes)} steps)>"


# -- the tracing context -------------------------------------------------------------------------
def current_builder() -> Pipeline | None:
    return getattr(_building, "pipeline", None)


def _need_builder(what: str) -> Pipeline:
    builder = current_builder()
    if builder is None:
        raise InvalidInput(
            f"{what} can only be used inside a @pipeline function",
            hint="or add nodes with Pipeline.add()",
        )
    return builder


@contextlib.contextmanager
def building(pipe: Pipeline) -> Iterator[Pipeline]:
    previous = current_builder()
    _building.pipeline = pipe
    try:
        yield pipe
    finally:
        _building.pipeline = previous


@contextlib.contextmanager
def when(condition: Condition | Ref) -> Iterator[None]:
    """Steps added inside run only if ``condition`` holds at run time; else they are skipped."""
    pipe = _need_builder("when()")
    cond = as_condition(condition)
    pipe._conditions.append(cond)
    try:
        yield
    finally:
        pipe._conditions.pop()
        pipe._last_when = cond


@contextlib.contextmanager
def otherwise() -> Iterator[None]:
    """The else branch of the ``when`` block just closed."""
    pipe = _need_builder("otherwise()")
    if pipe._last_when is None:
        raise InvalidInput("otherwise() must follow a 'with when(...)' block")
    with when(~pipe._last_when):
        yield
    pipe._last_when = None


@contextlib.contextmanager
def after(*refs: Ref) -> Iterator[None]:
    """Steps added inside run only after ``refs`` finished (an order without passing data)."""
    pipe = _need_builder("after()")
    saved = list(pipe._after)
    pipe._after = list(dict.fromkeys(saved + [r.node for r in refs]))
    try:
        yield
    finally:
        pipe._after = saved


def fail(message: str, *, name: str | None = None) -> Ref:
    """A step that fails the run with ``message`` when reached (use it in a branch)."""
    return _need_builder("fail()").add(kind="fail", name=name or "fail", message=str(message))


def approval(name: str, *, message: str | None = None) -> Ref:
    """A step that waits for ``modelloop approve RUN STEP``; a rejection fails it.

    Its output is the decision: ``{"approved": True, "by": …, "reason": …}``.
    """
    return _need_builder("approval()").add(kind="approval", name=name, message=message)


def callback(name: str, *, notify: Callable[[str], Any] | None = None, **inputs) -> Ref:
    """A step that waits for an external system to report success or failure with a token.

    When reached, a token is made and ``notify(token, **inputs)`` is called (e.g. to hand it to
    the external system); the system then calls ``modelloop runs report TOKEN`` (or
    :meth:`~modelloop.pipelines.runs.Runs.report`). The step's output is what was reported.
    """
    return _need_builder("callback()").add(kind="callback", name=name, notify=notify, args=inputs)


def dataset(ref: str | Param, *, name: str | None = None) -> Ref:
    """A dataset version input (``"loans"``, ``"loans@3"`` or a parameter), resolved when the
    run starts; steps get a :class:`DatasetInput` and caches key on its content hash."""
    label = name or ("dataset" if isinstance(ref, Ref) else str(ref).partition("@")[0])
    return _need_builder("dataset()").add(kind="dataset", name=label, dataset=ref)


@dataclass(frozen=True)
class DatasetInput:
    """A dataset version as passed to a step."""

    name: str
    version: int
    content_hash: str

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


def pipeline(fn: Callable | None = None, /, *, name: str | None = None):
    """Build a :class:`Pipeline` by tracing ``fn``; its keyword defaults are the parameters."""

    def build(f: Callable) -> Pipeline:
        sig = inspect.signature(f)
        params = {
            p.name: (None if p.default is inspect.Parameter.empty else p.default)
            for p in sig.parameters.values()
        }
        pipe = Pipeline(
            name or f.__name__,
            params,
            source={
                "module": f.__module__,
                "qualname": f.__qualname__,
                "file": inspect.getsourcefile(f),
            },
        )
        with building(pipe):
            f(**{p: Param(p) for p in params})
        pipe._conditions, pipe._after, pipe._last_when = [], [], None
        pipe.order()  # refuse a bad DAG at definition time
        pipe.__doc__ = f.__doc__
        return pipe

    return build if fn is None else build(fn)
