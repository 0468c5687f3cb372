"""A loop spec's ``triggers:`` as triggers of ``ws.triggers``, owned by the loop (``loop:NAME``).

The one place apply talks to the triggers service: each spec entry (its shape and defaults:
:mod:`modelloop.pipelines.loop_triggers`) becomes ``ws.triggers.create(name, cause=...,
action=..., owner="loop:NAME", ...)``; without ``do:`` a trigger runs this loop. ``alarm:`` may
name one of the loop's monitors (its alarm is meant) or any alarm.
"""

from __future__ import annotations

from pathlib import Path

from modelloop.automation.loop_parts import Loop, change, converge, drop, find
from modelloop.errors import InvalidInput, NotFound


def requests(loop: Loop) -> dict[str, dict]:
    """name -> ``ws.triggers.create`` keywords (``cause``, ``action``, policies) for each trigger
    the spec declares, normalized as the triggers service stores them, so an unchanged trigger
    compares equal."""
    from modelloop.automation.triggers import DEFAULT_RETRY
    from modelloop.pipelines.loop_triggers import ACTION, CAUSE, resolve_all

    parsed = loop.parsed
    alarms = {m.name: loop.alarm_name(m) for m in parsed.monitors if m.alarm}
    alarms.update({loop.monitor_name(m): loop.alarm_name(m) for m in parsed.monitors if m.alarm})
    made = resolve_all(
        parsed.triggers,
        loop=loop.name,
        dataset=parsed.data.dataset,
        model=parsed.model_name,
        endpoint=parsed.deploy.endpoint if parsed.deploy else None,
    )
    out: dict[str, dict] = {}
    for request, section in zip(made, parsed.triggers, strict=True):
        name = request.pop("name")
        if name in out:
            raise InvalidInput(
                f"the loop declares trigger {name!r} twice", hint="give each trigger its own name"
            )
        cause = request["cause"]
        if cause["on"] == "alarm" and cause["alarm"] in alarms:
            cause["alarm"] = alarms[cause["alarm"]]  # a monitor of this loop: its alarm
        if cause["on"] == "watch" and "://" not in cause["location"]:
            cause["location"] = str(Path(loop.base_dir) / cause["location"])  # the spec's folder
        request["cause"] = CAUSE.validate_python(cause).model_dump(mode="json", exclude_none=True)
        request["action"] = ACTION.validate_python(request["action"]).model_dump(
            mode="json", exclude_none=True
        )
        request.setdefault("concurrency", "skip")
        request.setdefault("missed", "skip")
        request["retry"] = {**DEFAULT_RETRY, **(request.get("retry") or {})}
        if not section.paused:  # a person may pause a loop's trigger; apply leaves it paused
            request.pop("paused", None)
        out[name] = request
    return out


def check_refs(loop: Loop, wanted: dict[str, dict], alarms, datasets) -> None:
    """The alarms and datasets the loop's triggers name exist, or are the loop's own, before
    apply changes anything (the triggers service checks them again when they are made)."""
    own = {loop.alarm_name(m) for m in loop.parsed.monitors if m.alarm}
    known = own | {a["name"] for a in alarms.list()}
    for name, request in wanted.items():
        cause = request["cause"]
        if cause["on"] == "alarm" and cause["alarm"] not in known:
            raise NotFound(f"trigger {name!r}: no alarm named {cause['alarm']!r}",
                           hint=f"this loop's alarms: {', '.join(sorted(own)) or 'none'} "
                                "(a monitor's alarm: section), or an alarm of the workspace")
        if cause["on"] == "new_data" and find(datasets.get, cause["dataset"]) is None \
                and not _made_by_first_run(loop, cause["dataset"]):
            raise NotFound(f"trigger {name!r}: no dataset named {cause['dataset']!r}")
        if cause["on"] == "watch" and "://" not in cause["location"] \
                and not Path(cause["location"]).is_dir():
            raise NotFound(f"trigger {name!r}: no folder {cause['location']!r} to watch",
                           hint="create it (files land there later), or give an s3:// prefix")


def _made_by_first_run(loop: Loop, dataset: str) -> bool:
    """The loop's own dataset, made by its first run's ingest: its trigger waits for it."""
    return dataset == loop.parsed.data.dataset and bool(loop.parsed.data.ingest)


def sync_triggers(loop: Loop, triggers, datasets) -> list[dict]:
    """Create, update and delete the loop's triggers; ``triggers`` is ``ws.triggers`` or None
    where the triggers service is not available (then each one waits)."""
    wanted = requests(loop)
    if triggers is None:
        return [change("trigger", n, "waiting", ["triggers are not available"]) for n in wanted]
    owned = {t["name"] for t in triggers.list(owner=loop.owner)}
    out = drop("trigger", owned, wanted, triggers.get, triggers.delete)
    for name, request in wanted.items():
        existing = find(triggers.get, name)
        cause = request["cause"]
        if existing is None and cause["on"] == "new_data" and _made_by_first_run(
                loop, cause["dataset"]) and find(datasets.get, cause["dataset"]) is None:
            out.append(change("trigger", name, "waiting", [
                f"dataset {cause['dataset']!r} is made by the loop's first run"]))
            continue
        if existing is not None and existing.get("owner") != loop.owner:
            raise InvalidInput(
                f"trigger {name!r} exists and is not loop {loop.name!r}'s "
                f"(owner: {existing.get('owner') or 'none'})",
                hint="name the loop's trigger differently (triggers: - name: …)",
            )
        out.append(converge("trigger", name, existing, request,
                            lambda n, **r: triggers.create(n, owner=loop.owner, **r),
                            triggers.update, [_describe(request)]))
    return out


def delete_triggers(loop_name: str, triggers) -> list[dict]:
    if triggers is None:
        return []
    owned = {t["name"] for t in triggers.list(owner=f"loop:{loop_name}")}
    return drop("trigger", owned, (), triggers.get, triggers.delete)


def _describe(request: dict) -> str:
    cause = ", ".join(f"{k}={v}" for k, v in request["cause"].items() if k != "on")
    action = request["action"]
    return (
        f"on {request['cause']['on']}"
        + (f" ({cause})" if cause else "")
        + f" -> {action.get('do')} {action.get('loop') or action.get('endpoint') or ''}"
    ).rstrip()
