"""The runner: walks a pipeline's DAG, decides each step (skip, cache hit, run, wait), records it.

One runner process drives a run; it records its pid and host on the run, so a run whose runner
died is recognised (``interrupted``) and can be resumed: finished steps are reused, the rest run.

Store traffic is kept small because it dominates a trivial step's cost: one query fetches every
cache candidate of the pipeline when the run starts, decisions that need no executor (hits,
skips, datasets) are written together, and an executed step costs two short transactions (start
and end).
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import importlib
import importlib.util
import json
import os
import pickle
import re
import secrets
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from modelloop._faults import checkpoint
from modelloop.errors import InvalidInput, ModelloopError, NotFound
from modelloop.pipelines import values
from modelloop.pipelines.dsl import ENGINE_VERSION, DatasetInput, Node, Param, Pipeline, Ref
from modelloop.pipelines.executors import Executor, StepResult, StepTask, fn_blob, make_executor

_NUMBER = re.compile(r"[0-9]{1,9}", re.ASCII)  # a version number ('²' passes str.isdigit)
FINISHED = ("succeeded", "cached", "skipped")
RESUMABLE = ("failed", "interrupted", "waiting")
_POLL = 0.25  # seconds between looks at the store while only approvals/callbacks are pending


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
        if self.status != "succeeded":
            raise RunFailed(
                f"run {self.run_id} of {self.pipeline} {self.status}: {self.error or ''}".strip(),
                hint=f"see it with 'modelloop runs show {self.run_id}'",
            )
        return self


# -- cache recipes ---------------------------------------------------------------------------------
def canonical(value: Any) -> Any:
    """A JSON-able, stable stand-in for a parameter value (hashed into cache keys)."""
    try:
        json.dumps(value, sort_keys=True, allow_nan=False)
        return value
    except (TypeError, ValueError):
        pass
    if isinstance(value, DatasetInput):
        return {"dataset": value.ref, "content_hash": value.content_hash}
    try:
        return {"pickle_sha256": hashlib.sha256(pickle.dumps(value, protocol=5)).hexdigest()}
    except Exception:
        return {"repr": repr(value)}


def recipe_key(recipe: dict) -> str:
    return hashlib.sha256(json.dumps(recipe, sort_keys=True, default=str).encode()).hexdigest()


# -- loading a pipeline again in another process -------------------------------------------------
def load_pipeline(source: dict | None) -> Pipeline:
    """The :class:`Pipeline` a run's ``spec["source"]`` points at (to resume it elsewhere)."""
    if not source:
        raise InvalidInput(
            "this run does not say where its pipeline's code is",
            hint="resume it from Python: pipeline.resume(workspace, RUN)",
        )
    if "loader" in source:  # "module:function" returning a Pipeline, e.g. a loop.yaml compiler
        module, _, func = source["loader"].partition(":")
        obj = getattr(importlib.import_module(module), func)(**source.get("args", {}))
    else:
        mod = None
        if source.get("module") not in (None, "__main__"):
            try:
                mod = importlib.import_module(source["module"])
            except ImportError:
                mod = None
        if mod is None:
            path = source.get("file")
            if not path or not os.path.exists(path):
                raise NotFound(
                    f"cannot find the pipeline's code ({source.get('module')} in {path})",
                    hint="run 'modelloop runs resume' where that file exists",
                )
            name = "_modelloop_pipeline_" + hashlib.sha256(path.encode()).hexdigest()[:12]
            mod = sys.modules.get(name)
            if mod is None:
                # as when the file ran as a script: its folder is importable
                folder = os.path.dirname(os.path.abspath(path))
                if folder not in sys.path:
                    sys.path.insert(0, folder)
                spec = importlib.util.spec_from_file_location(name, path)
                mod = importlib.util.module_from_spec(spec)
                sys.modules[name] = mod
                try:
                    spec.loader.exec_module(mod)
                except Exception as exc:
                    del sys.modules[name]
                    raise InvalidInput(
                        f"cannot load the pipeline's code from {path}: {type(exc).__name__}: {exc}",
                        hint="make the file importable where you resume the run",
                    ) from None
        if "<locals>" in source["qualname"]:
            raise InvalidInput(
                f"pipeline {source['qualname']} was defined inside a function, so another "
                "process cannot load it",
                hint="define it at module level, or resume it from Python: pipeline.resume(ws, RUN)",
            )
        obj = mod
        for part in source["qualname"].split("."):
            obj = getattr(obj, part)
    if not isinstance(obj, Pipeline):
        raise InvalidInput(f"{source} is not a pipeline (found {type(obj).__name__})")
    return obj


# -- the runner ----------------------------------------------------------------------------------
@dataclass
class _State:
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


class Runner:
    def __init__(self, store, artifacts, executor: Executor, concurrency: int | None = None):
        self.store = store
        self.artifacts = artifacts
        self.executor = executor
        self.concurrency = concurrency or executor.concurrency
        self._blobs: dict[int, bytes] = {}

    @classmethod
    def for_workspace(cls, workspace, *, executor="local", concurrency=None) -> Runner:
        ex = make_executor(executor, concurrency)
        return cls(workspace.store, workspace.artifacts, ex, concurrency)

    # -- entry points -------------------------------------------------------------------------
    def start(self, pipe: Pipeline, params: dict, *, wait=True, wait_timeout=None) -> RunResult:
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
            params={k: canonical(v) for k, v in merged.items()},
            spec=pipe.spec(),
            executor=self.executor.name,
            steps=[{"name": n, "kind": pipe.nodes[n].kind} for n in order],
            host=socket.gethostname(),
            pid=os.getpid(),
        )
        state = _State(run_id, pipe, merged, ids, {n: "pending" for n in order})
        return self._drive(state, order, wait=wait, wait_timeout=wait_timeout)

    def resume(
        self, run_id: int, *, pipeline: Pipeline | None = None, wait=True, wait_timeout=None
    ) -> RunResult:
        run = self.store.get_pipeline_run(run_id)
        if run is None:
            raise NotFound(f"no pipeline run {run_id}", hint="list runs with 'modelloop runs list'")
        if run["status"] not in RESUMABLE:
            raise InvalidInput(
                f"run {run_id} is {run['status']}; only a failed, interrupted or waiting run "
                "can be resumed",
                hint="start a new run instead" if run["status"] == "succeeded" else None,
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
        reset = [n for n, s in steps.items() if s["status"] in ("failed", "running", "pending")]
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
        state = _State(
            run_id,
            pipe,
            {**pipe.params, **run["params"]},
            {n: s["id"] for n, s in steps.items()},
            {n: ("pending" if n in reset else s["status"]) for n, s in steps.items()},
        )
        for n, s in steps.items():
            state.info[n] = {} if n in reset else s["info"]
            if s["outputs"] and n not in reset:
                state.outputs[n] = s["outputs"][0]
        return self._drive(state, order, wait=wait, wait_timeout=wait_timeout)

    # -- the loop -----------------------------------------------------------------------------
    def _drive(self, st: _State, order: list[str], *, wait: bool, wait_timeout) -> RunResult:
        nodes = st.pipe.nodes
        step_names = [n for n in order if nodes[n].kind == "step"]
        candidates = self.store.cache_candidates(st.pipe.name, step_names) if step_names else {}
        waited_since: float | None = None
        try:
            while True:
                writes: list[dict] = []
                launch: list[str] = []
                for name in order:
                    if st.status[name] not in ("pending", "waiting") or name in st.retry_at:
                        continue
                    if st.error and st.status[name] == "pending":
                        continue  # fail fast: nothing new starts after a failure
                    self._decide(st, nodes[name], candidates, writes, launch)
                now = time.monotonic()
                for name, when in list(st.retry_at.items()):
                    if st.error:  # fail fast: no more attempts; resume will run it again
                        del st.retry_at[name]
                        st.status[name] = "pending"
                        writes.append({"id": st.ids[name], "status": "pending"})
                    elif when <= now:
                        del st.retry_at[name]
                        launch.append(name)
                if st.error and st.queue:
                    for name in st.queue:
                        st.status[name] = "pending"
                    st.queue = []
                if writes:
                    self.store.update_step_runs(writes)
                self._launch(st, launch)
                if not st.running and not st.retry_at:
                    waiting = [n for n in order if st.status[n] == "waiting"]
                    if not waiting or st.error:
                        break
                    if not wait:
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
            self.store.update_pipeline_run(
                st.run_id,
                only_if_status=("running",),
                status="interrupted",
                error=f"the runner stopped: {type(exc).__name__}: {exc}",
                ended_at=self.store.now(),
            )
            raise
        finally:
            self.executor.close()
        return self._finish(st)

    def _finish(self, st: _State) -> RunResult:
        statuses = set(st.status.values())
        if st.error or "failed" in statuses:
            status = "failed"
        elif "waiting" in statuses or "pending" in statuses:
            status = "waiting"
        else:
            status = "succeeded"
        ended = None if status == "waiting" else self.store.now()
        self.store.update_pipeline_run(
            st.run_id,
            status=status,
            error=st.error,
            ended_at=ended,
            **({"pid": None} if status == "waiting" else {}),
        )
        return RunResult(
            st.run_id,
            st.pipe.name,
            status,
            dict(st.status),
            st.error,
            dict(st.outputs),
            self.artifacts,
        )

    # -- deciding a node ----------------------------------------------------------------------
    def _resolve(self, st: _State, ref: Ref) -> Any:
        if isinstance(ref, Param):
            value = st.params[ref.name]
        elif ref.node in st.values:
            value = st.values[ref.node]
        elif nodes_kind(st, ref.node) == "dataset":
            value = DatasetInput(**st.info[ref.node]["dataset"])
        else:
            value = values.fetch(self.artifacts, st.outputs[ref.node])
            st.values[ref.node] = value
        for key in ref.path:
            value = value[key]
        return value

    def _decide(self, st: _State, node: Node, candidates, writes: list, launch: list) -> None:
        ups = node.upstream()
        if any(st.status[u] not in FINISHED for u in ups):
            return
        if any(st.status[u] == "skipped" for u in ups):
            return self._set(
                st, node.name, "skipped", writes, info={"why": "an upstream step was skipped"}
            )
        for cond in node.conditions:
            if not cond.evaluate(lambda r: self._resolve(st, r)):
                return self._set(
                    st,
                    node.name,
                    "skipped",
                    writes,
                    info={"why": f"condition {cond.describe()} is false"},
                )
        if node.kind == "dataset":
            return self._dataset(st, node, writes)
        if node.kind == "fail":
            st.error = f"step {node.name!r}: {node.message}"
            return self._set(st, node.name, "failed", writes, error=node.message)
        if node.kind in ("approval", "callback"):
            return self._control(st, node, writes)
        # a step: cache hit, or run it
        recipe = self._recipe(st, node)
        key = recipe_key(recipe)
        st.keys[node.name] = (key, recipe)
        verdict = self._cache_verdict(node, key, candidates)
        if isinstance(verdict, dict):
            st.outputs[node.name] = verdict["outputs"][0] if verdict["outputs"] else None
            now = self.store.now()
            return self._set(
                st,
                node.name,
                "cached",
                writes,
                cache_key=key,
                recipe=recipe,
                cached_from=verdict["id"],
                outputs=verdict["outputs"],
                inputs=self._inputs(st, node),
                started_at=now,
                ended_at=now,
                duration=0.0,
                info={"cache": "hit"},
            )
        st.info[node.name] = {"cache": verdict}
        st.status[node.name] = "ready"
        launch.append(node.name)

    def _set(self, st: _State, name: str, status: str, writes: list, **fields) -> None:
        st.status[name] = status
        if "info" in fields:
            st.info[name] = {**st.info.get(name, {}), **fields["info"]}
            fields["info"] = st.info[name]
        writes.append({"id": st.ids[name], "status": status, **fields})

    def _dataset(self, st: _State, node: Node, writes: list) -> None:
        text = self._resolve(st, node.dataset) if isinstance(node.dataset, Ref) else node.dataset
        name, _, version = str(text).partition("@")
        number = (None if version in ("", "latest")
                  else int(version) if _NUMBER.fullmatch(version) else -1)
        found = self.store.get_dataset_version(name, number) if number != -1 else None
        if found is None:
            st.error = f"step {node.name!r}: no dataset version {text!r}"
            return self._set(st, node.name, "failed", writes, error=f"no dataset version {text!r}")
        ds = {"name": name, "version": found["version"], "content_hash": found["content_hash"]}
        self._set(
            st, node.name, "succeeded", writes, info={"dataset": ds}, inputs={"ref": str(text)}
        )

    def _recipe(self, st: _State, node: Node) -> dict:
        params, inputs = {}, {}
        for arg, v in node.args.items():
            if isinstance(v, Param) or not isinstance(v, Ref):
                params[arg] = canonical(self._resolve(st, v) if isinstance(v, Ref) else v)
            elif nodes_kind(st, v.node) == "dataset":
                ds = st.info[v.node]["dataset"]
                inputs[arg] = {
                    "dataset": f"{ds['name']}@{ds['version']}",
                    "content_hash": ds["content_hash"],
                }
            else:
                out = st.outputs.get(v.node)
                inputs[arg] = {
                    "step": v.node,
                    "path": list(v.path),
                    "digest": out and out["digest"],
                }
        opts = node.step.options
        return {
            "engine": ENGINE_VERSION,
            "function": node.step.ref,
            "source": node.step.source_hash,
            "cache_version": opts.cache_version,
            "params": params,
            "inputs": inputs,
        }

    def _cache_verdict(self, node: Node, key: str, candidates: dict) -> dict | str:
        """The candidate to reuse, or why there is none ("off", "miss", "expired", "missing")."""
        opts = node.step.options
        if not opts.cache:
            return "off"
        found = candidates.get(key)
        if found is None:
            return "miss"
        if opts.cache_expires is not None and found["ended_at"] is not None:
            age = (self.store.now() - found["ended_at"]).total_seconds()
            if age > opts.cache_expires:
                return "expired"
        if not all(self.artifacts.exists(o["digest"]) for o in found["outputs"]):
            return "missing"
        return found

    def _inputs(self, st: _State, node: Node) -> dict:
        """What was passed, for the run record: params by value, outputs by digest."""
        out = {}
        for arg, v in node.args.items():
            if isinstance(v, Param) or not isinstance(v, Ref):
                out[arg] = canonical(self._resolve(st, v) if isinstance(v, Ref) else v)
            elif nodes_kind(st, v.node) == "dataset":
                out[arg] = {"dataset": DatasetInput(**st.info[v.node]["dataset"]).ref}
            else:
                o = st.outputs.get(v.node)
                out[arg] = {"step": v.node, "path": list(v.path), "digest": o and o["digest"]}
        return out

    # -- approvals and callbacks ---------------------------------------------------------------
    def _control(self, st: _State, node: Node, writes: list) -> None:
        info = st.info.get(node.name) or {}
        decision = info.get("decision") or info.get("report")
        if decision is None:
            if st.status[node.name] == "waiting":
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
            return self._set(st, node.name, "waiting", writes, **fields)
        ok = decision.get("approved", decision.get("success", False))
        now = self.store.now()
        if not ok:
            why = decision.get("reason") or decision.get("error") or "no reason given"
            who = f" by {decision['by']}" if decision.get("by") else ""
            verb = "rejected" if node.kind == "approval" else "reported failure"
            st.error = f"step {node.name!r} {verb}{who}: {why}"
            return self._set(
                st, node.name, "failed", writes, error=f"{verb}{who}: {why}", ended_at=now
            )
        payload = decision if node.kind == "approval" else decision.get("output")
        out = values.store(self.artifacts, payload, node.name)
        st.outputs[node.name] = out
        st.values[node.name] = payload
        self._set(st, node.name, "succeeded", writes, outputs=[out], ended_at=now)

    def _refresh_waiting(self, st: _State, waiting: list[str]) -> None:
        for s in self.store.pipeline_step_runs(st.run_id):
            if s["name"] in waiting:
                st.info[s["name"]] = s["info"]

    # -- executing steps ----------------------------------------------------------------------
    def _launch(self, st: _State, names: list[str]) -> None:
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
            st.status[name] = "running"
            key, recipe = st.keys[name]
            writes.append(
                {
                    "id": st.ids[name],
                    "status": "running",
                    "attempts": st.attempts[name],
                    "cache_key": key,
                    "recipe": recipe,
                    "inputs": self._inputs(st, node),
                    "info": st.info.get(name, {}),
                    **({"started_at": now_db} if st.attempts[name] == 1 else {}),
                }
            )
        self.store.update_step_runs(writes)
        for name, task in tasks:
            fut = self.executor.submit(task)
            st.running[fut] = name
            st.started.setdefault(name, time.perf_counter())
            timeout = st.pipe.nodes[name].step.options.timeout
            if timeout:
                st.deadlines[fut] = time.monotonic() + timeout + 1.0

    def _task(self, st: _State, node: Node) -> StepTask:
        args, loads = {}, {}
        for arg, v in node.args.items():
            if (
                not isinstance(v, Ref)
                or isinstance(v, Param)
                or nodes_kind(st, v.node) == "dataset"
            ):
                args[arg] = self._resolve(st, v) if isinstance(v, Ref) else v
            elif self.executor.in_process:
                args[arg] = self._resolve(st, v)
            else:
                loads[arg] = (st.outputs[v.node], list(v.path))
        step = node.step
        blob = None
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
        )

    def _collect(self, st: _State) -> None:
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
                result = StepResult(
                    ok=False,
                    error=f"{type(exc).__name__}: {exc}",
                    error_types=[f"{c.__module__}.{c.__qualname__}" for c in type(exc).__mro__],
                )
            self._record(st, name, result)
        now = time.monotonic()
        for fut, deadline in list(st.deadlines.items()):
            if deadline <= now and fut in st.running:
                name = st.running.pop(fut)
                st.deadlines.pop(fut)
                self.executor.cancel(fut)
                limit = st.pipe.nodes[name].step.options.timeout
                self._record(
                    st,
                    name,
                    StepResult(
                        ok=False,
                        error=f"StepTimeout: timed out after {limit:g} s",
                        error_types=[
                            "modelloop.pipelines.executors.StepTimeout",
                            "builtins.Exception",
                            "builtins.BaseException",
                        ],
                    ),
                )

    def _record(self, st: _State, name: str, result: StepResult) -> None:
        node = st.pipe.nodes[name]
        opts = node.step.options
        info = st.info.setdefault(name, {})
        elapsed = time.perf_counter() - st.started[name]
        if result.ok:
            st.outputs[name] = result.output
            if result.value is not None or self.executor.in_process:
                st.values[name] = result.value
            st.status[name] = "succeeded"
            self.store.update_step_runs(
                [
                    {
                        "id": st.ids[name],
                        "status": "succeeded",
                        "outputs": [result.output],
                        "log": _tail(result.log),
                        "ended_at": self.store.now(),
                        "duration": elapsed,
                        "info": info,
                        "error": None,
                    }
                ]
            )
            checkpoint("pipeline.step_recorded")
            return
        attempt = st.attempts[name]
        info.setdefault("errors", []).append({"attempt": attempt, "error": result.error})
        retry_names = {f"{c.__module__}.{c.__qualname__}" for c in opts.retry_on}
        retryable = result.retryable and bool(retry_names & set(result.error_types))
        if retryable and attempt < opts.max_attempts:
            st.retry_at[name] = time.monotonic() + opts.backoff * (2 ** (attempt - 1))
            st.status[name] = "running"  # between attempts
            self.store.update_step_runs(
                [{"id": st.ids[name], "info": info, "log": _tail(result.log)}]
            )
            return
        st.status[name] = "failed"
        tries = f" (after {attempt} attempts)" if attempt > 1 else ""
        st.error = st.error or f"step {name!r} failed{tries}: {result.error}"
        self.store.update_step_runs(
            [
                {
                    "id": st.ids[name],
                    "status": "failed",
                    "error": f"{result.error}{tries}",
                    "log": _tail(result.log),
                    "ended_at": self.store.now(),
                    "duration": elapsed,
                    "info": info,
                }
            ]
        )


def nodes_kind(st: _State, name: str) -> str:
    return st.pipe.nodes[name].kind


def _tail(text: str, limit: int = 64_000) -> str | None:
    if not text:
        return None
    return text if len(text) <= limit else "…" + text[-limit:]
