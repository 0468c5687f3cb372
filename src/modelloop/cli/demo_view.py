"""What the closed-loop demo shows: each stage as modelloop records it (read back from the
workspace: events, monitor runs, pipeline runs and their steps, rollouts), live in a terminal or
one line per change on a pipe, and the per-day summary table at the end.

Every time in the reaction breakdown is a recorded one (an event's time, a run's or step's start
and end, a rollout's end), never a guess.
"""

from __future__ import annotations

from datetime import UTC, datetime

STAGES = ["ingest", "check", "quality", "alarm", "trigger", "train", "evaluate", "promote",
          "rollout", "serving"]


def _ts(value) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def drift_verdict(summary: dict) -> str:
    """``no drift``, or the columns whose distribution moved (the dataset counts as drifted when
    their share reaches the check's ``drift_share``)."""
    drifted = summary.get("drifted_columns") or []
    if not drifted:
        return "no drift"
    return (("dataset drift: " if summary.get("dataset_drift") else "drift: ")
            + ", ".join(drifted))


class Tracker:
    """Polls the workspace for what happened since the last poll. ``state`` holds each stage's
    latest line; ``poll()`` returns the new ``(stage, line, time)`` entries in order."""

    def __init__(self, ws, *, loop: str = "loans", endpoint: str = "loans",
                 drift_monitor: str = "loans-drift", quality_monitor: str = "loans-quality",
                 firings=None):
        self.ws = ws
        self.firings = firings  # () -> the triggers' firings so far, oldest first
        self.loop, self.endpoint = loop, endpoint
        self.drift_monitor, self.quality_monitor = drift_monitor, quality_monitor
        self.state: dict[str, str] = {}
        self.log: list[tuple[str, str, float]] = []
        self.versions: dict[int, dict] = {}  # dataset version -> {"rows", "time"}
        self.checks: dict[str, dict] = {}  # "loans@A..B" -> drift monitor run summary
        self.alarms: list[dict] = []  # alarm.triggered: {"alarm", "time", "event"}
        self.runs: dict[int, dict] = {}  # loop runs: id -> {"created", "steps", "result"}
        self.rollouts: dict[int, dict] = {}
        self.quality: list[tuple[float, float, int]] = []  # (time, roc_auc, labelled rows)
        self._event = 0
        self._monitor_run = 0
        self._step_seen: set[tuple] = set()

    def _say(self, stage: str, line: str, at: float | None = None) -> None:
        self.state[stage] = line
        self.log.append((stage, line, at or datetime.now(UTC).timestamp()))

    def poll(self) -> list[tuple[str, str, float]]:
        before = len(self.log)
        self._events()
        self._monitor_runs()
        self._loop_runs()
        self._rollouts()
        self._triggers()
        return sorted(self.log[before:], key=lambda entry: entry[2])

    def _events(self) -> None:
        for e in self.ws.events(after_id=self._event, limit=1000):
            self._event = e["id"]
            p, t = e["payload"] or {}, _ts(e["time"])
            if e["kind"] == "dataset.version_created" and p.get("dataset") == self.loop:
                v = self.ws.datasets.get(e["subject"])
                self.versions[v.version] = {"rows": v.added_rows, "time": t,
                                            "quarantined": v.quarantined_rows}
                self._say("ingest", f"{v.ref}: +{v.added_rows:,} rows", t)
            elif e["kind"] == "alarm.triggered":
                self.alarms.append({"alarm": p.get("alarm"), "time": t, "event": e["id"]})
                self._say("alarm", f"{p.get('alarm')} → ALARM ({p.get('reason')})", t)
            elif e["kind"] == "model.alias_moved" and p.get("model") == self.loop:
                self._say("promote", f"{e['subject']} → {self.loop}@{p.get('version')}", t)

    def _monitor_runs(self) -> None:
        runs = [r for r in self.ws.monitoring.runs(limit=20) if r["id"] > self._monitor_run]
        for r in sorted(runs, key=lambda r: r["id"]):
            self._monitor_run = r["id"]
            s, t = r.get("summary") or {}, _ts(r.get("ended_at") or r.get("created_at"))
            if r["monitor"] == self.drift_monitor:
                data = r.get("data") or r.get("dataset_ref") or ""
                self.checks[str(data)] = {**s, "time": t, "run": r["id"]}
                verdict = drift_verdict(s) if s else str(r["status"])
                self._say("check", f"{self.drift_monitor} on {data}: {verdict}", t)
            elif r["monitor"] == self.quality_monitor:
                q = (s.get("quality") or {}) if isinstance(s.get("quality"), dict) else {}
                value = q.get("roc_auc")
                if value is None:
                    report_q = self._quality_of(r)
                    value = report_q
                n = int(s.get("n_labelled") or 0)
                if value is not None:
                    self.quality.append((t, float(value), n))
                    self.state["quality"] = (f"{self.quality_monitor}: live AUC {value:.3f} on "
                                             f"{n:,} labelled answers")

    def _quality_of(self, run: dict) -> float | None:
        from modelloop.errors import ModelloopError

        try:
            points = self.ws.monitoring.metric("quality.roc_auc",
                                               {"monitor": self.quality_monitor})
        except ModelloopError:
            return None
        end = _ts(run.get("window_end"))
        for p in reversed(points):
            if end is None or abs(_ts(p["time"]) - end) < 1e-3:
                return float(p["value"])
        return None

    def _loop_runs(self) -> None:
        for run in self.ws.runs.list(pipeline=f"loop-{self.loop}", limit=10):
            rid = run["id"]
            rec = self.runs.get(rid)
            if rec is None:
                rec = self.runs[rid] = {"created": _ts(run["created_at"]), "steps": {},
                                        "result": None}
                self._say("trigger", f"run {rid} of loop {self.loop} started", rec["created"])
            for s in self.ws.runs.steps(rid):
                rec["steps"][s["name"]] = s
                key = (rid, s["name"], str(s["status"]))
                if key in self._step_seen:
                    continue
                self._step_seen.add(key)
                if s["name"] == "train" and str(s["status"]) == "running":
                    self._say("train", f"run {rid}: training on the newest day",
                              _ts(s.get("started_at")))
                elif s["name"] == "train" and str(s["status"]) == "succeeded":
                    self._say("train", f"run {rid}: trained", _ts(s.get("ended_at")))
                elif s["name"] == "evaluate" and str(s["status"]) == "succeeded":
                    ev = self.ws.runs.output(rid, "evaluate") or {}
                    rec["evaluation"] = ev
                    champ = ev.get("champion")
                    self._say("evaluate", (
                        f"run {rid}: candidate AUC {ev.get('candidate', 0):.4f} vs champion "
                        + ("-" if champ is None else f"{champ:.4f}")
                        + (" → gate passed" if ev.get("passed") else " → gate failed")),
                        _ts(s.get("ended_at")))
            if str(run["status"]) in ("succeeded", "failed") and rec["result"] is None:
                rec["result"] = self.ws.loops.result(rid)
                rec["ended"] = _ts(run.get("ended_at"))

    def _triggers(self) -> None:
        """A line per firing and per change of its status (pending, running, succeeded, skipped
        with why...)."""
        if self.firings is None:
            return
        from modelloop.automation.actions import describe

        for f in reversed(self.firings()):
            key = (f["id"], str(f["status"]))
            if key in self._step_seen:
                continue
            self._step_seen.add(key)
            why = f": {f['error']}" if f.get("error") else ""
            started = (f.get("started") or {}).get("run_id")
            run = f" → run {started}" if started else ""
            at = _ts(f.get("ended_at") or f.get("started_at") or f.get("created_at"))
            self._say("trigger", f"{f['trigger']} ({describe(f['cause'])}): {f['status']}"
                      f"{run}{why}", at)

    def _rollouts(self) -> None:
        from modelloop.errors import NotFound

        try:
            described = self.ws.endpoints.describe(self.endpoint)
        except NotFound:
            return
        for r in described.get("rollouts") or []:
            state = r.get("state") or {}
            steps, step = state.get("steps") or [], state.get("step", 0)
            key = (str(r["status"]), step)
            rec = self.rollouts.setdefault(r["id"], {"seen": set()})
            rec.update(rollout=r, created=_ts(r["created_at"]), ended=_ts(r.get("ended_at")))
            if key in rec["seen"]:
                continue
            rec["seen"].add(key)
            if r["strategy"] == "all-at-once" or str(r["status"]) != "in_progress":
                if r.get("ended_at") is not None:
                    self._say("rollout", f"{r['strategy']} of {r['model']}: {r['status']}"
                              + (f" ({r['reason']})" if r.get("reason") else ""), rec["ended"])
                    if str(r["status"]) in ("completed", "succeeded"):
                        self._say("serving", f"{r['model']} serves 100% of {self.endpoint}",
                                  rec["ended"])
            elif steps and step < len(steps):
                pct = steps[step][0]
                self._say("rollout", f"{r['strategy']} of {r['model']}: {pct:g}% of traffic",
                          _ts(r.get("updated_at")))
