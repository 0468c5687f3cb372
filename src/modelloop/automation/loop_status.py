"""``modelloop loop status NAME``: an applied loop and everything it declared, as they are now."""

from __future__ import annotations

from modelloop.automation import loop_triggers
from modelloop.automation.loop_parts import Loop, champion_of
from modelloop.errors import NotFound
from modelloop.pipelines.loop_monitors import watches

RUNS_SHOWN = 5


def gather(loops, row: dict, *, endpoints, triggers) -> dict:
    """The status record (JSON values); ``loops`` is the :class:`~.apply.DeclaredLoops`."""
    from modelloop.pipelines import loop_spec

    name = row["name"]
    parsed = loop_spec.parse(row["spec"], loop_spec.SpecSource(f"loop {name}"))
    champion, trained_on = champion_of(loops.models, parsed)
    loop = Loop(name, parsed, row["spec"], champion, trained_on, row["base_dir"])
    return {
        "name": name,
        "applied_at": row["applied_at"].isoformat(),
        "hash": row["hash"],
        "model": parsed.model_name,
        "champion": champion,
        "trained_on": trained_on,
        "endpoint": _endpoint(loop, endpoints),
        "monitors": [_monitor(loop, m, loops.monitoring) for m in parsed.monitors],
        "alarms": [_alarm(loop, m, loops.monitoring.alarms) for m in parsed.monitors if m.alarm],
        "triggers": _triggers(loop, triggers),
        "runs": _runs(loops.runs, name),
    }


def _endpoint(loop: Loop, endpoints) -> dict | None:
    deploy = loop.parsed.deploy
    if deploy is None:
        return None
    out: dict = {"name": deploy.endpoint, "strategy": deploy.strategy}
    if endpoints is None:
        return {**out, "waiting": "serving is not installed"}
    try:
        record = endpoints.get(deploy.endpoint)
    except NotFound:
        why = ("no champion yet: the loop's first run creates it" if loop.champion is None
               else "not created yet: run 'modelloop loop apply' again")
        return {**out, "waiting": why}
    variants = record["spec"]["variants"]
    total = sum(v["weight"] for v in variants if v.get("role") != "shadow") or 1.0
    out["status"] = record["status"]
    out["variants"] = [{"name": v["name"], "model": v["model"], "role": v.get("role"),
                        "weight": v["weight"],
                        "traffic": (0.0 if v.get("role") == "shadow"
                                    else round(100.0 * v["weight"] / total, 1))}
                       for v in variants]
    out["capture"] = bool(record["spec"].get("capture", {}).get("enabled"))
    rollouts = endpoints.rollouts(deploy.endpoint)[:1]
    if rollouts:
        r = rollouts[0]
        out["last_rollout"] = {"id": r["id"], "model": r["model"], "strategy": r["strategy"],
                               "status": r["status"], "reason": r.get("reason")}
    return out


def _monitor(loop: Loop, m, monitoring) -> dict:
    name = loop.monitor_name(m)
    out: dict = {"name": name, "kind": m.kind, "watches": watches(m)}
    try:
        record = monitoring.monitor(name)
    except NotFound:
        return {**out, "waiting": "not created yet (needs data or a champion)"}
    out["baseline"] = record["baseline"]
    runs = monitoring.runs(name, limit=1)
    if not runs:
        return {**out, "last_run": None}
    r = runs[0]
    summary = r.get("summary") or {}
    out["last_run"] = {
        "id": r["id"], "status": r["status"], "at": r["created_at"].isoformat(),
        "data": r.get("data"), "rows": r.get("n_rows"), "violations": r.get("n_violations"),
        "drift": summary.get("dataset_drift"),
        "drifted_columns": summary.get("drifted_columns") or [],
        "labelled": summary.get("n_labelled"),
    }
    if m.kind == "model_quality":
        out["last_run"]["quality"] = _quality(loop, m, monitoring, r["created_at"])
    return out


def _quality(loop: Loop, m, monitoring, at) -> dict | None:
    """The model-quality metric the monitor's last run wrote (``{"metric", "value"}``), if it
    had enough labels to write one."""
    from datetime import timedelta

    from modelloop.automation.loop_parts import alarm_fields

    metric = (m.alarm and alarm_fields(loop, m)["metric"]) or \
        f"quality.{loop.parsed.evaluate.metric or 'accuracy'}"
    points = monitoring.metric(metric, {"monitor": loop.monitor_name(m)},
                               since=at - timedelta(minutes=5))
    return {"metric": metric, "value": points[-1]["value"]} if points else None


def _alarm(loop: Loop, m, alarms) -> dict:
    name = loop.alarm_name(m)
    try:
        a = alarms.get(name)
    except NotFound:
        return {"name": name, "state": None, "reason": "not created yet"}
    changed = a.get("state_updated_at")
    return {"name": name, "state": a["state"], "reason": a.get("state_reason"),
            "since": changed.isoformat() if changed else None}


def _triggers(loop: Loop, triggers) -> list[dict]:
    wanted = loop_triggers.requests(loop)
    if triggers is None:
        return [{"name": n, "cause": r["cause"], "action": r["action"],
                 "waiting": "triggers are not available"} for n, r in wanted.items()]
    found = {t["name"]: t for t in triggers.list(owner=loop.owner)}
    try:
        upcoming = triggers.next_firings()
    except Exception:  # noqa: BLE001 - a status view shows what it can
        upcoming = {}
    out = []
    for name in [*wanted, *[n for n in found if n not in wanted]]:
        t = found.get(name)
        if t is None:
            out.append({"name": name, "cause": wanted[name]["cause"],
                        "action": wanted[name]["action"], "waiting": "not created yet"})
            continue
        nxt = upcoming.get(name)
        last = triggers.history(name, limit=1)
        out.append({"name": name, "cause": t.get("cause"), "action": t.get("action"),
                    "paused": bool(t.get("paused")),
                    "next_firing": nxt.isoformat() if hasattr(nxt, "isoformat") else nxt,
                    "last_firing": {"id": last[0]["id"], "status": last[0]["status"],
                                    "at": last[0]["created_at"].isoformat(),
                                    "error": last[0].get("error")} if last else None})
    return out


def _runs(runs, name: str) -> list[dict]:
    out = []
    for r in runs.list(pipeline=f"loop-{name}", limit=RUNS_SHOWN):
        started = r.get("started_by") or (r.get("params") or {}).get("started_by")
        out.append({"id": r["id"], "status": r["status"],
                    "created_at": r["created_at"].isoformat(),
                    "ended_at": r["ended_at"].isoformat() if r.get("ended_at") else None,
                    "started_by": started})
    return out
