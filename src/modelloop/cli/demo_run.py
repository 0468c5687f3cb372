"""One play of the closed-loop demo: the workspace, the endpoint server and the controller in
the background, the days, the live view and the summary (see ``cli/demo.py``)."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from modelloop.cli import render
from modelloop.cli.demo_story import Day, Traffic, day_frame, demo_spec, land_file
from modelloop.cli.demo_view import STAGES, Tracker

ENDPOINT = "loans"
#: How long the drift day may wait for the new champion before the demo gives up on it.
REACTION_TIMEOUT = 150.0
#: Distinct applicants a day's requests cycle through.
REQUEST_ROWS = 600
#: The controller's tick (``modelloop up --interval``): how soon it notices a file or an event.
CONTROLLER_INTERVAL = 0.25
#: Statuses of a firing that has ended.
FINISHED = ("succeeded", "failed", "skipped", "cancelled")


class DemoRun:
    def __init__(self, root: Path, *, days: int, rows: int, drift_day: int, day_seconds: float,
                 rate: float, quiet: bool = False, seed: int = 42):
        self.root = Path(root)
        self.days, self.rows, self.drift_day = days, rows, drift_day
        self.day_seconds, self.rate, self.quiet, self.seed = day_seconds, rate, quiet, seed
        self.started = time.time()
        self.days_played: list[Day] = []
        self._live = None

    # -- output -------------------------------------------------------------------------------
    def _line(self, stage: str, text: str, at: float | None = None) -> None:
        if self.quiet:
            return
        t = (at or time.time()) - self.started
        line = f"[{t:5.1f}s] {stage:<8} {text}"
        if self._live is not None:
            self._live.console.print(line)
        else:
            render.err.print(line, markup=False)

    def _panel(self):
        from rich.table import Table

        table = Table(title="modelloop demo: the loop closes itself", show_header=False,
                      expand=False)
        table.add_column("stage", style="bold")
        table.add_column("latest")
        day = self.days_played[-1] if self.days_played else None
        if day is not None:
            table.add_row("day", f"{day.number} of {self.days}"
                          + (" (drifted)" if day.drifted else ""))
            served = sum(d.requests for d in self.days_played)
            failed = sum(d.failures for d in self.days_played)
            table.add_row("requests", f"{served:,} served, {failed} failed")
        for stage in STAGES:
            table.add_row(stage, self.tracker.state.get(stage, "[dim]waiting[/dim]"))
        return table

    def _refresh(self) -> None:
        for stage, text, at in self.tracker.poll():
            self._line(stage, text, at)
        if self._live is not None:
            self._live.update(self._panel())

    def _wait(self, seconds: float, until=None) -> None:
        deadline = time.time() + seconds
        while time.time() < deadline:
            self._refresh()
            if until is not None and until():
                return
            time.sleep(0.25)

    # -- the play -------------------------------------------------------------------------------
    def play(self) -> dict:
        from modelloop.cli.demo import free_port, start_up, stop_up
        from modelloop.workspace import Workspace

        self._frames = self._prefetch()  # River's import and the days' rows, in the background
        ws = Workspace.init(self.root)
        ws.jobs.warm_up()  # the job server imports while the demo sets up
        self.ws = ws
        spec_path = self.root / "loop.yaml"
        spec_path.write_text(demo_spec())
        (self.root / "incoming").mkdir()
        self.tracker = Tracker(ws, loop="loans", endpoint=ENDPOINT,
                               firings=lambda: ws.triggers.history(limit=100))
        self._line("setup", f"workspace {self.root}; {self.days} days of {self.rows:,} "
                   f"applications, drift on day {self.drift_day}")
        self._apply(ws, spec_path)
        port = free_port()
        up = start_up(self.root, port, self.root / "up.log", interval=CONTROLLER_INTERVAL)
        self._line("setup", f"modelloop up: the controller, the endpoint server on "
                   f"127.0.0.1:{port} and the job workers (log: up.log)")
        # feedback routes need an operator's token (the endpoint's default auth): the demo's own
        labels = ws.tokens.create("demo-labels", role="operator", expires="1d")["token"]
        traffic = Traffic("127.0.0.1", port, ENDPOINT, rate=self.rate, token=labels)
        from rich.live import Live

        live = render.err.is_terminal and not self.quiet
        try:
            view = Live(console=render.err, refresh_per_second=4, transient=True) if live \
                else contextlib.nullcontext()
            with view as handle:
                self._live = handle if live else None
                self._bootstrap(ws, spec_path, traffic)
                for number in range(2, self.days + 1):
                    self._day(number, traffic)
                self._refresh()
        finally:
            self._live = None
            traffic.stop()
            stop_up(up)
        self._refresh()
        from modelloop.cli.demo_summary import summarize

        return summarize(self)

    def _land(self, number: int, traffic: Traffic | None) -> Day:
        drifted = number >= self.drift_day
        day = Day(number, drifted)
        frame = self._frames[(number, "file")].result()
        day.file = land_file(self.root / "incoming", number, frame)
        day.landed = time.time()
        self.days_played.append(day)
        self._line("day", f"day {number}: {day.file.name} landed in incoming/ "
                   f"({self.rows:,} applications" + (", drifted)" if drifted else ")"))
        if traffic is not None:
            traffic.set_day(day, self._frames[(number, "requests")].result())
        return day

    def _prefetch(self) -> dict:
        """Each day's file and the applicants its requests carry (other rows of the same day),
        computed by one background thread in the order the days need them."""
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(1, thread_name_prefix="demo-days")
        frames = {}
        for number in range(1, self.days + 1):
            frames[(number, "file")] = pool.submit(
                day_frame, number, self.rows, drift_day=self.drift_day, seed=self.seed)
            frames[(number, "requests")] = pool.submit(
                day_frame, number, REQUEST_ROWS, drift_day=self.drift_day, seed=self.seed + 1000)
        pool.shutdown(wait=False)
        return frames

    def _apply(self, ws, spec_path: Path) -> None:
        """``loop apply loop.yaml``, one line per change (what waits for data or a champion
        too)."""
        for c in ws.loops.apply(spec_path):
            if c["action"] != "unchanged":
                detail = f": {'; '.join(c['diff'])}" if c.get("diff") else ""
                self._line("apply", f"{c['action']} {c['kind']} {c['name']}{detail}")

    def _bootstrap(self, ws, spec_path, traffic) -> None:
        """Day 1: the watch trigger ingests its file; the demo presses ``retrain-now`` once (no
        alarm can ask for a first champion: nothing is served yet); apply again makes what
        waited for a champion (the endpoint's capture, the monitors); then the requests start."""
        self._land(1, None)
        self._wait(60, until=lambda: 1 in self.tracker.versions)
        self._apply(ws, spec_path)
        fired = ws.triggers.fire("retrain-now", {"by": "the demo: the first champion"})

        def firing():
            return ws.triggers.firing(fired["id"])

        self._wait(REACTION_TIMEOUT, until=lambda: (f := firing())["error"] is not None
                   or str(f["status"]) in FINISHED)
        done = firing()
        run_id = (done.get("started") or {}).get("run_id")
        result = ws.loops.result(run_id) if run_id else None
        if str(done["status"]) != "succeeded" or result is None or result.champion is None:
            from modelloop.errors import ModelloopError

            why = done.get("error") or (result and (result.error or result.status)) or "no run"
            raise ModelloopError(
                f"the first run of the loop did not make a champion: {why}",
                hint=f"see 'modelloop -w {self.root} trigger history' and {self.root}/up.log")
        self._refresh()
        self._apply(ws, spec_path)
        traffic.set_day(self.days_played[0], self._frames[(1, "requests")].result())
        traffic.wait_ready()
        traffic.start()
        self._line("traffic", f"{self.rate:g} requests/s to endpoint {ENDPOINT} (capture on); "
                   f"ground truth posted {traffic.label_delay:g} s after each answer")
        self._wait(self.day_seconds)

    def _day(self, number: int, traffic: Traffic) -> None:
        day = self._land(number, traffic)
        if number != self.drift_day:
            self._wait(self.day_seconds)
            return
        # the drift day lasts until a new champion serves all traffic, then a little more
        self._wait(REACTION_TIMEOUT, until=lambda: self._new_champion_serving(day))
        self._wait(min(self.day_seconds, 3.0))

    def _new_champion_serving(self, day: Day) -> bool:
        for r in self.tracker.rollouts.values():
            ended = r.get("ended")
            if ended and ended >= day.landed and str(r["rollout"]["status"]) == "completed":
                return True
        return False


