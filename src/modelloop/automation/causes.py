"""Causes of triggers: which events, schedule slots and files make a trigger fire.

Each cause has a key that is the same however often it is seen (``event:<id>``,
``cron:<slot in UTC>``, ``file:<path>:<size>:<version>``, ``manual:<uuid>``); the store keeps
one firing per (trigger, key), which is what makes a cause fire once. Functions here decide; the
:class:`~.triggers.Triggers` service records.
"""

from __future__ import annotations

import glob
import os
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from modelloop.errors import InvalidInput

#: Slots counted at most when a schedule was missed for long (a per-minute cron down for a year).
MAX_SLOTS = 1000


# -- cron -------------------------------------------------------------------------------------------
def check_cron(schedule: str, timezone: str) -> None:
    from croniter import croniter

    from modelloop.pipelines.loop_triggers import timezone_problem

    if not isinstance(schedule, str) or not croniter.is_valid(schedule):
        raise InvalidInput(f"{schedule!r} is not a cron schedule",
                           hint="five fields: minute hour day month weekday, e.g. '0 6 * * *'")
    problem = timezone_problem(timezone)
    if problem:
        raise InvalidInput(problem[0], hint=problem[1])


def cron_slots(schedule: str, timezone: str, after: datetime, now: datetime) -> list[datetime]:
    """The schedule's slots in (``after``, ``now``], read in ``timezone`` (daylight saving
    included), as UTC times, oldest first; at most :data:`MAX_SLOTS` (the newest)."""
    from croniter import croniter

    it = croniter(schedule, after.astimezone(ZoneInfo(timezone)))
    out: list[datetime] = []
    while True:
        slot = it.get_next(datetime).astimezone(UTC)
        if slot > now:
            return out
        out.append(slot)
        if len(out) > MAX_SLOTS:
            del out[0]


def next_slot(schedule: str, timezone: str, after: datetime) -> datetime:
    from croniter import croniter

    return croniter(schedule, after.astimezone(ZoneInfo(timezone))).get_next(datetime).astimezone(UTC)


def cron_decision(cause: dict, missed_policy: str, last_slot: datetime, now: datetime):
    """What the slots since ``last_slot`` call for: None, or ``(slot, status, cause, error)``:
    the slot the firing is for, ``pending`` (run it) or ``skipped`` (missed, policy skip)."""
    slots = cron_slots(cause["schedule"], cause.get("timezone", "UTC"), last_slot, now)
    if not slots:
        return None
    latest = slots[-1]
    grace = timedelta(seconds=cause.get("grace_seconds", 120.0))
    on_time = now - latest <= grace
    missed = len(slots) - (1 if on_time else 0)
    info = {"on": "cron", "slot": latest.isoformat(), "missed": missed}
    if on_time:
        return latest, "pending", info, None
    if missed_policy == "catch-up-once":
        return latest, "pending", {**info, "catch_up": True}, None
    return latest, "skipped", info, (
        f"missed {missed} slot(s) while nothing was running (missed: skip); the last was "
        f"{latest.isoformat()}")


# -- events -----------------------------------------------------------------------------------------
def match_event(cause: dict, cursor: dict, event: dict) -> tuple[dict, dict | None] | None:
    """``(cause record, new cursor or None)`` when ``event`` is a cause of a trigger whose cause is
    ``cause`` (its ``cursor`` as it is now), else None."""
    kind, p = event["kind"], event.get("payload") or {}
    base = {"on": cause["on"], "event": event["id"], "kind": kind, "subject": event["subject"]}
    on = cause["on"]
    if on == "new_data" and kind == "dataset.version_created" and p.get("dataset") == cause["dataset"]:
        total, counted = int(p.get("row_count") or 0), int(cursor.get("rows", 0))
        if total - counted < cause.get("min_new_rows", 1):
            return None
        return ({**base, "dataset": p["dataset"], "version": p["version"],
                 "ref": f"{p['dataset']}@{p['version']}", "new_rows": total - counted},
                {**cursor, "rows": total})  # fmt: skip
    if on == "alarm" and kind == "alarm.triggered" and p.get("alarm") == cause["alarm"]:
        return {**base, "alarm": p["alarm"], "reason": p.get("reason")}, None
    if on == "approval" and p.get("model") == cause["model"]:
        alias = cause.get("alias")
        if alias is None and kind == "model.approved" or (
            alias is not None and kind == "model.alias_moved" and p.get("alias") == alias
            and p.get("version") is not None
        ):
            return ({**base, "model": p["model"], "version": p["version"], "alias": alias,
                     "ref": f"{p['model']}@{p['version']}"}, None)  # fmt: skip
    return None


# -- watched locations ------------------------------------------------------------------------------
def is_remote(location: str) -> bool:
    return "://" in location and not location.startswith("file://")


def list_location(location: str, pattern: str, options: dict | None = None) -> list[tuple]:
    """``(path, size, version)`` of the files at ``location`` matching ``pattern``, by path;
    names starting with ``.`` or ``_`` are left out (files being written under a temporary name,
    Spark's ``_SUCCESS``). ``version`` is the mtime in ns, or an object's ETag."""
    if is_remote(location):
        from modelloop.tabular.locations import filesystem

        fs = filesystem(location, options)
        fs.invalidate_cache()  # a listing cached by fsspec would hide new objects
        protocol, bare = location.split("://", 1)
        out = []
        found = fs.glob(f"{bare.rstrip('/')}/{pattern}", detail=True)  # one listing, no HEADs
        for path, info in sorted(found.items()):
            if path.rsplit("/", 1)[-1].startswith((".", "_")):
                continue
            if info.get("type") == "directory":
                continue
            version = str(info.get("ETag") or info.get("etag") or info.get("LastModified") or "")
            out.append((f"{protocol}://{path}", int(info["size"]), version))
        return out
    folder = location.removeprefix("file://")
    out = []
    for path in sorted(glob.glob(os.path.join(glob.escape(folder), pattern))):
        if os.path.basename(path).startswith((".", "_")):
            continue
        try:
            st = os.stat(path)
        except OSError:  # removed between the listing and the look
            continue
        if os.path.isfile(path):
            out.append((os.path.abspath(path), st.st_size, str(st.st_mtime_ns)))
    return out


def settled(files: list[tuple], known: dict[str, dict], settle: float, now: datetime):
    """``(to_see, to_fire)``: files new or changed since last seen (their clock restarts), and
    the rows of files unchanged for ``settle`` seconds that never fired."""
    to_see, to_fire = [], []
    for path, size, version in files:
        row = known.get(path)
        if row is None or row["firing_id"] is None and (row["size"], row["version"]) != (size, version):
            to_see.append((path, size, version))
        elif row["firing_id"] is None and (now - row["seen_at"]).total_seconds() >= settle:
            to_fire.append(row)
    return to_see, to_fire
