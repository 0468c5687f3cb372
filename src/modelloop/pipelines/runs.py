"""Pipeline runs: start and resume them, and their records: list, show, explain a cache
decision, approve, report.

This is what faces and ``Pipeline.run`` call (``modelloop runs …``). A run found ``running`` whose runner process is
gone (same machine) is marked ``interrupted`` on sight, like a job whose worker died.
"""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING, Any

from modelloop._faults import pid_alive
from modelloop.common.status import RunStatus, StepStatus
from modelloop.errors import InvalidInput, NotFound, parse_id
from modelloop.pipelines import values
from modelloop.pipelines.context import ContextFactory

if TYPE_CHECKING:
    from modelloop.artifacts import ArtifactStore
    from modelloop.store import MetadataStore

ACTIVE = (RunStatus.PENDING, RunStatus.RUNNING)


def diff_recipes(old: dict, new: dict, step: str) -> list[str]:
    """Why two cache recipes differ, one sentence per difference."""
    reasons = []
    if old.get("engine") != new.get("engine"):
        reasons.append(f"the engine version changed ({old.get('engine')} -> {new.get('engine')})")
    if old.get("function") != new.get("function"):
        reasons.append(f"step {step!r} now runs {new.get('function')} (was {old.get('function')})")
    elif old.get("source") != new.get("source"):
        reasons.append(f"source of step {step!r} changed")
    if old.get("cache_version") != new.get("cache_version"):
        reasons.append(
            f"cache_version changed {old.get('cache_version')!r} -> {new.get('cache_version')!r}"
        )
    op, np_ = old.get("params", {}), new.get("params", {})
    for k in sorted(set(op) | set(np_)):
        if k not in op:
            reasons.append(f"parameter {k!r} is new ({np_[k]!r})")
        elif k not in np_:
            reasons.append(f"parameter {k!r} was removed (was {op[k]!r})")
        elif op[k] != np_[k]:
            reasons.append(f"parameter {k!r} changed {op[k]!r} -> {np_[k]!r}")
    oi, ni = old.get("inputs", {}), new.get("inputs", {})
    for k in sorted(set(oi) | set(ni)):
        a, b = oi.get(k), ni.get(k)
        if a == b:
            continue
        if a is None or b is None:
            reasons.append(f"input {k!r} was {'added' if a is None else 'removed'}")
        elif "dataset" in b:
            name = b["dataset"].partition("@")[0]
            if a.get("dataset") != b["dataset"]:
                reasons.append(
                    f"input dataset {name} changed ({a.get('dataset')} -> {b['dataset']})"
                )
            else:
                reasons.append(f"input dataset {b['dataset']} has different content")
        else:
            reasons.append(
                f"input {k!r} (output of step {b.get('step')!r}) changed "
                f"(sha256 {str(a.get('digest'))[:12]} -> {str(b.get('digest'))[:12]})"
            )
    return reasons or ["the recipes differ in a way not listed (a new field?)"]


class Runs:
    """The pipeline runs of one workspace: its metadata store, its artifact store, and the
    factory of the :class:`~modelloop.pipelines.context.StepContext` its steps may take."""

    def __init__(self, store: MetadataStore, artifacts: ArtifactStore,
                 contexts: ContextFactory | None = None):
        self.store = store
        self.artifacts = artifacts
        self.contexts = contexts

    # -- running ------------------------------------------------------------------------------
    def start(
        self,
        pipeline,
        params: dict | None = None,
        *,
        executor="threads",
        concurrency: int | None = None,
        wait: bool = True,
        wait_timeout: float | None = None,
        started_by: dict | None = None,
        should_stop=None,
    ):
        """Run ``pipeline`` (see :meth:`Pipeline.run <modelloop.pipelines.graph.Pipeline.run>`).
        ``started_by`` is recorded on the run (a trigger's firing: ``{"firing", "trigger",
        "cause"}``; one run per firing). ``should_stop()``, asked between steps, says why the
        run must stop early (or None)."""
        return self._runner(executor, concurrency).start(
            pipeline, params or {}, wait=wait, wait_timeout=wait_timeout, started_by=started_by,
            should_stop=should_stop,
        )

    def resume(
        self,
        run_id: int | str,
        *,
        executor="threads",
        concurrency: int | None = None,
        pipeline=None,
        wait: bool = True,
        wait_timeout: float | None = None,
        should_stop=None,
    ):
        """Continue a failed, interrupted or waiting run; its finished steps are reused."""
        run = self.get(run_id)
        return self._runner(executor, concurrency).resume(
            run["id"], pipeline=pipeline, wait=wait, wait_timeout=wait_timeout,
            should_stop=should_stop,
        )

    def _runner(self, executor, concurrency: int | None):
        from modelloop.common import executors
        from modelloop.pipelines.runner import Runner

        chosen = executors.create(executor, concurrency)
        return Runner(self.store, self.artifacts, chosen, concurrency, contexts=self.contexts)

    # -- reading ------------------------------------------------------------------------------
    def _reap(self, run: dict) -> dict:
        if (
            run["status"] in ACTIVE
            and run["host"] == socket.gethostname()
            and run["pid"]
            and run["pid"] != os.getpid()
            and not pid_alive(run["pid"])
        ):
            self.store.interrupt_pipeline_run(
                run["id"], run["pid"], f"its runner process ({run['pid']}) died"
            )
            return self.store.get_pipeline_run(run["id"])
        return run

    def get(self, run_id: int | str) -> dict:
        run_id = parse_id(run_id, "run", prefix="run-")
        run = self.store.get_pipeline_run(run_id)
        if run is None:
            raise NotFound(f"no pipeline run {run_id}", hint="list runs with 'modelloop runs list'")
        return self._reap(run)

    def started_by_firing(self, firing_id: int) -> dict | None:
        """The run a trigger's firing started, or None."""
        run = self.store.pipeline_run_of_firing(firing_id)
        return self._reap(run) if run else None

    def list(
        self, *, pipeline: str | None = None, status: str | None = None, limit: int | None = 50
    ) -> list[dict]:
        runs = self.store.list_pipeline_runs(pipeline=pipeline, status=status, limit=limit)
        return [self._reap(r) for r in runs]

    def steps(self, run_id: int | str) -> list[dict]:
        return self.store.pipeline_step_runs(self.get(run_id)["id"])

    def step(self, run_id: int | str, name: str) -> dict:
        for s in self.steps(run_id):
            if s["name"] == name:
                return s
        raise NotFound(
            f"run {run_id} has no step {name!r}",
            hint=f"see its steps with 'modelloop runs show {run_id}'",
        )

    def output(self, run_id: int | str, name: str) -> Any:
        s = self.step(run_id, name)
        if not s["outputs"]:
            raise NotFound(f"step {name!r} of run {run_id} has no output (it is {s['status']})")
        return values.fetch(self.artifacts, s["outputs"][0])

    def logs(self, run_id: int | str, name: str) -> str:
        return self.step(run_id, name)["log"] or ""

    # -- why a step hit or missed the cache ---------------------------------------------------
    def explain(self, run_id: int | str, name: str) -> dict:
        """``{"step", "status", "decision", "reasons": [...], "recipe", "compared_with"}``."""
        run = self.get(run_id)
        s = self.step(run["id"], name)
        out = {"step": name, "status": s["status"], "recipe": s["recipe"], "compared_with": None}
        cache = (s["info"] or {}).get("cache")
        if s["kind"] != "step":
            return {
                **out,
                "decision": "not cached",
                "reasons": [f"{s['kind']} steps are never cached"],
            }
        if s["status"] == StepStatus.SKIPPED:
            return {**out, "decision": "skipped", "reasons": [s["info"].get("why", "skipped")]}
        if s["recipe"] is None:
            return {**out, "decision": "undecided", "reasons": ["the step was not reached"]}
        if s["status"] == StepStatus.CACHED:
            src = self.store.get_step_run(s["cached_from"])
            return {
                **out,
                "decision": "hit",
                "compared_with": s["cached_from"],
                "reasons": [
                    f"same recipe (key {s['cache_key'][:12]}) as step run {s['cached_from']} of run "
                    f"{src['run_id'] if src else '?'}; its outputs were reused"
                ],
            }
        if cache == "off":
            return {
                **out,
                "decision": "miss",
                "reasons": ["caching is off for this step (cache=False)"],
            }
        history = self.store.step_run_history(run["pipeline"], name, before_id=s["id"])
        if cache == "expired":
            return {
                **out,
                "decision": "miss",
                "reasons": ["an earlier run with the same recipe is older than cache_expires"],
            }
        if cache == "missing":
            return {
                **out,
                "decision": "miss",
                "reasons": [
                    "an earlier run with the same recipe exists, but its outputs are gone from the "
                    "artifact store"
                ],
            }
        same = [h for h in history if h["cache_key"] == s["cache_key"]]
        if same and same[0]["status"] == StepStatus.SUCCEEDED:
            return {
                **out,
                "decision": "miss",
                "compared_with": same[0]["id"],
                "reasons": [
                    f"step run {same[0]['id']} had the same recipe but finished after this run "
                    "looked up the cache"
                ],
            }
        if not history:
            return {
                **out,
                "decision": "miss",
                "reasons": [
                    f"step {name!r} of pipeline {run['pipeline']!r} never succeeded before"
                ],
            }
        prev = history[0]
        return {
            **out,
            "decision": "miss",
            "compared_with": prev["id"],
            "reasons": diff_recipes(prev["recipe"], s["recipe"], name),
        }

    # -- deciding waiting steps ----------------------------------------------------------------
    def _waiting(self, run_id: int | str, name: str | None, kind: str) -> dict:
        if name is None:  # the run's one waiting step of this kind
            waiting = [s["name"] for s in self.steps(run_id)
                       if s["kind"] == kind and s["status"] == StepStatus.WAITING]
            if len(waiting) != 1:
                raise InvalidInput(
                    f"run {run_id} has {len(waiting) or 'no'} waiting {kind} steps"
                    + (f" ({', '.join(waiting)})" if waiting else ""),
                    hint="name the step" if waiting else f"see 'modelloop runs show {run_id}'",
                )
            name = waiting[0]
        s = self.step(run_id, name)
        if s["kind"] != kind:
            raise InvalidInput(f"step {name!r} of run {run_id} is a {s['kind']} step, not {kind}")
        if s["status"] != StepStatus.WAITING:
            raise InvalidInput(
                f"step {name!r} of run {run_id} is {s['status']}, not waiting",
                hint="only a waiting step can be decided",
            )
        return s

    def approve(
        self,
        run_id: int | str,
        name: str | None = None,
        *,
        by: str | None = None,
        reason: str | None = None,
        approved: bool = True,
    ) -> dict:
        """Record a decision on a waiting approval step (the runner, or a resume, acts on it).
        ``name`` may be left out when the run waits on one approval step; the decision says which
        step it went to (``"step"``)."""
        s = self._waiting(run_id, name, "approval")
        decision = {"approved": approved, "by": by or _user(), "reason": reason}
        self.store.update_step_runs(
            [
                {
                    "id": s["id"],
                    "info": {**s["info"], "decision": decision},
                    "only_if_status": (StepStatus.WAITING,),
                }
            ]
        )
        return {"step": s["name"], **decision}

    def reject(
        self, run_id: int | str, name: str | None = None, *, by: str | None = None,
        reason: str | None = None,
    ) -> dict:
        return self.approve(run_id, name, by=by, reason=reason, approved=False)

    def report(
        self, token: str, *, success: bool, output: Any = None, error: str | None = None
    ) -> dict:
        """An external system reports how the work behind a callback step ended."""
        s = self.store.step_run_by_token(token)
        if s is None or s["kind"] != "callback":
            raise NotFound("no callback step has this token", hint="check the token you were given")
        if s["status"] != StepStatus.WAITING:
            raise InvalidInput(f"callback step {s['name']!r} of run {s['run_id']} is {s['status']}")
        report = {"success": bool(success), "output": output, "error": error}
        self.store.update_step_runs(
            [
                {
                    "id": s["id"],
                    "info": {**s["info"], "report": report},
                    "only_if_status": (StepStatus.WAITING,),
                }
            ]
        )
        return {"run_id": s["run_id"], "step": s["name"], **report}

    def needs_runner(self, run_id: int | str) -> bool:
        """Whether nobody is driving this run any more (so whoever decides should resume it)."""
        run = self.get(run_id)
        return run["status"] in (RunStatus.WAITING, RunStatus.INTERRUPTED, RunStatus.FAILED)


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:
        return "unknown"
