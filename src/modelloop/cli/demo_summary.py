"""The closed-loop demo's summary: one row per day, and the reaction to the drift broken down by
stage, every time taken from what modelloop recorded (see ``demo_view.Tracker``)."""

from __future__ import annotations

from modelloop.cli.demo_story import auc
from modelloop.cli.demo_view import _ts, drift_verdict


def summarize(play) -> dict:
    t = play.tracker
    days = play.days_played
    out_days = []
    for i, day in enumerate(days):
        start = day.landed
        end = days[i + 1].landed if i + 1 < len(days) else float("inf")
        versions = [v for v, rec in t.versions.items() if start <= rec["time"] < end]
        rows = sum(t.versions[v]["rows"] for v in versions) if versions else None
        drift, drifted = None, []
        for v in versions:
            check = _check_of(t, v)
            if check:
                drift = drift_verdict(check)
                drifted = list(check.get("drifted_columns") or [])
        alarms = [a["alarm"] for a in t.alarms if start <= a["time"] < end]
        runs = [r for r in t.runs.values() if start <= (r["created"] or 0) < end]
        evaluation = next((r.get("evaluation") for r in runs if r.get("evaluation")), None)
        promoted = next((r["result"].promoted["ref"] for r in runs
                         if r.get("result") is not None and r["result"].promoted), None)
        first_variant = day.scored[0][0] if day.scored else None
        live = {v: auc(day.scored, v) for v in sorted({s[0] for s in day.scored})}
        out_days.append({
            "day": day.number,
            "file": day.file.name if day.file else None,
            "drifted": day.drifted,
            "rows": rows,
            "drift": drift,
            "drifted_columns": drifted,
            "alarms": alarms,
            # the champion of the day's start, on the day's answered and labelled requests
            "champion_auc": auc(day.scored, first_variant) if first_variant else None,
            # the candidate of a run the day started, on the freshest holdout rows (the gate's)
            "candidate_auc": (evaluation or {}).get("candidate"),
            "holdout_champion_auc": (evaluation or {}).get("champion"),
            "live_auc_by_variant": live,
            "runs": sorted(r for r, rec in t.runs.items() if rec in runs),
            "promoted": promoted,
            "requests": day.requests,
            "failures": day.failures,
            "errors": day.errors,
            "reaction_seconds": None,
        })
    reaction = reaction_breakdown(play)
    if reaction:
        for d in out_days:
            if d["day"] == play.drift_day:
                d["reaction_seconds"] = reaction["total"]
    champion = play.ws.models.alias_version("loans", "champion")
    return {
        "workspace": str(play.root),
        "drift_day": play.drift_day,
        "days": out_days,
        "reaction": reaction,
        "requests": sum(d.requests for d in days),
        "failures": sum(d.failures for d in days),
        "champion": f"loans@{champion}" if champion else None,
        "rollouts": [{"id": rid, "model": r["rollout"]["model"],
                      "strategy": r["rollout"]["strategy"], "status": str(r["rollout"]["status"]),
                      "steps": (r["rollout"].get("state") or {}).get("steps"),
                      "reason": r["rollout"].get("reason"),
                      "seconds": None if r.get("ended") is None else round(
                          r["ended"] - r["created"], 3)}
                     for rid, r in sorted(t.rollouts.items())],
        "firings": [{"trigger": f["trigger"], "cause": f["cause"], "status": f["status"],
                     "started": f.get("started"), "error": f.get("error")}
                    for f in reversed(play.ws.triggers.history(limit=100))],
    }


def _check_of(t, version: int) -> dict | None:
    for data, check in t.checks.items():
        if data.endswith(f"..{version}") or data.endswith(f"@{version}"):
            return check
    return None


def reaction_breakdown(play) -> dict | None:
    """From the drifted file landing to the new champion serving 100%, by stage: ``ingest``
    (landing → the version recorded), ``check`` (→ the drift monitor's run ended), ``alarm``
    (→ an alarm entered ALARM), ``trigger`` (→ the loop's run created), ``train`` (→ the train
    step ended: the run's ingest, champion and validate steps included), ``evaluate`` (→ the
    evaluate step ended), ``rollout`` (→ register, promote and the canary until 100%)."""
    t = play.tracker
    day = next((d for d in play.days_played if d.number == play.drift_day), None)
    if day is None:
        return None
    landed = day.landed
    version = next((v for v, rec in sorted(t.versions.items()) if rec["time"] >= landed), None)
    v_time = t.versions[version]["time"] if version else None
    check = _check_of(t, version) if version else None
    alarm = next((a for a in t.alarms if a["time"] >= landed), None)
    run = next((r for rid, r in sorted(t.runs.items())
                if alarm and (r["created"] or 0) >= alarm["time"] - 1.0), None)
    rollout = next((r for _, r in sorted(t.rollouts.items())
                    if r.get("ended") and r["ended"] >= landed
                    and str(r["rollout"]["status"]) == "completed"), None)
    if rollout is None:
        return None
    steps = (run or {}).get("steps", {})

    def ended(name):
        s = steps.get(name)
        return _ts(s.get("ended_at")) if s else None

    marks = [("ingest", v_time), ("check", check and check.get("time")),
             ("alarm", alarm and alarm["time"]), ("trigger", run and run["created"]),
             ("train", ended("train")), ("evaluate", ended("evaluate")),
             ("rollout", rollout["ended"])]
    stages, last = {}, landed
    for name, at in marks:
        if at is None:
            stages[name] = None
            continue
        stages[name] = round(max(0.0, at - last), 3)
        last = at
    return {"total": round(rollout["ended"] - landed, 3), "stages": stages,
            "alarm": alarm and alarm["alarm"], "run": run and next(
                (rid for rid, r in t.runs.items() if r is run), None),
            "rollout": rollout["rollout"]["id"], "landed": landed}
