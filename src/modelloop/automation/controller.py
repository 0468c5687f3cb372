"""The controller: one process (of possibly several, one leading) that keeps the loop turning.

Each tick, when it leads (:mod:`modelloop.automation.leader`):

1. events: deliveries of the stream's consumer group ``controller`` (its own unacknowledged
   ones first, then new events; and those a dead controller held, after ``claim_idle`` s) go to
   ``triggers.on_event``; each is acknowledged after it was handled, so a controller killed in
   between gets it again (handling is idempotent: a firing is unique per cause);
2. ``triggers.due(now)``: cron slots and watched folders;
3. monitoring's scheduler pass: due monitors, then every alarm;
4. ``triggers.run_pending(now)``: start or advance the firings' actions.

Before each phase (and each event) it checks that it still leads; a controller that lost its
lease stops the tick there. A phase that fails is recorded on the tick and the next phase runs:
nothing a user configured can crash the controller. A standby does nothing but try to take the
lease (the heartbeat does). Between ticks a leader waits for the next event rather than for
the clock, so an event is handled as soon as it is appended.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from modelloop._faults import checkpoint

GROUP = "controller"
#: Deliveries of one event are given up (acknowledged, recorded as an error) after this many.
MAX_ATTEMPTS = 5


@dataclass
class Tick:
    """What one tick did, for the progress line and ``--json``."""

    number: int
    time: datetime
    leading: bool
    term: int | None = None
    events: int = 0
    firings: list[dict] = field(default_factory=list)  # recorded by on_event and due
    actions: list[dict] = field(default_factory=list)  # what run_pending started or advanced
    monitor_runs: list[dict] = field(default_factory=list)
    alarms: list[dict] = field(default_factory=list)  # alarms whose state changed
    errors: list[str] = field(default_factory=list)
    lost_lead: bool = False
    seconds: float = 0.0

    @property
    def busy(self) -> bool:
        return bool(self.events or self.firings or self.actions or self.monitor_runs
                    or self.alarms or self.errors or self.lost_lead)  # fmt: skip

    def as_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self)


class _LostLead(Exception):
    pass


class Controller:
    """What ``modelloop controller`` runs. Built by the workspace (``ws.controller()``), which
    hands it the services: ``monitoring`` (its ``tick``), ``triggers`` (``on_event``, ``due``,
    ``run_pending``) and ``stream`` (an :class:`~modelloop.events.stream.EventStream`); either of
    the last two may be None (nothing to fire, no events to read)."""

    def __init__(self, *, leader, monitoring, triggers=None, stream=None, jobs=None,
                 batch: int = 100, claim_idle: float | None = None,
                 clock: Callable[[], datetime] | None = None):  # fmt: skip
        self.leader = leader
        self.monitoring = monitoring
        self.triggers = triggers
        self.stream = stream
        self.jobs = jobs
        self.batch = batch
        # A delivery unacknowledged this long belongs to a controller that stopped leading (a
        # leader acks within its tick, and leads at most a lease's length after its last renewal).
        self.claim_idle = leader.ttl if claim_idle is None else claim_idle
        self.clock = clock or (lambda: datetime.now(UTC))
        self.ticks = 0
        self._consumer = None
        self._early: list = []  # deliveries read while waiting between ticks
        self._warmed = False
        self._trigger_errors: dict = {}

    # -- one tick ------------------------------------------------------------------------------
    def tick(self) -> Tick:
        started = time.monotonic()
        self.ticks += 1
        if not self.leader.beating:  # a tick called on its own (a script, a test): lead first
            self.leader.try_lead()
        tick = Tick(self.ticks, self.clock(), self.leader.leading, self.leader.term)
        if tick.leading:
            self._warm_up()
            try:
                self._phase(tick, "events", self._events)
                self._phase(tick, "triggers.due", self._due)
                self._phase(tick, "monitors", self._monitors)
                self._phase(tick, "triggers.run_pending", self._run_pending)
            except _LostLead:
                tick.lost_lead = True
        tick.seconds = time.monotonic() - started
        return tick

    def _phase(self, tick: Tick, name: str, body: Callable[[Tick], Any]) -> None:
        self._check_lead()
        try:
            body(tick)
        except _LostLead:
            raise
        except Exception as exc:  # noqa: BLE001 - recorded; the next phase and tick go on
            tick.errors.append(f"{name}: {type(exc).__name__}: {exc}")

    def _check_lead(self) -> None:
        if not self.leader.leading:
            raise _LostLead

    def _warm_up(self) -> None:
        """Start the workspace's warm job server as soon as this controller leads, so the first
        triggered job does not wait for its imports."""
        if not self._warmed and self.jobs is not None:
            self._warmed = True
            self.jobs.warm_up()

    def _events(self, tick: Tick) -> None:
        if self.triggers is None or self.stream is None:
            return  # nothing would act on them: leave them unread for a controller that can
        if self._consumer is None:
            # "earliest": events appended before the first controller ever ran (a trigger
            # created, then data ingested, then the controller started) still reach triggers.
            self._consumer = self.stream.consumer(GROUP, self.leader.holder, start="earliest")
        early, self._early = self._early, []
        unique: dict[int, Any] = {}  # one event claimed and re-read as this member's own: once
        for d in [*early, *self._consumer.claim_stale(self.claim_idle, self.batch),
                  *self._consumer.read(self.batch, 0.0)]:
            unique.setdefault(d.event["id"], d)
        deliveries = sorted(unique.values(), key=lambda d: d.event["id"])
        done = []
        try:
            for d in deliveries:
                self._check_lead()
                tick.events += 1
                try:
                    tick.firings.extend(self.triggers.on_event(d.event) or [])
                except Exception as exc:  # noqa: BLE001 - retried at its next delivery
                    tick.errors.append(f"event {d.event.get('id')} ({d.event.get('kind')}): "
                                       f"{type(exc).__name__}: {exc}")  # fmt: skip
                    if d.attempts < MAX_ATTEMPTS:
                        continue
                    tick.errors.append(f"event {d.event.get('id')}: given up after "
                                       f"{d.attempts} attempts")  # fmt: skip
                checkpoint("controller.before_ack")
                done.append(d)
        finally:
            if done:
                self._consumer.ack(done)

    def _due(self, tick: Tick) -> None:
        if self.triggers is not None:
            tick.firings.extend(self.triggers.due(tick.time) or [])
            # a trigger whose location cannot be read is noted there each pass: shown once
            errors = dict(getattr(self.triggers, "errors", None) or {})
            tick.errors.extend(f"trigger {name}: {error}" for name, error in errors.items()
                               if self._trigger_errors.get(name) != error)  # fmt: skip
            self._trigger_errors = errors

    def _monitors(self, tick: Tick) -> None:
        result = self.monitoring.tick(tick.time)
        tick.monitor_runs.extend([*result["runs"], *result["failures"]])
        tick.alarms.extend(a for a in result["alarms"] if a.get("changed"))

    def _run_pending(self, tick: Tick) -> None:
        if self.triggers is not None:
            tick.actions.extend(self.triggers.run_pending(tick.time) or [])

    # -- the loop ------------------------------------------------------------------------------
    def run(self, *, interval: float = 2.0, stop: threading.Event | None = None,
            max_ticks: int | None = None, on_tick: Callable[[Tick], None] | None = None,
            grace: float = 0.0) -> None:  # fmt: skip
        """Tick every ``interval`` seconds until ``stop`` is set (a signal handler sets it: the
        tick under way finishes) or after ``max_ticks``; then let the lease go (a standby takes
        over at once) and give the actions still running here up to ``grace`` seconds to end.
        One still running after that ends with the process: its firing, claimed by a process
        that is gone, is adopted by the next leader, which continues the run it started (marked
        interrupted, resumed from its finished steps) instead of starting another."""
        stop = stop or threading.Event()
        self.leader.start()
        try:
            while not stop.is_set():
                started = time.monotonic()
                tick = self.tick()
                if on_tick:
                    on_tick(tick)
                if max_ticks is not None and self.ticks >= max_ticks:
                    break
                self._pause(stop, max(0.0, interval - (time.monotonic() - started)))
        finally:
            self.leader.release()
            if grace > 0 and self.triggers is not None and hasattr(self.triggers, "wait"):
                self.triggers.wait(grace)

    def _pause(self, stop: threading.Event, seconds: float) -> None:
        """Wait for the next tick; a leader reading events waits for one instead, so an event
        starts the next tick at once rather than at the next interval (what a retrain's reaction
        time is made of). Waits in slices, so that a stop is heard within half a second."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0 and not stop.is_set():
            if self._consumer is None or not self.leader.leading:
                stop.wait(min(left, 0.5))
                continue
            try:
                self._early = self._consumer.read(self.batch, min(left, 0.5))
            except Exception:  # noqa: BLE001 - the stream is down: the tick will say so
                stop.wait(min(left, 0.5))
                continue
            if self._early:
                return

    def unfinished(self) -> list[dict]:
        """Firings whose action this process claimed and still runs (after a stop and its grace:
        what the next leader adopts and continues once this process is gone)."""
        me = getattr(self.triggers, "me", None)
        if me is None:
            return []
        return [f for f in self.triggers.history(limit=500)
                if f["status"] == "running" and f.get("claimed_by") == me]  # fmt: skip
