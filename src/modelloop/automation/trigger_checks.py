"""Checking a trigger before it is stored: the shapes of its cause and action
(:mod:`modelloop.pipelines.loop_triggers`), its policies, and the names the workspace must know
(a loop, dataset, alarm, endpoint; a cron schedule and its time zone), each a typed error."""

from __future__ import annotations

import os

from modelloop.automation import actions
from modelloop.automation.causes import check_cron, is_remote
from modelloop.data.refs import check_name
from modelloop.errors import InvalidInput, NotFound

DEFAULT_RETRY = {"max_attempts": 3, "backoff_seconds": 30.0}


def target_of(action: dict, trigger: str) -> str:
    """What two firings must not run at once on: a loop, a pipeline, an endpoint..."""
    do = action["do"]
    if do == "run_loop":
        return f"loop:{action['loop']}"
    if do == "run_pipeline":
        return f"pipeline:{action['pipeline']}"
    if do in ("deploy", "rollback"):
        return f"endpoint:{action['endpoint']}"
    if do == "transform":
        return f"transform:{action['output']}"
    if do == "ingest":
        return f"ingest:{trigger}"
    return f"trigger:{trigger}"


def _shape(adapter, value: dict, what: str) -> dict:
    from pydantic import ValidationError

    if not isinstance(value, dict):
        raise InvalidInput(f"a trigger's {what} is a mapping, got {type(value).__name__}")
    try:
        return adapter.validate_python(value).model_dump(mode="json", exclude_none=True)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"][1:] if p not in ("function-after[_http()]",))
            msg = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] == "union_tag_invalid":
                key = "on" if what == "cause" else "do"
                known = err.get("ctx", {}).get("expected_tags", "")
                msg = f"unknown {what} {value.get(key)!r} ({key}: one of {known})"
                where = key
            elif err["type"] == "union_tag_not_found":
                key = "on" if what == "cause" else "do"
                msg, where = f"says what it is with {key}:", key
            problems.append(f"{what}.{where}: {msg}" if where else f"{what}: {msg}")
        raise InvalidInput(problems[0], details=problems[1:]) from None


def checked_record(sv: actions.Services, name: str, **given) -> dict:
    """The record of a trigger to store: its cause and action checked and normalized, its
    target, its policies; refuses what the workspace does not know (:func:`check_refs`)."""
    from modelloop.pipelines.loop_triggers import ACTION, CAUSE, CONCURRENCY, MISSED, Retry

    cause = _shape(CAUSE, given["cause"], "cause")
    if cause["on"] == "watch" and not is_remote(cause["location"]):
        local = cause["location"].removeprefix("file://")
        if not os.path.isabs(local):  # relative to the caller: the controller may run elsewhere
            cause["location"] = os.path.abspath(local)
    action = _shape(ACTION, given["action"], "action")
    if action["do"] == "run_loop" and action.get("spec") and not os.path.isabs(action["spec"]):
        action["spec"] = os.path.abspath(action["spec"])  # the controller may run elsewhere
    if given["concurrency"] not in CONCURRENCY:
        raise InvalidInput(f"unknown concurrency policy {given['concurrency']!r}",
                           hint=f"one of {', '.join(CONCURRENCY)}")
    if given["missed"] not in MISSED:
        raise InvalidInput(f"unknown missed-run policy {given['missed']!r}",
                           hint=f"one of {', '.join(MISSED)}")
    retry = dict(DEFAULT_RETRY)
    if given["retry"] is not None:
        from pydantic import ValidationError

        try:
            retry = Retry.model_validate(given["retry"]).model_dump()
        except ValidationError as exc:
            err = exc.errors()[0]
            raise InvalidInput(f"retry.{'.'.join(map(str, err['loc']))}: {err['msg']}",
                               hint="retry: {max_attempts: 3, backoff_seconds: 30}") from None
    check_refs(sv, cause, action)
    return {"name": name, "cause": cause, "action": action,
            "target": target_of(action, name), "concurrency": given["concurrency"],
            "missed": given["missed"], "retry": retry, "paused": bool(given["paused"]),
            "owner": given["owner"]}  # fmt: skip

def check_refs(sv: actions.Services, cause: dict, action: dict) -> None:
    """Names the workspace must know: each a NotFound naming it, before anything fires."""
    on, do = cause["on"], action["do"]
    if on == "cron":
        check_cron(cause["schedule"], cause.get("timezone", "UTC"))
    elif on == "new_data":
        sv.datasets.get(cause["dataset"])
    elif on == "watch":
        check_name(cause["dataset"])
        loc = cause["location"]
        if not is_remote(loc) and not os.path.isdir(loc.removeprefix("file://")):
            raise NotFound(f"no folder {loc!r} to watch", hint="create it, or give an "
                           "s3:// prefix")
    elif on == "alarm":
        sv.alarms.get(cause["alarm"])
    elif on == "approval":
        check_name(cause["model"], "model")
    if do == "ingest" and on != "watch":
        raise InvalidInput("an ingest action is for watch causes (their files are ingested)",
                           hint="cause: {on: watch, location: DIR, dataset: D}")
    if do == "run_loop":
        spec = actions.loop_spec(sv, action)
        if isinstance(spec, str):
            found = sv.loops.validate(spec)
            if found.name != action["loop"]:
                raise InvalidInput(f"{spec} is the loop {found.name!r}, not {action['loop']!r}")
    elif do in ("deploy", "rollback"):
        sv.endpoints.get(action["endpoint"])
        if do == "deploy" and not action.get("model") and on != "approval":
            raise InvalidInput("a deploy action needs a model unless an approval causes it",
                               hint="action: {do: deploy, endpoint: E, model: M@champion}")
    elif do == "run_pipeline" and ":" not in action["pipeline"]:
        raise InvalidInput(f"pipeline {action['pipeline']!r} is not file.py:function or "
                           "module:function")
