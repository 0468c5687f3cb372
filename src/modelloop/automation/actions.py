"""Actions of triggers: what a firing does, and how a firing found half-done after a crash is
finished instead of done twice.

Each action first looks for what an earlier attempt of the same firing started (the pipeline run
whose ``started_by`` names the firing, a rollout newer than the one recorded at the claim, the
dataset version that ingested the watched file) and continues that; only when there is none
does it start anew. ``on_started(fields)`` records on the firing what was started as soon as it
is known.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from modelloop.common.status import RolloutStatus, RunStatus
from modelloop.errors import InvalidInput, ModelloopError, NotFound

_ACTIVE = (RunStatus.PENDING, RunStatus.RUNNING)
_POLL = 0.25


class ActionFailed(ModelloopError):
    """The action ran and failed (a failed pipeline run, a rolled-back deploy); retried as the
    trigger's retry policy says."""


class Services:
    """What actions use, each built on first use from the builder the workspace gave
    (``datasets``, ``loops``, ``runs``, ``endpoints``, ``alarms``, ``transforms``,
    ``storage_options``): serving's imports are not paid by a trigger that never deploys."""

    def __init__(self, **builders: Callable):
        self._builders = builders

    def __getattr__(self, name: str):
        try:
            build = self.__dict__["_builders"][name]
        except KeyError:
            raise AttributeError(name) from None
        value = build()
        setattr(self, name, value)
        return value


def loop_spec(sv: Services, action: dict):
    """The loop spec a run_loop action runs: the applied loop of that name (``ws.loops`` of
    the apply engine, when it has one), else the spec file the action names."""
    get_spec = getattr(sv.loops, "get_spec", None)
    if get_spec is not None:
        try:
            return get_spec(action["loop"])
        except NotFound:
            if not action.get("spec"):
                raise
    if action.get("spec"):
        return action["spec"]
    raise NotFound(f"no loop named {action['loop']!r}",
                   hint="apply its loop.yaml first ('modelloop loop apply'), or name the spec file")


def run(sv: Services, firing: dict, on_started: Callable[[dict], None],
        should_stop: Callable[[], str | None] | None = None) -> dict:
    """Do ``firing``'s action (its watched file ingested first); returns the result to record.
    Raises on failure (recorded by the caller, and retried). A pipeline or loop run asks
    ``should_stop()`` between its steps (a newer cause replaced this one)."""
    cause, action = firing["cause"], firing["action"]
    if cause.get("on") == "watch" and "version" not in cause:
        cause.update(_ingest(sv, cause))
        on_started({"cause": cause})
    do = action["do"]
    if do == "ingest":  # done above: the version is the result
        return {"ref": cause.get("ref"), "version": cause.get("version")}
    marker = {"firing": firing["id"], "trigger": firing["trigger"], "cause": describe(cause)}
    if do == "run_loop":
        return _run_loop(sv, firing, marker, on_started, should_stop)
    if do == "run_pipeline":
        return _run_pipeline(sv, firing, marker, on_started, should_stop)
    if do == "deploy":
        return _deploy(sv, firing, on_started)
    if do == "rollback":
        rolled = sv.endpoints.rollback(action["endpoint"], reason=_reason(marker))
        return {"rollout_id": rolled["id"], "status": rolled["status"]}
    if do == "transform":
        return _transform(sv, firing, on_started)
    if do == "webhook":
        from modelloop.telemetry.alarms import post_webhook

        detail = post_webhook(action["url"], {**marker, "cause_detail": cause})
        return {"detail": detail}
    raise InvalidInput(f"unknown action {do!r}")


def describe(cause: dict) -> str:
    """One line saying what happened, for history and ``runs show``."""
    on = cause.get("on")
    if on == "cron":
        extra = f", {cause['missed']} missed" if cause.get("missed") else ""
        return f"cron slot {cause.get('slot')}{extra}"
    if on == "new_data":
        return f"new data {cause.get('ref')} (+{cause.get('new_rows')} rows)"
    if on == "watch":
        ref = f" -> {cause['ref']}" if cause.get("ref") else ""
        return f"file {cause.get('file')}{ref}"
    if on == "alarm":
        return f"alarm {cause.get('alarm')} entered ALARM"
    if on == "approval":
        return (f"{cause.get('model')}@{cause.get('alias')} moved to {cause.get('version')}"
                if cause.get("alias") else f"{cause.get('ref')} approved")
    if on == "manual":
        return f"fired by hand ({cause.get('by', 'unknown')})"
    return str(on)


def _reason(marker: dict) -> str:
    return f"trigger {marker['trigger']} (firing {marker['firing']}): {marker['cause']}"


def _ingest(sv: Services, cause: dict) -> dict:
    name, path = cause["dataset"], cause["file"]
    report = sv.datasets.ingest(name, [path])
    if report.version is not None:
        v = report.version.version
        return {"version": v, "ref": f"{name}@{v}", "rows": report.version.row_count}
    # already ingested (an attempt that crashed after the commit): the version that holds it
    latest = sv.datasets.get(name).version
    sources = sv.datasets.store.dataset_sources(name, latest)
    found = [s for s in sources if s["path"] == path or s["path"].endswith("/" + path.rsplit("/", 1)[-1])]
    v = found[-1]["version"] if found else latest
    return {"version": v, "ref": f"{name}@{v}"}


def _wait_run(sv: Services, run_id: int) -> dict:
    while True:
        run = sv.runs.get(run_id)
        if run["status"] not in _ACTIVE:
            return run
        time.sleep(_POLL)


def _continue_run(sv: Services, run: dict, should_stop=None) -> dict:
    """Wait for a run its live runner drives; resume one whose runner died or that failed."""
    if run["status"] in _ACTIVE:
        run = _wait_run(sv, run["id"])
    if run["status"] in (RunStatus.INTERRUPTED, RunStatus.FAILED):
        sv.runs.resume(run["id"], should_stop=should_stop)
        run = sv.runs.get(run["id"])
    return run


def _run_loop(sv: Services, firing: dict, marker: dict, on_started, should_stop) -> dict:
    run = sv.runs.started_by_firing(firing["id"])
    if run is None:
        try:
            result = sv.loops.run(loop_spec(sv, firing["action"]), started_by=marker,
                                  should_stop=should_stop)
        except Exception:
            run = sv.runs.started_by_firing(firing["id"])
            if run is None:
                raise
            on_started({"started": {"run_id": run["id"]}})
            raise
        run_id = result.run_id
    else:
        run_id = _continue_run(sv, run, should_stop)["id"]
    on_started({"started": {"run_id": run_id}})
    result = sv.loops.result(run_id)
    if result.status == RunStatus.FAILED:
        raise ActionFailed(f"loop run {run_id} failed: {result.error}")
    return {"run_id": run_id, "status": result.status, "passed": result.passed,
            "champion": result.champion,
            "promoted": bool(result.promoted)}  # fmt: skip


def _run_pipeline(sv: Services, firing: dict, marker: dict, on_started, should_stop) -> dict:
    from modelloop.common.loading import load_object

    run = sv.runs.started_by_firing(firing["id"])
    if run is None:
        action = firing["action"]
        pipe = load_object(action["pipeline"], what="pipeline")
        try:
            result = sv.runs.start(pipe, action.get("params") or {}, started_by=marker,
                                   should_stop=should_stop)
            run = sv.runs.get(result.run_id)
        except Exception:
            run = sv.runs.started_by_firing(firing["id"])
            if run is None:
                raise
    else:
        run = _continue_run(sv, run, should_stop)
    on_started({"started": {"run_id": run["id"]}})
    if run["status"] == RunStatus.FAILED:
        raise ActionFailed(f"pipeline run {run['id']} failed: {run.get('error')}")
    return {"run_id": run["id"], "status": run["status"]}


def _deploy(sv: Services, firing: dict, on_started) -> dict:
    action, cause = firing["action"], firing["cause"]
    endpoint = action["endpoint"]
    ref = action.get("model") or cause.get("ref")
    if not ref or "@" not in ref:
        raise InvalidInput("a deploy action needs a model version: from an approval cause, or "
                           "its model field")
    ref = "@".join(str(x) for x in sv.endpoints.models.resolve(ref))
    started = firing.get("started") or {}
    after = started.get("rollouts_after")
    if after is None:
        known = sv.endpoints.store.list_rollouts(endpoint=endpoint, limit=1)
        after = known[0]["id"] if known else 0
        on_started({"started": {"rollouts_after": after}})
    earlier = [r for r in sv.endpoints.store.list_rollouts(endpoint=endpoint, limit=50)
               if r["id"] > after and r["model"] == ref]  # fmt: skip
    if earlier:  # an attempt that crashed had started it: follow it to its end
        rollout = sv.endpoints.wait(earlier[-1]["id"])
    else:
        opts = {k: v for k, v in (action.get("options") or {}).items() if k != "wait"}
        rollout = sv.endpoints.deploy(endpoint, ref, strategy=action.get("strategy",
                                      "all-at-once"), wait=True, **opts)  # fmt: skip
    on_started({"started": {"rollouts_after": after, "rollout_id": rollout["id"]}})
    if rollout["status"] != RolloutStatus.COMPLETED:
        raise ActionFailed(f"rollout {rollout['id']} of {ref} on {endpoint} ended "
                           f"{rollout['status']}: {rollout.get('reason')}")
    return {"rollout_id": rollout["id"], "model": ref, "status": rollout["status"]}


def _transform(sv: Services, firing: dict, on_started) -> dict:
    action, cause = firing["action"], firing["cause"]
    data = cause.get("ref") if cause.get("on") in ("new_data", "watch") else None
    source = action.get("input") or (f"dataset:{data}" if data else None)
    if not source:
        raise InvalidInput("a transform action needs its input: a dataset version from a "
                           "new-data or watch cause, or its input field")
    out = sv.transforms.run(action["model"], source, action["output"],
                            **(action.get("options") or {}))
    job = out if isinstance(out, dict) else getattr(out, "to_dict", lambda: {"repr": repr(out)})()
    on_started({"started": {"job_id": job.get("job_id") or job.get("id")}})
    return {"transform": job}
