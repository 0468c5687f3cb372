"""The runner: walks a pipeline's DAG, decides each step (skip, cache hit, run, wait) and runs it.

One runner process drives a run; it records its pid and host on the run, so a run whose runner
died is recognised (``interrupted``) and can be resumed: finished steps are reused, the rest run.
Cache keys are made in :mod:`~modelloop.pipelines.cache`, records written by
:mod:`~modelloop.pipelines.recording`, attempts run by :mod:`~modelloop.pipelines.attempts` on
an executor of :mod:`modelloop.common.executors`. One query fetches every cache candidate of the
pipeline when the run starts.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import os
import re
import secrets
import socket
import time
from typing import TYPE_CHECKING, Any

from modelloop.common.executors import Executor
from modelloop.common.status import RunStatus, StepStatus
from modelloop.errors import InvalidInput, NotFound
from modelloop.pipelines import cache, values
from modelloop.pipelines.attempts import StepTask, execute, fn_blob, portable, run_portable
from modelloop.pipelines.context import ContextFactory
from modelloop.pipelines.graph import DatasetInput, Node, Pipeline
from modelloop.pipelines.loading import load_pipeline
from modelloop.pipelines.recording import (
    FINISHED,
    RESUMABLE,
    Recorder,
    RunResult,
    RunState,
    executor_failed,
    timed_out,
)
from modelloop.pipelines.refs import Param, Ref

if TYPE_CHECKING:
    from modelloop.artifacts import ArtifactStore
    from modelloop.store import MetadataStore

_NUMBER = re.compile(r"[0-9]{1,9}", re.ASCII)  # a version number ('²' passes str.isdigit)
_POLL = 0.25  # seconds between looks at the store while only approvals/callbacks are pending


class Runner:
    """Runs pipelines on ``executor``; steps that take a StepContext get one from ``contexts``."""

    def __init__(self, store: MetadataStore, artifacts: ArtifactStore, executor: Executor,
                 concurrency: int | None = None,
                 contexts: ContextFactory | None = None):
        self.store = store
        self.artifacts = artifacts
        self.executor = executor
        self.concurrency = concurrency or executor.concurrency
        self.contexts = contexts
        self.record = Recorder(store, artifacts, in_process=executor.in_process)
        self._blobs: dict[int, bytes] = {}
        self._open = contextlib.ExitStack()  # this run's StepContext, when a step needs it
        self._context = None

    # -- entry points -------------------------------------------------------------------------
    def start(self, pipe: Pipeline, params: dict, *, wait=True, wait_timeout=None,
              started_by: dict | None = None, should_stop=None) -> RunResult:
        order = pipe.order()
        unknown = sorted(set(params) - set(pipe.params))
        if unknown:
            raise InvalidInput(
                f"pipeline {pipe.name!r} has no parameter {', '.join(map(repr, unknown))}",
                hint=f"its parameters: {', '.join(pipe.params) or 'none'}",
            )
        merged = {**pipe.params, **params}
        run_id, ids = self.store.create_pipeline_run(
            pipeline=pipe.name,
            params={k: cache.canonical(v) for k, v in merged.items()},
            spec=pipe.spec(),
            executor=self.executor.name,
            steps=[{"name": n, "kind": pipe.nodes[n].kind} for n in order],
            host=socket.gethostname(),
            pid=os.getpid(),
            started_by=started_by,
        )
        state = RunState(run_id, pipe, merged, ids, {n: StepStatus.PENDING for n in order})
        return self._drive(state, order, wait=wait, wait_timeout=wait_timeout,
                           should_stop=should_stop)

    def resume(
        self, run_id: int, *, pipeline: Pipeline | None = None, wait=True, wait_timeout=None,
        should_stop=None,
    ) -> RunResult:
        run = self.store.get_pipeline_run(run_id)
        if run is None:
            raise NotFound(f"no pipeline run {run_id}", hint="list runs with 'modelloop runs list'")
        if run["status"] not in RESUMABLE:
            raise InvalidInput(
                f"run {run_id} is {run['status']}; only a failed, interrupted or waiting run "
                "can be resumed",
                hint="start a new run instead" if run["status"] == RunStatus.SUCCEEDED else None,
            )
        pipe = pipeline or load_pipeline(run["spec"].get("source"))
        order = pipe.order()
        steps = {s["name"]: s for s in self.store.pipeline_step_runs(run_id)}
        if set(steps) != set(order):
            raise InvalidInput(
                f"pipeline {pipe.name!r} no longer has the steps run {run_id} had "
                f"(added: {sorted(set(order) - set(steps))}, removed: {sorted(set(steps) - set(order))})",
                hint="start a new run; finished steps will still be reused from the cache",
            )
        reset = [n for n, s in steps.items() if s["status"] in (StepStatus.FAILED, StepStatus.RUNNING, StepStatus.PENDING)]
        if not self.store.resume_pipeline_run(
            run_id,
            reset=reset,
            host=socket.gethostname(),
            pid=os.getpid(),
            executor=self.executor.name,
            allowed_from=RESUMABLE,
        ):
            raise InvalidInput(f"run {run_id} changed meanwhile; look at it again")
        cleared = [
            {"id": steps[n]["id"], "info": {}, "token": None}
            for n in reset
            if steps[n]["kind"] in ("approval", "callback")
        ]
        if cleared:
            self.store.update_step_runs(cleared)
        state = RunState(
            run_id,
            pipe,
            {**pipe.params, **run["params"]},
            {n: s["id"] for n, s in steps.items()},
            {n: (StepStatus.PENDING if n in reset else s["status"]) for n, s in steps.items()},
        )
        for n, s in steps.items():
            state.info[n] = {} if n in reset else s["info"]
            if s["outputs"] and n not in reset:
                state.outputs[n] = s["outputs"][0]
        return self._drive(state, order, wait=wait, wait_timeout=wait_timeout,
                           should_stop=should_stop)

    # -- the loop -----------------------------------------------------------------------------
    def _drive(self, st: RunState, order: list[str], *, wait: bool, wait_timeout,
               should_stop=None) -> RunResult:
        """Run the DAG. ``should_stop()``, asked between steps, returns why the run must stop
        (a newer cause replaced it) or None: then nothing new starts, as after a failure, and
        the run ends failed with that reason (resumable)."""
        nodes = st.pipe.nodes
        step_names = [n for n in order if nodes[n].kind == "step"]
        candidates = self.store.cache_candidates(st.pipe.name, step_names) if step_names else {}
        waited_since: float | None = None
        try:
            while True:
                if should_stop is not None and not st.error and StepStatus.PENDING in \
                        st.status.values():
                    why = should_stop()
                    if why:
                        st.error = f"stopped: {why}"
                writes: list[dict] = []
                launch: list[str] = []
                for name in order:
                    if st.status[name] not in (StepStatus.PENDING, StepStatus.WAITING) or name in st.retry_at:
                        continue
                    if st.error and st.status[name] == StepStatus.PENDING:
                        continue  # fail fast: nothing new starts after a failure
                    self._decide(st, nodes[name], candidates, writes, launch)
                now = time.monotonic()
                for name, when in list(st.retry_at.items()):
                    if st.error:  # fail fast: no more attempts; resume will run it again
                        del st.retry_at[name]
                        st.status[name] = StepStatus.PENDING
                        writes.append({"id": st.ids[name], "status": StepStatus.PENDING})
                    elif when <= now:
                        del st.retry_at[name]
                        launch.append(name)
                if st.error and st.queue:
                    for name in st.queue:
                        st.status[name] = StepStatus.PENDING
                    st.queue = []
                if writes:
                    self.store.update_step_runs(writes)
                self._launch(st, launch)
                if not st.running and not st.retry_at:
                    waiting = [n for n in order if st.status[n] == StepStatus.WAITING]
                    if not waiting or st.error or not wait:
                        break
                    waited_since = waited_since or time.monotonic()
                    if wait_timeout is not None and time.monotonic() - waited_since > wait_timeout:
                        break
                    time.sleep(_POLL)
                    self._refresh_waiting(st, waiting)
                    continue
                self._collect(st)
        except BaseException as exc:
            for fut in st.running:
                self.executor.cancel(fut)
            self.record.interrupted(st, exc)
            raise
        finally:
            self.executor.close()
            self._open.close()
        return self.record.finish(st)

    # -- deciding a node ----------------------------------------------------------------------
    def _resolve(self, st: RunState, ref: Ref) -> Any:
        if isinstance(ref, Param):
            value = st.params[ref.name]
        elif ref.node in st.values:
            value = st.values[ref.node]
        elif st.kind(ref.node) == "dataset":
            value = DatasetInput(**st.info[ref.node]["dataset"])
        else:
            value = values.fetch(self.artifacts, st.outputs[ref.node])
            st.values[ref.node] = value
        for key in ref.path:
            value = value[key]
        return value

    def _decide(self, st: RunState, node: Node, candidates, writes: list, launch: list) -> None:
        ups = node.upstream()
        if any(st.status[u] not in FINISHED for u in ups):
            return
        if any(st.status[u] == StepStatus.SKIPPED for u in ups):
            return self.record.set(
                st, node.name, StepStatus.SKIPPED, writes, info={"why": "an upstream step was skipped"}
            )
        for cond in node.conditions:
            if not cond.evaluate(lambda r: self._resolve(st, r)):
                why = f"condition {cond.describe()} is false"
                return self.record.set(st, node.name, StepStatus.SKIPPED, writes, info={"why": why})
        if node.kind == "dataset":
            return self._dataset(st, node, writes)
        if node.kind == "fail":
            st.error = f"step {node.name!r}: {node.message}"
            return self.record.set(st, node.name, StepStatus.FAILED, writes, error=node.message)
        if node.kind in ("approval", "callback"):
            return self._control(st, node, writes)
        # a step: cache hit, or run it
        params, inputs = self._arguments(st, node)
        recipe = cache.recipe(node.step, params, inputs)
        key = cache.recipe_key(recipe)
        st.keys[node.name] = (key, recipe)
        found = candidates.get(key)
        age = None
        if found is not None and found["ended_at"] is not None:
            age = (self.store.now() - found["ended_at"]).total_seconds()
        verdict = cache.verdict(node.step.options, found, age, self.artifacts.exists)
        if isinstance(verdict, dict):
            st.outputs[node.name] = verdict["outputs"][0] if verdict["outputs"] else None
            now = self.store.now()
            return self.record.set(
                st, node.name, StepStatus.CACHED, writes,
                cache_key=key, recipe=recipe, cached_from=verdict["id"],
                outputs=verdict["outputs"], inputs=cache.recorded_inputs(params, inputs),
                started_at=now, ended_at=now, duration=0.0, info={"cache": "hit"},
            )
        st.info[node.name] = {"cache": verdict}
        st.status[node.name] = "ready"
        launch.append(node.name)

    def _arguments(self, st: RunState, node: Node) -> tuple[dict, dict]:
        """A step's arguments as its recipe has them: params by value, inputs by content."""
        params, inputs = {}, {}
        for arg, v in node.args.items():
            if isinstance(v, Param) or not isinstance(v, Ref):
                params[arg] = cache.canonical(self._resolve(st, v) if isinstance(v, Ref) else v)
            elif st.kind(v.node) == "dataset":
                ds = st.info[v.node]["dataset"]
                inputs[arg] = {
                    "dataset": f"{ds['name']}@{ds['version']}",
                    "content_hash": ds["content_hash"],
                }
            else:
                out = st.outputs.get(v.node)
                inputs[arg] = {"step": v.node, "path": list(v.path), "digest": out and out["digest"]}
        return params, inputs

    def _dataset(self, st: RunState, node: Node, writes: list) -> None:
        text = self._resolve(st, node.dataset) if isinstance(node.dataset, Ref) else node.dataset
        name, _, version = str(text).partition("@")
        number = (None if version in ("", "latest")
                  else int(version) if _NUMBER.fullmatch(version) else -1)
        found = self.store.get_dataset_version(name, number) if number != -1 else None
        if found is None:
            st.error = f"step {node.name!r}: no dataset version {text!r}"
            return self.record.set(st, node.name, StepStatus.FAILED, writes,
                                   error=f"no dataset version {text!r}")
        ds = {"name": name, "version": found["version"], "content_hash": found["content_hash"]}
        self.record.set(
            st, node.name, StepStatus.SUCCEEDED, writes, info={"dataset": ds}, inputs={"ref": str(text)}
        )

    # -- approvals and callbacks ---------------------------------------------------------------
    def _control(self, st: RunState, node: Node, writes: list) -> None:
        info = st.info.get(node.name) or {}
        decision = info.get("decision") or info.get("report")
        if decision is None:
            if st.status[node.name] == StepStatus.WAITING:
                return
            fields: dict = {"info": {"waiting_for": node.kind, "message": node.message}}
            if node.kind == "callback":
                token = secrets.token_urlsafe(24)
                fields["token"] = token
                if node.notify is not None:
                    kwargs = {
                        k: (self._resolve(st, v) if isinstance(v, Ref) else v)
                        for k, v in node.args.items()
                    }
                    node.notify(token, **kwargs)
            fields["started_at"] = self.store.now()
            return self.record.set(st, node.name, StepStatus.WAITING, writes, **fields)
        ok = decision.get("approved", decision.get("success", False))
        now = self.store.now()
        if not ok:
            why = decision.get("reason") or decision.get("error") or "no reason given"
            who = f" by {decision['by']}" if decision.get("by") else ""
            verb = "rejected" if node.kind == "approval" else "reported failure"
            st.error = f"step {node.name!r} {verb}{who}: {why}"
            return self.record.set(
                st, node.name, StepStatus.FAILED, writes, error=f"{verb}{who}: {why}", ended_at=now
            )
        payload = decision if node.kind == "approval" else decision.get("output")
        out = values.store(self.artifacts, payload, node.name)
        st.outputs[node.name] = out
        st.values[node.name] = payload
        self.record.set(st, node.name, StepStatus.SUCCEEDED, writes, outputs=[out], ended_at=now)

    def _refresh_waiting(self, st: RunState, waiting: list[str]) -> None:
        for s in self.store.pipeline_step_runs(st.run_id):
            if s["name"] in waiting:
                st.info[s["name"]] = s["info"]

    # -- executing steps ----------------------------------------------------------------------
    def _launch(self, st: RunState, names: list[str]) -> None:
        """Start what fits under the concurrency limit; the rest waits in ``st.queue``.

        The rows say "running" before the work starts, so a crash never hides a started step.
        """
        names = [n for n in st.queue + names if n not in st.running.values()]
        names = list(dict.fromkeys(names))
        room = max(self.concurrency - len(st.running), 0)
        start, st.queue = names[:room], names[room:]
        if not start:
            return
        now_db = self.store.now()
        tasks, writes = [], []
        for name in start:
            node = st.pipe.nodes[name]
            st.attempts[name] = st.attempts.get(name, 0) + 1
            tasks.append((name, self._task(st, node)))
            st.status[name] = StepStatus.RUNNING
            key, recipe = st.keys[name]
            writes.append(
                {
                    "id": st.ids[name],
                    "status": StepStatus.RUNNING,
                    "attempts": st.attempts[name],
                    "cache_key": key,
                    "recipe": recipe,
                    "inputs": cache.recorded_inputs(*self._arguments(st, node)),
                    "info": st.info.get(name, {}),
                    **({"started_at": now_db} if st.attempts[name] == 1 else {}),
                }
            )
        self.store.update_step_runs(writes)
        for name, task in tasks:
            st.started.setdefault(name, time.perf_counter())  # before: 'local' runs it in submit
            if self.executor.in_process:
                fut = self.executor.submit(execute, task, self.artifacts)
            else:
                fut = self.executor.submit(run_portable, portable(task))
            st.running[fut] = name
            timeout = st.pipe.nodes[name].step.options.timeout
            if timeout:
                st.deadlines[fut] = time.monotonic() + timeout + 1.0

    def _task(self, st: RunState, node: Node) -> StepTask:
        args, loads = {}, {}
        for arg, v in node.args.items():
            if not isinstance(v, Ref) or isinstance(v, Param) or st.kind(v.node) == "dataset":
                args[arg] = self._resolve(st, v) if isinstance(v, Ref) else v
            elif self.executor.in_process:
                args[arg] = self._resolve(st, v)
            else:
                loads[arg] = (st.outputs[v.node], list(v.path))
        step = node.step
        blob, context = None, None
        if step.context_arg:
            if self.contexts is None:
                raise InvalidInput(
                    f"step {node.name!r} takes a StepContext, and this runner has none",
                    hint="run the pipeline through a workspace: pipeline.run(ws)",
                )
            if self.executor.in_process:
                args[step.context_arg] = self._step_context()
            else:
                context = self.contexts
        if not self.executor.in_process:
            blob = self._blobs.get(id(step))
            if blob is None:
                blob = self._blobs[id(step)] = fn_blob(step.fn)
        return StepTask(
            step=node.name,
            fn=step.fn,
            args=args,
            loads=loads,
            timeout=step.options.timeout,
            returns=step.hints.get("return"),
            artifacts=self.artifacts,
            fn_blob=blob,
            keep_value=self.executor.in_process,
            context_arg=step.context_arg,
            context=context,
        )

    def _step_context(self):
        """The run's StepContext for steps in this process: opened once, closed with the run."""
        if self._context is None:
            self._context = self._open.enter_context(self.contexts())
        return self._context

    def _collect(self, st: RunState) -> None:
        timeout = None
        soon = [*st.deadlines.values(), *st.retry_at.values()]
        if soon:
            timeout = max(0.0, min(soon) - time.monotonic())
        done, _ = cf.wait(list(st.running), timeout=timeout, return_when=cf.FIRST_COMPLETED)
        for fut in done:
            name = st.running.pop(fut)
            st.deadlines.pop(fut, None)
            try:
                result = fut.result()
            except Exception as exc:  # the executor itself failed (a worker died, Ray error)
                result = executor_failed(exc)
            self.record.attempt(st, name, result)
        now = time.monotonic()
        for fut, deadline in list(st.deadlines.items()):
            if deadline <= now and fut in st.running:
                name = st.running.pop(fut)
                st.deadlines.pop(fut)
                self.executor.cancel(fut)
                self.record.attempt(st, name, timed_out(st.pipe.nodes[name].step.options.timeout))
