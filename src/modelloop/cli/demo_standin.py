"""A stand-in for ``loop apply`` and the controller, used by the demo only while those are not in
the workspace: it makes the spec's monitors and alarms with the services that exist, and a thread
does what the controller will (ingest each settled file of the watched folder once, tick the
monitoring scheduler, run the loop when an alarm of an alarm trigger enters ALARM, one run at a
time). It goes away when the demo switches to the real parts.
"""

from __future__ import annotations

import fnmatch
import threading
import time
from pathlib import Path

#: The loop spec's sections the loop runner takes today (monitors, triggers and the extended
#: deploy section are for ``loop apply``).
RUN_SECTIONS = ("name", "data", "target", "split", "quality", "train", "tune", "evaluate",
                "register")
DEPLOY_OPTIONS = ("endpoint", "strategy", "options")


def runnable(spec: dict) -> dict:
    """The part of the demo's spec ``ws.loops.run`` validates today."""
    out = {k: v for k, v in spec.items() if k in RUN_SECTIONS}
    if spec.get("deploy"):
        out["deploy"] = {k: v for k, v in spec["deploy"].items() if k in DEPLOY_OPTIONS}
    return out


def apply_monitors(ws, spec: dict) -> list[str]:
    """Create the spec's monitors and their alarms (what ``loop apply`` will do)."""
    made = []
    for m in spec.get("monitors", []):
        kwargs = {k: m[k] for k in ("dataset", "endpoint", "schedule", "after_ingest", "window",
                                    "model") if m.get(k) is not None}
        ws.monitoring.ensure_baseline(m["baseline"], target=spec["target"])
        ws.monitoring.create_monitor(m["name"], baseline=m["baseline"], **kwargs)
        made.append(f"monitor {m['name']}")
        if m.get("alarm"):
            a = dict(m["alarm"])
            ws.alarms.create(m["name"], a.pop("metric"), threshold=a.pop("threshold"),
                             dimensions={"monitor": m["name"]}, **a)
            made.append(f"alarm {m['name']}")
    return made


class StandInController:
    """One thread doing the controller's part of the demo's loop (see the module's docstring).

    ``firings`` records what each trigger started: ``{"trigger", "cause", "run", "time"}``."""

    def __init__(self, root: Path, spec: dict, *, interval: float = 0.2):
        self.root = Path(root)
        self.spec = spec
        self.interval = interval
        self.firings: list[dict] = []
        self.errors: list[str] = []
        self._seen: set[str] = set()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._running: threading.Thread | None = None
        self._last_event = 0

    def start(self) -> None:
        from modelloop.workspace import Workspace

        ws = Workspace(self.root)
        events = ws.events(kind="alarm.triggered", limit=1_000_000)
        self._last_event = events[-1]["id"] if events else 0
        t = threading.Thread(target=self._loop, args=(ws,), name="demo-standin", daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=120)
        if self._running:
            self._running.join(timeout=120)

    def busy(self) -> bool:
        return self._running is not None and self._running.is_alive()

    def _loop(self, ws) -> None:
        while not self._stop.is_set():
            try:
                self._tick(ws)
            except Exception as exc:  # the stand-in keeps going, as the controller does
                self.errors.append(f"{type(exc).__name__}: {exc}")
            self._stop.wait(self.interval)
        ws.close()

    def _tick(self, ws) -> None:
        for t in self.spec.get("triggers", []):
            if t.get("on") == "watch":
                self._watch(ws, t)
        ws.monitoring.tick()
        alarms = {t["alarm"]: t for t in self.spec.get("triggers", []) if t.get("on") == "alarm"}
        for e in ws.events(after_id=self._last_event, kind="alarm.triggered"):
            self._last_event = e["id"]
            trigger = alarms.get(e["payload"].get("alarm"))
            if trigger is None:
                continue
            firing = {"trigger": trigger["name"], "cause": f"event:{e['id']}",
                      "time": time.time(), "run": None}
            if self.busy():
                firing["status"] = "skipped"
                firing["why"] = "a run of the loop is in progress (concurrency: skip)"
            else:
                firing["status"] = "started"
                self._running = threading.Thread(target=self._run_loop, args=(firing,),
                                                 name="demo-standin-run", daemon=True)
                self._running.start()
            self.firings.append(firing)

    def _watch(self, ws, trigger: dict) -> None:
        folder = self.root / trigger["location"]
        if not folder.is_dir():
            return
        settle = float(trigger.get("settle_seconds", 1.0))
        for f in sorted(folder.iterdir()):
            if not f.is_file() or not fnmatch.fnmatch(f.name, trigger.get("pattern", "*")):
                continue
            st = f.stat()
            key = f"{f}:{st.st_size}:{st.st_mtime_ns}"
            if key in self._seen or time.time() - st.st_mtime < settle:
                continue
            self._seen.add(key)
            ws.datasets.ingest(trigger["dataset"], [f],
                               event_time_column=self.spec["data"].get("event_time_column"))

    def _run_loop(self, firing: dict) -> None:
        from modelloop.workspace import Workspace

        try:
            with Workspace(self.root) as ws:
                result = ws.loops.run(runnable(self.spec))
                firing["run"] = result.run_id
        except Exception as exc:
            firing["status"] = "failed"
            self.errors.append(f"{type(exc).__name__}: {exc}")
