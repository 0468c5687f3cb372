"""What a run is known to be, and how it is written down: the runner's state, the step-run
records it writes to the store, and the :class:`RunResult` it returns.

Store traffic dominates a trivial step's cost, so decisions that need no executor (hits, skips,
datasets) are collected and written together; an executed step costs two short transactions
(start and end).
"""

from __future__ import annotations

import concurrent.futures as cf
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelloop._faults import checkpoint
from modelloop.common.status import RunStatus, StepStatus
from modelloop.errors import ModelloopError, NotFound
from modelloop.pipelines import values
from modelloop.pipelines.attempts import StepResult, StepTimeout
from modelloop.pipelines.graph import Pipeline

if TYPE_CHECKING:
    from modelloop.artifacts import ArtifactStore
    from modelloop.store.interfaces import PipelineStore

FINISHED = (StepStatus.SUCCEEDED, StepStatus.CACHED, StepStatus.SKIPPED)
RESUMABLE = (RunStatus.FAILED, RunStatus.INTERRUPTED, RunStatus.WAITING)


class RunFailed(ModelloopError):
    """Raised by :meth:`RunResult.raise_for_status` for a run that did not succeed."""

    status = 500


@dataclass
class RunResult:
    """How a run ended (or paused): its id, status, each step's status, and its outputs."""

    run_id: int
    pipeline: str
    status: str
    steps: dict[str, str]
    error: str | None
    _outputs: dict[str, dict] = field(default_factory=dict, repr=False)
    _artifacts: Any = field(default=None, repr=False)

    def output(self, step: str) -> Any:
        """The value a step produced (or reused from the cache)."""
        if step not in self._outputs:
            raise NotFound(
                f"step {step!r} of run {self.run_id} has no output ({self.steps.get(step, 'no such step')})"
            )
        return values.fetch(self._artifacts, self._outputs[step])

    def raise_for_status(self) -> RunResult:
        if self.status != RunStatus.SUCCEEDED:
            raise RunFailed(
                f"run {self.run_id} of {self.pipeline} {self.status}: {self.error or ''}".strip(),
                hint=f"see it with 'modelloop runs show {self.run_id}'",
            )
        return self


@dataclass
class RunState:
    """One run as its runner knows it."""

    run_id: int
    pipe: Pipeline
    params: dict
    ids: dict[str, int]
    status: dict[str, str]
    outputs: dict[str, dict] = field(default_factory=dict)  # node -> output row
    values: dict[str, Any] = field(default_factory=dict)  # node -> value (memo)
    info: dict[str, dict] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    running: dict[cf.Future, str] = field(default_factory=dict)
    deadlines: dict[cf.Future, float] = field(default_factory=dict)
    retry_at: dict[str, float] = field(default_factory=dict)
    keys: dict[str, tuple[str, dict]] = field(default_factory=dict)
    queue: list[str] = field(default_factory=list)  # ready, waiting for room to run
    started: dict[str, float] = field(default_factory=dict)
    error: str | None = None

    def kind(self, name: str) -> str:
        return self.pipe.nodes[name].kind


def timed_out(limit: float) -> StepResult:
    """The result of an attempt the runner gave up on at its deadline."""
    return StepResult(
        ok=False,
        error=f"StepTimeout: timed out after {limit:g} s",
        error_types=[f"{c.__module__}.{c.__qualname__}" for c in StepTimeout.__mro__],
    )


def executor_failed(exc: BaseException) -> StepResult:
    """The result of an attempt whose executor failed (a worker died, a Ray error)."""
    return StepResult(
        ok=False,
        error=f"{type(exc).__name__}: {exc}",
        error_types=[f"{c.__module__}.{c.__qualname__}" for c in type(exc).__mro__],
    )


class Recorder:
    """Writes a run's state changes to the store."""

    def __init__(self, store: PipelineStore, artifacts: ArtifactStore, *, in_process: bool):
        self.store = store
        self.artifacts = artifacts
        self.in_process = in_process

    def set(self, st: RunState, name: str, status: str, writes: list, **fields) -> None:
        """Note a decision; it is written with the others of this pass (``writes``)."""
        st.status[name] = status
        if "info" in fields:
            st.info[name] = {**st.info.get(name, {}), **fields["info"]}
            fields["info"] = st.info[name]
        writes.append({"id": st.ids[name], "status": status, **fields})

    def attempt(self, st: RunState, name: str, result: StepResult) -> None:
        """Record how an attempt ended: succeeded, to be retried, or failed."""
        opts = st.pipe.nodes[name].step.options
        info = st.info.setdefault(name, {})
        elapsed = time.perf_counter() - st.started[name]
        if result.ok:
            st.outputs[name] = result.output
            if result.value is not None or self.in_process:
                st.values[name] = result.value
            st.status[name] = StepStatus.SUCCEEDED
            self.store.update_step_runs([{
                "id": st.ids[name], "status": StepStatus.SUCCEEDED, "outputs": [result.output],
                "log": _tail(result.log), "ended_at": self.store.now(), "duration": elapsed,
                "info": info, "error": None,
            }])
            checkpoint("pipeline.step_recorded")
            return
        attempt = st.attempts[name]
        info.setdefault("errors", []).append({"attempt": attempt, "error": result.error})
        retry_names = {f"{c.__module__}.{c.__qualname__}" for c in opts.retry_on}
        retryable = result.retryable and bool(retry_names & set(result.error_types))
        if retryable and attempt < opts.max_attempts:
            st.retry_at[name] = time.monotonic() + opts.backoff * (2 ** (attempt - 1))
            st.status[name] = StepStatus.RUNNING  # between attempts
            self.store.update_step_runs(
                [{"id": st.ids[name], "info": info, "log": _tail(result.log)}]
            )
            return
        st.status[name] = StepStatus.FAILED
        tries = f" (after {attempt} attempts)" if attempt > 1 else ""
        st.error = st.error or f"step {name!r} failed{tries}: {result.error}"
        self.store.update_step_runs([{
            "id": st.ids[name], "status": StepStatus.FAILED, "error": f"{result.error}{tries}",
            "log": _tail(result.log), "ended_at": self.store.now(), "duration": elapsed,
            "info": info,
        }])

    def interrupted(self, st: RunState, exc: BaseException) -> None:
        self.store.update_pipeline_run(
            st.run_id,
            only_if_status=(RunStatus.RUNNING,),
            status=RunStatus.INTERRUPTED,
            error=f"the runner stopped: {type(exc).__name__}: {exc}",
            ended_at=self.store.now(),
        )

    def finish(self, st: RunState) -> RunResult:
        statuses = set(st.status.values())
        if st.error or StepStatus.FAILED in statuses:
            status = RunStatus.FAILED
        elif StepStatus.WAITING in statuses or StepStatus.PENDING in statuses:
            status = RunStatus.WAITING
        else:
            status = RunStatus.SUCCEEDED
        ended = None if status == RunStatus.WAITING else self.store.now()
        self.store.update_pipeline_run(
            st.run_id,
            status=status,
            error=st.error,
            ended_at=ended,
            **({"pid": None} if status == RunStatus.WAITING else {}),
        )
        return RunResult(st.run_id, st.pipe.name, status, dict(st.status), st.error,
                         dict(st.outputs), self.artifacts)


def _tail(text: str, limit: int = 64_000) -> str | None:
    if not text:
        return None
    return text if len(text) <= limit else "…" + text[-limit:]
