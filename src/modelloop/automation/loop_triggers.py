"""A loop spec's ``triggers:`` as triggers of ``ws.triggers``, owned by the loop (``loop:NAME``).

The one place apply talks to the triggers service: each spec entry becomes
``ws.triggers.create(name, cause=..., action=..., owner="loop:NAME", ...)``; without an action
a trigger runs this loop (``{"do": "run_loop", "loop": NAME}``). ``alarm:`` may name one of the
loop's monitors (its alarm is meant) or any alarm. Names: the entry's ``name``, else
``<loop>-<on>`` (``-2``, ``-3`` … when the loop has several of one cause).
"""

from __future__ import annotations

from modelloop.automation.loop_parts import Loop, change, diff
from modelloop.errors import InvalidInput

#: Keys of a spec entry that say what the action is, and how it is run (the rest is the cause).
ACTION_KEYS = ("do", "loop", "pipeline", "endpoint", "strategy", "options", "url", "spec",
               "input", "output", "args", "params")
POLICY_KEYS = ("concurrency", "missed", "retry", "paused")


def requests(loop: Loop) -> dict[str, dict]:
    """name -> ``{"cause", "action", <policies>}`` for each trigger the spec declares."""
    out: dict[str, dict] = {}
    counts: dict[str, int] = {}
    alarms = {m.name: loop.alarm_name(m) for m in loop.parsed.monitors if m.alarm}
    for entry in loop.spec.get("triggers") or []:
        entry = {k: v for k, v in entry.items() if v is not None}
        name = entry.pop("name", None)
        action = entry.pop("action", None) or {}
        for key in ACTION_KEYS:
            if key in entry:
                action[key] = entry.pop(key)
        if not action:
            action = {"do": "run_loop", "loop": loop.name}
        policies = {k: entry.pop(k) for k in POLICY_KEYS if k in entry}
        cause = entry
        if cause.get("on") == "alarm" and cause.get("alarm") in alarms:
            cause["alarm"] = alarms[cause["alarm"]]
        if cause.get("on") == "new_data":
            cause.setdefault("dataset", loop.parsed.data.dataset)
        if name is None:
            counts[cause["on"]] = counts.get(cause["on"], 0) + 1
            n = counts[cause["on"]]
            name = f"{loop.name}-{cause['on']}" + (f"-{n}" if n > 1 else "")
        if name in out:
            raise InvalidInput(f"the loop declares trigger {name!r} twice",
                               hint="give each trigger its own name")
        out[name] = {"cause": cause, "action": action, **policies}
    return out


def sync_triggers(loop: Loop, triggers) -> list[dict]:
    """Create, update and delete the loop's triggers; ``triggers`` is ``ws.triggers`` or None
    where the triggers service is not available (then each one waits)."""
    wanted = requests(loop)
    if triggers is None:
        return [change("trigger", n, "waiting", ["triggers are not available"]) for n in wanted]
    out: list[dict] = []
    for existing in triggers.list(owner=loop.owner):
        if existing["name"] not in wanted:
            triggers.delete(existing["name"])
            out.append(change("trigger", existing["name"], "deleted"))
    for name, request in wanted.items():
        existing = _get(triggers, name)
        if existing is None:
            triggers.create(name, owner=loop.owner, **request)
            out.append(change("trigger", name, "created", [_describe(request)]))
            continue
        if existing.get("owner") != loop.owner:
            raise InvalidInput(f"trigger {name!r} exists and is not loop {loop.name!r}'s "
                               f"(owner: {existing.get('owner') or 'none'})",
                               hint="name the loop's trigger differently (triggers: - name: …)")
        changed = diff({k: existing.get(k) for k in request}, request)
        if changed:
            triggers.update(name, **request)
            out.append(change("trigger", name, "updated", changed))
        else:
            out.append(change("trigger", name, "unchanged"))
    return out


def delete_triggers(loop_name: str, triggers) -> list[dict]:
    if triggers is None:
        return []
    out = []
    for existing in triggers.list(owner=f"loop:{loop_name}"):
        triggers.delete(existing["name"])
        out.append(change("trigger", existing["name"], "deleted"))
    return out


def _get(triggers, name: str) -> dict | None:
    from modelloop.errors import NotFound

    try:
        return triggers.get(name)
    except NotFound:
        return None


def _describe(request: dict) -> str:
    cause = ", ".join(f"{k}={v}" for k, v in request["cause"].items() if k != "on")
    action = request["action"]
    return (f"on {request['cause']['on']}" + (f" ({cause})" if cause else "")
            + f" -> {action.get('do')} {action.get('loop') or action.get('endpoint') or ''}"
            ).rstrip()
