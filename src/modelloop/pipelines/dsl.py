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

    demo.run(workspace, {"alpha": 0.2}, executor="processes")

The ``@pipeline`` function runs once, when it is defined, with placeholders: calling a step there
adds a node to the DAG and returns a :class:`Ref` to its future output instead of running it.
Outside a pipeline a step is a plain function. Steps, nodes and the DAG are in
:mod:`~modelloop.pipelines.graph`; references and conditions in :mod:`~modelloop.pipelines.refs`.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator
from typing import Any

from modelloop.errors import InvalidInput
from modelloop.pipelines.graph import Pipeline, building, current_builder
from modelloop.pipelines.refs import Condition, Param, Ref, as_condition


def _need_builder(what: str) -> Pipeline:
    builder = current_builder()
    if builder is None:
        raise InvalidInput(
            f"{what} can only be used inside a @pipeline function",
            hint="or add nodes with Pipeline.add()",
        )
    return builder


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
