"""Triggers (``ws.triggers``): causes that start actions, each cause exactly once.

A trigger pairs a cause (cron, new data, a watched folder, an alarm, an approval, by hand) with
an action (run a loop or a pipeline, deploy, roll back, batch transform, webhook). What the
controller calls, each safe to repeat after a crash:

* :meth:`Triggers.on_event` — the events that are causes become firings;
* :meth:`Triggers.due` — schedule slots and settled files in watched locations become firings;
* :meth:`Triggers.run_pending` — firings are claimed and their actions run (in threads, or
  in the caller's with ``wait``); the running ones are followed; orphans of a dead process are
  adopted and finished, never started twice.

Exactly once per cause: a firing is one row per (trigger, cause key), recorded in the
transaction that moves the trigger's cursor; it is claimed by a conditional update (pending ->
running); what it starts names the firing (a pipeline run's ``started_by``), so an attempt that
died half-way is continued, not repeated. A concurrency policy per target (``loop:L``,
``endpoint:E``, ...) decides what a firing does while another of the target runs: ``skip``
(recorded as skipped), ``queue`` (waits its turn), ``cancel-previous`` (the newest cause replaces
older waiting ones, and the running pipeline or loop run of this process stops at its next step;
the newest starts when it has); a watched file's firing always waits its turn (a file is never
dropped). A failed action is recorded with its error and retried with
exponential backoff as the trigger's ``retry`` says; it never raises out of ``run_pending``.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

from modelloop import _faults
from modelloop._faults import pid_alive
from modelloop.automation import actions
from modelloop.automation.causes import (
    cron_decision,
    is_remote,
    list_location,
    match_event,
    next_slot,
    settled,
)
from modelloop.automation.trigger_checks import DEFAULT_RETRY, checked_record
from modelloop.data.refs import check_name
from modelloop.errors import InvalidInput, NotFound

PENDING, RUNNING, SUCCEEDED, FAILED = "pending", "running", "succeeded", "failed"
SKIPPED, CANCELLED = "skipped", "cancelled"
_FIELDS = ("cause", "action", "concurrency", "missed", "retry", "paused", "owner")


def _now() -> datetime:
    return datetime.now(UTC)


class Triggers:
    """The triggers of one workspace on its ``store``; actions use ``services``
    (:class:`~.actions.Services`). ``lease_seconds``: how long a running firing of a process on
    another machine may go without a heartbeat before another process adopts it."""

    def __init__(self, store, services: actions.Services, *, lease_seconds: float = 60.0):
        self.store = store
        self.sv = services
        self.lease = timedelta(seconds=lease_seconds)
        self.me = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.errors: dict[str, str] = {}  # trigger -> why its last look (due) failed
        self._threads: dict[int, threading.Thread] = {}
        self._stop: dict[int, str] = {}  # firing -> why its run must stop (cancel-previous)

    # -- records ------------------------------------------------------------------------------
    def create(self, name: str, *, cause: dict, action: dict, concurrency: str = "skip",
               missed: str = "skip", retry: dict | None = None, paused: bool = False,
               owner: str | None = None) -> dict:
        """Make a trigger; see the module docstring for causes and actions. Refuses an unknown
        loop, dataset, alarm or endpoint, a malformed cron or an unknown time zone."""
        check_name(name, "trigger")
        record = checked_record(self.sv, name, cause=cause, action=action, concurrency=concurrency,
                                      missed=missed, retry=retry, paused=paused, owner=owner)
        record["cursor"] = self._initial_cursor(record["cause"])
        record["after_event"] = self.store.last_event_id()
        return self._shown(self.store.create_trigger(record))

    def _initial_cursor(self, cause: dict) -> dict:
        if cause["on"] == "cron":
            return {"last_slot": _now().isoformat()}
        if cause["on"] == "new_data":
            version = self.sv.datasets.get(cause["dataset"])
            return {"rows": int(getattr(version, "row_count", 0) or 0)}
        return {}

    def _shown(self, record: dict) -> dict:
        return {k: v for k, v in record.items() if k not in ("id", "after_event")}

    def get(self, name: str) -> dict:
        record = self.store.get_trigger(name)
        if record is None:
            known = [t["name"] for t in self.store.list_triggers()]
            raise NotFound(f"no trigger named {name!r}",
                           hint=f"known triggers: {', '.join(known)}" if known else
                           "make one with 'modelloop trigger create'")
        return self._shown(record)

    def list(self, owner: str | None = None) -> list[dict]:
        return [self._shown(t) for t in self.store.list_triggers(owner=owner)]

    def update(self, name: str, **fields) -> dict:
        """Change any of cause, action, concurrency, missed, retry, paused, owner; a changed
        cause starts counting afresh (a new schedule from now, new rows from now)."""
        unknown = sorted(set(fields) - set(_FIELDS))
        if unknown:
            raise InvalidInput(f"a trigger has no field {', '.join(unknown)}",
                               hint=f"fields: {', '.join(_FIELDS)}")
        old = self.get(name)
        merged = {k: fields.get(k, old[k]) for k in _FIELDS}
        record = checked_record(self.sv, name, **merged)
        changes = {k: v for k, v in record.items() if k != "name" and old.get(k) != v}
        if "cause" in changes:
            changes["cursor"] = self._initial_cursor(record["cause"])
        if not changes:
            return old
        return self._shown(self.store.update_trigger(name, changes))

    def delete(self, name: str) -> None:
        """Delete the trigger (its firings stay in the history)."""
        if not self.store.delete_trigger(name):
            self.get(name)

    def pause(self, name: str) -> dict:
        """Stop firing: causes seen while paused are ignored (not queued)."""
        self.get(name)
        return self._shown(self.store.update_trigger(name, {"paused": True}))

    def resume(self, name: str) -> dict:
        """Fire again; a schedule counts from now (slots while paused are not missed runs)."""
        record = self.get(name)
        changes: dict = {"paused": False}
        if record["paused"] and record["cause"]["on"] == "cron":
            changes["cursor"] = {"last_slot": _now().isoformat()}
        return self._shown(self.store.update_trigger(name, changes))

    def fire(self, name: str, payload: dict | None = None, *, run: bool = False) -> dict:
        """Record a firing by hand (any trigger, paused or not); the controller, or
        :meth:`run_pending`, runs it. With ``run``: run it here and now (its concurrency
        policy still applies) and return how it ended."""
        self.get(name)
        cause = {"on": "manual", "by": _actor(), **({"payload": payload} if payload else {})}
        firing = self.store.record_firing(name, f"manual:{uuid.uuid4().hex}", cause)
        if run:
            now = _now()
            busy = {f["target"]: f["id"] for f in self.store.list_firings(statuses=[RUNNING],
                                                                          limit=None)}
            self._start_pending(now, True, busy, only=firing["id"])
            firing = self.store.get_firing(firing["id"])
        return self._firing(firing)

    def history(self, name: str | None = None, limit: int = 50) -> list[dict]:
        """Firings, newest first: each with its cause, status, attempts, what it started, its
        result or error."""
        if name is not None and self.store.get_trigger(name) is None and not \
                self.store.list_firings(trigger=name, limit=1):
            self.get(name)
        return [self._firing(f) for f in self.store.list_firings(trigger=name, limit=limit)]

    def firing(self, firing_id: int) -> dict:
        found = self.store.get_firing(firing_id)
        if found is None:
            raise NotFound(f"no trigger firing {firing_id}")
        return self._firing(found)

    def _firing(self, firing: dict | None) -> dict | None:
        if firing is None:
            return None
        return {**firing, "cause_text": actions.describe(firing["cause"])}

    def next_firings(self, now: datetime | None = None) -> dict[str, datetime | None]:
        """Each trigger's next scheduled firing (None: paused, or not on a schedule)."""
        now = now or _now()
        out: dict[str, datetime | None] = {}
        for t in self.store.list_triggers():
            cause = t["cause"]
            if t["paused"] or cause["on"] != "cron":
                out[t["name"]] = None
                continue
            last = datetime.fromisoformat(t["cursor"]["last_slot"])
            out[t["name"]] = next_slot(cause["schedule"], cause.get("timezone", "UTC"),
                                       max(last, now))
        return out

    # -- causes -------------------------------------------------------------------------------
    def on_event(self, event: dict) -> list[dict]:
        """Firings recorded for ``event`` (an event log record); none when it was seen before."""
        out = []
        for t in self.store.list_triggers():
            if t["paused"] or event["id"] <= t["after_event"]:
                continue
            matched = match_event(t["cause"], t["cursor"] or {}, event)
            if matched is None:
                continue
            cause, cursor = matched
            firing = self.store.record_firing(
                t["name"], f"event:{event['id']}", cause,
                cursor=(t["cursor"], cursor) if cursor is not None else None)
            if firing is not None:
                out.append(self._firing(firing))
        return out

    def due(self, now: datetime) -> list[dict]:
        """Firings for schedule slots up to ``now`` and for files of watched locations that
        settled. A location that cannot be read is noted in :attr:`errors`, not raised."""
        out = []
        for t in self.store.list_triggers():
            if t["paused"] or t["cause"]["on"] not in ("cron", "watch"):
                continue
            try:
                fired = self._cron(t, now) if t["cause"]["on"] == "cron" else self._watch(t, now)
                self.errors.pop(t["name"], None)
            except Exception as exc:  # noqa: BLE001 - one broken trigger must not stop the rest
                self.errors[t["name"]] = f"{type(exc).__name__}: {exc}"
                continue
            out.extend(self._firing(f) for f in fired)
        return out

    def _cron(self, t: dict, now: datetime) -> list[dict]:
        last = datetime.fromisoformat(t["cursor"]["last_slot"])
        decision = cron_decision(t["cause"], t["missed"], last, now)
        if decision is None:
            return []
        slot, status, cause, error = decision
        firing = self.store.record_firing(
            t["name"], f"cron:{slot.isoformat()}", cause, status=status, error=error,
            cursor=(t["cursor"], {**t["cursor"], "last_slot": slot.isoformat()}))
        return [firing] if firing else []

    def _watch(self, t: dict, now: datetime) -> list[dict]:
        cause = t["cause"]
        options = self.sv.storage_options if is_remote(cause["location"]) else None
        files = list_location(cause["location"], cause.get("pattern", "*"), options)
        settle = cause.get("settle_seconds", 2.0)
        to_see, _ = settled(files, self.store.watched_files(t["name"]), settle, now)
        for path, size, version in to_see:
            self.store.see_file(t["name"], path, size, version, now)
        _, to_fire = settled(files, self.store.watched_files(t["name"]), settle, now)
        out = []
        for row in to_fire:
            key = f"file:{row['path']}:{row['size']}:{row['version']}"
            firing = self.store.record_firing(
                t["name"], key, {"on": "watch", "file": row["path"], "size": row["size"],
                                 "dataset": cause["dataset"]}, watched_file=row["id"])
            if firing is not None:
                out.append(firing)
        return out

    # -- running actions ----------------------------------------------------------------------
    def run_pending(self, now: datetime, *, wait: bool = False) -> list[dict]:
        """Start what may start now and follow what runs; returns the firings it claimed or
        ended (skipped, cancelled) in this call. With ``wait`` actions run in the caller's
        thread, else each in a thread of its own."""
        busy: dict[str, int] = {}
        touched = self._adopt(now, wait, busy)
        touched += self._start_pending(now, wait, busy)
        return [self._firing(self.store.get_firing(i)) for i in touched]

    def _adopt(self, now: datetime, wait: bool, busy: dict[str, int]) -> list[int]:
        """Note what runs (``busy`` targets), keep our own heartbeats, and take over the
        running firings of a process that died: their actions continue where they stopped."""
        touched = []
        for f in self.store.list_firings(statuses=[RUNNING], oldest_first=True, limit=None):
            busy.setdefault(f["target"], f["id"])
            if f["claimed_by"] == self.me:
                thread = self._threads.get(f["id"])
                if thread is not None and thread.is_alive():
                    self.store.update_firing(f["id"], only_if_claimed_by=self.me,
                                             heartbeat_at=now)
                    continue
                # ours, but nothing runs it (its thread died of a BaseException): run it again,
                # it continues what it started
                self._start(f, wait, now)
                touched.append(f["id"])
                continue
            if self._orphaned(f, now) and self.store.update_firing(
                f["id"], only_if_status=[RUNNING], only_if_claimed_by=f["claimed_by"],
                claimed_by=self.me, heartbeat_at=now,
            ):
                touched.append(f["id"])
                self._start(self.store.get_firing(f["id"]), wait, now)
        return touched

    def _start_pending(self, now: datetime, wait: bool, busy: dict[str, int],
                       only: int | None = None) -> list[int]:
        touched = []
        triggers = {t["name"]: t for t in self.store.list_triggers()}
        pending = self.store.list_firings(statuses=[PENDING], oldest_first=True, limit=None)
        for i, f in enumerate(pending):
            if only is not None and f["id"] != only:
                continue
            if f["not_before"] is not None and f["not_before"] > now:
                continue
            policy = (triggers.get(f["trigger"]) or {}).get("concurrency", "queue")
            if f["cause"].get("on") == "watch":
                policy = "queue"  # a watched file is never dropped: its firing waits its turn
            if policy == "cancel-previous":
                newer = next((g for g in pending[i + 1:] if g["target"] == f["target"]), None)
                if newer is not None:
                    if self.store.update_firing(
                            f["id"], only_if_status=[PENDING], status=CANCELLED, ended_at=now,
                            error=f"replaced by firing {newer['id']} (concurrency: "
                                  "cancel-previous)"):  # fmt: skip
                        touched.append(f["id"])
                    continue
            if f["target"] in busy:
                previous = busy[f["target"]]
                if policy == "cancel-previous" and previous in self._threads:
                    # ours, in a thread: its run stops at its next step; this one waits for it
                    self._stop.setdefault(previous, f"replaced by firing {f['id']} "
                                                    "(concurrency: cancel-previous)")
                if policy == "skip" and self.store.update_firing(
                        f["id"], only_if_status=[PENDING], status=SKIPPED, ended_at=now,
                        error=f"{f['target']} was busy with firing {busy[f['target']]} "
                              "(concurrency: skip)"):  # fmt: skip
                    touched.append(f["id"])
                continue
            if not self.store.update_firing(
                    f["id"], only_if_status=[PENDING], status=RUNNING, claimed_by=self.me,
                    heartbeat_at=now, attempts=f["attempts"] + 1,
                    started_at=f["started_at"] or now):  # fmt: skip
                continue  # another process claimed it
            busy[f["target"]] = f["id"]
            touched.append(f["id"])
            self._start(self.store.get_firing(f["id"]), wait, now)
        return touched

    def wait(self, timeout: float | None = None) -> None:
        """Wait up to ``timeout`` seconds in all (None: as long as it takes) for the actions
        this object runs in threads (tests, a graceful stop)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in list(self._threads.values()):
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))

    def _orphaned(self, f: dict, now: datetime) -> bool:
        host, _, rest = (f["claimed_by"] or "").partition(":")
        pid = rest.partition(":")[0]
        if host == socket.gethostname() and pid.isdigit() and int(pid) != os.getpid():
            return not pid_alive(int(pid))
        beat = f["heartbeat_at"] or f["started_at"] or f["created_at"]
        return now - beat > self.lease

    def _start(self, firing: dict, wait: bool, now: datetime) -> None:
        if wait:
            self._execute(firing, now)
            return
        thread = threading.Thread(target=self._execute, args=(firing, now), daemon=True,
                                  name=f"modelloop-firing-{firing['id']}")
        self._threads = {k: t for k, t in self._threads.items() if t.is_alive()}
        self._threads[firing["id"]] = thread
        thread.start()

    def _execute(self, firing: dict, now: datetime) -> None:
        fid = firing["id"]

        def on_started(fields: dict) -> None:
            values = {}
            if "started" in fields:
                firing["started"] = {**(firing.get("started") or {}), **fields["started"]}
                values["started"] = firing["started"]
            if "cause" in fields:
                values["cause"] = fields["cause"]
            self.store.update_firing(fid, only_if_claimed_by=self.me, **values)

        _faults.checkpoint("trigger.claimed")
        try:
            result = actions.run(self.sv, firing, on_started, lambda: self._stop.get(fid))
        except Exception as exc:  # noqa: BLE001 - recorded on the firing, retried by policy
            if fid in self._stop:  # replaced by a newer cause: not a failure to retry
                self.store.update_firing(fid, only_if_claimed_by=self.me,
                                         only_if_status=[RUNNING], status=CANCELLED,
                                         error=self._stop.pop(fid), ended_at=max(now, _now()))
                return
            self._failed(firing, f"{type(exc).__name__}: {exc}", now)
            return
        self._stop.pop(fid, None)
        _faults.checkpoint("trigger.acted")
        self.store.update_firing(fid, only_if_claimed_by=self.me, only_if_status=[RUNNING],
                                 status=SUCCEEDED, result=result, error=None,
                                 ended_at=max(now, _now()))

    def _failed(self, firing: dict, error: str, now: datetime) -> None:
        trigger = self.store.get_trigger(firing["trigger"]) or {}
        retry = trigger.get("retry") or DEFAULT_RETRY
        attempts = firing["attempts"]
        fields: dict = {"error": error[:4000]}
        now = max(now, _now())  # the tick's time, or later when the action ran long
        if attempts < retry["max_attempts"]:
            delay = retry["backoff_seconds"] * 2 ** (attempts - 1)
            fields.update(status=PENDING, not_before=now + timedelta(seconds=delay))
        else:
            fields.update(status=FAILED, ended_at=now)
        self.store.update_firing(firing["id"], only_if_claimed_by=self.me,
                                 only_if_status=[RUNNING], **fields)


def _actor() -> str:
    from modelloop.config import current_actor

    return current_actor()
