"""``modelloop trigger …``: causes that start actions (``ws.triggers``)."""

from __future__ import annotations

import json

import click

from modelloop.cli import render
from modelloop.cli.context import Context, json_option, pass_ctx
from modelloop.errors import InvalidInput

CONCURRENCY = ("skip", "queue", "cancel-previous")
MISSED = ("skip", "catch-up-once")


@click.group()
def trigger() -> None:
    """Triggers: a cause (cron, new data, a watched folder, an alarm, an approval, by hand)
    starts an action (run a loop or pipeline, deploy, roll back, transform, webhook), once per
    cause. The controller ('modelloop controller') watches the causes and runs the actions."""


def _one(kind: str, given: dict, flags: str):
    chosen = {k: v for k, v in given.items() if v not in (None, False)}
    if len(chosen) > 1:
        raise InvalidInput(f"give one {kind}, not {' and '.join(chosen)}", hint=flags)
    return next(iter(chosen.items()), (None, None))


def _cause(cron, timezone, on_new_data, min_new_rows, watch, dataset, pattern, settle,
           on_alarm, on_approval, alias) -> dict:
    flag, value = _one("cause", {"--cron": cron, "--on-new-data": on_new_data, "--watch": watch,
                                 "--on-alarm": on_alarm, "--on-approval": on_approval},
                       "--cron, --on-new-data, --watch, --on-alarm, --on-approval, or none "
                       "(fired by hand)")  # fmt: skip
    if flag == "--cron":
        return {"on": "cron", "schedule": value, "timezone": timezone or "UTC"}
    if flag == "--on-new-data":
        return {"on": "new_data", "dataset": value, "min_new_rows": min_new_rows or 1}
    if flag == "--watch":
        if not dataset:
            raise InvalidInput("--watch needs --dataset (the dataset its files go into)")
        import os

        location = value if "://" in value else os.path.abspath(value)
        return {"on": "watch", "location": location, "dataset": dataset,
                "pattern": pattern or "*", "settle_seconds": 2.0 if settle is None else settle}
    if flag == "--on-alarm":
        return {"on": "alarm", "alarm": value}
    if flag == "--on-approval":
        return {"on": "approval", "model": value, **({"alias": alias} if alias else {})}
    return {"on": "manual"}


def _action(run_loop, spec, run_pipeline, deploy, model, strategy, rollback, webhook) -> dict:
    flag, value = _one("action", {"--run-loop": run_loop, "--run-pipeline": run_pipeline,
                                  "--deploy": deploy, "--rollback": rollback,
                                  "--webhook": webhook},
                       "--run-loop, --run-pipeline, --deploy, --rollback or --webhook")
    if flag is None:
        raise InvalidInput("say what the trigger does",
                           hint="--run-loop L, --run-pipeline file.py:fn, --deploy E, "
                           "--rollback E or --webhook URL")
    if flag == "--run-loop":
        return {"do": "run_loop", "loop": value, **({"spec": spec} if spec else {})}
    if flag == "--run-pipeline":
        return {"do": "run_pipeline", "pipeline": value}
    if flag == "--deploy":
        return {"do": "deploy", "endpoint": value, "strategy": strategy or "all-at-once",
                **({"model": model} if model else {})}
    if flag == "--rollback":
        return {"do": "rollback", "endpoint": value}
    return {"do": "webhook", "url": value}


@trigger.command("create")
@click.argument("name")
@click.option("--cron", help="Cron schedule, e.g. '0 6 * * *'.")
@click.option("--timezone", help="IANA time zone of --cron (default UTC).")
@click.option("--on-new-data", metavar="DATASET", help="Fire when DATASET gets new rows.")
@click.option("--min-new-rows", type=click.IntRange(min=1), help="Rows needed (default 1).")
@click.option("--watch", metavar="LOCATION", help="Ingest each new file of a folder or s3:// "
              "prefix once (then do the action, if one is given).")
@click.option("--dataset", help="The dataset --watch ingests into.")
@click.option("--pattern", help="File name pattern of --watch (default *).")
@click.option("--settle", type=click.FloatRange(min=0), help="Seconds a file's size and mtime "
              "must hold before it is ingested (default 2).")
@click.option("--on-alarm", metavar="ALARM", help="Fire when ALARM enters ALARM.")
@click.option("--on-approval", metavar="MODEL", help="Fire when a MODEL version is approved.")
@click.option("--alias", help="With --on-approval: fire when this alias moves instead.")
@click.option("--run-loop", metavar="LOOP", help="Run the loop LOOP.")
@click.option("--spec", help="With --run-loop: its loop.yaml, for a loop that was not applied.")
@click.option("--run-pipeline", metavar="FILE.PY:FN", help="Run a @pipeline.")
@click.option("--deploy", metavar="ENDPOINT", help="Deploy to ENDPOINT (the approved version, "
              "or --model).")
@click.option("--model", help="With --deploy: the model version to deploy.")
@click.option("--strategy", type=click.Choice(["all-at-once", "blue-green", "canary", "linear"]))
@click.option("--rollback", metavar="ENDPOINT", help="Roll ENDPOINT back.")
@click.option("--webhook", metavar="URL", help="POST the firing to URL.")
@click.option("--concurrency", type=click.Choice(CONCURRENCY), default="skip", show_default=True,
              help="While the target (loop, endpoint...) is busy: skip, queue or replace the "
              "waiting causes.")
@click.option("--missed", type=click.Choice(MISSED), default="skip", show_default=True,
              help="Cron slots missed while nothing ran.")
@click.option("--max-attempts", type=click.IntRange(1, 100), default=3, show_default=True)
@click.option("--backoff", type=click.FloatRange(min=0), default=30.0, show_default=True,
              help="Seconds before the 2nd attempt; doubles after.")
@click.option("--paused", is_flag=True, help="Make it paused.")
@json_option
@pass_ctx
def trigger_create(c: Context, name, cron, timezone, on_new_data, min_new_rows, watch, dataset,
                   pattern, settle, on_alarm, on_approval, alias, run_loop, spec, run_pipeline,
                   deploy, model, strategy, rollback, webhook, concurrency, missed, max_attempts,
                   backoff, paused, as_json) -> None:  # fmt: skip
    """Create trigger NAME: one cause (none: fired by hand) and one action."""
    cause = _cause(cron, timezone, on_new_data, min_new_rows, watch, dataset, pattern, settle,
                   on_alarm, on_approval, alias)
    if watch and not any((run_loop, run_pipeline, deploy, rollback, webhook)):
        action = {"do": "ingest"}  # a watched folder alone: its files are ingested, that is all
    else:
        action = _action(run_loop, spec, run_pipeline, deploy, model, strategy, rollback, webhook)
    rec = c.ws.triggers.create(name, cause=cause, action=action, concurrency=concurrency,
                               missed=missed, paused=paused,
                               retry={"max_attempts": max_attempts, "backoff_seconds": backoff})
    if as_json:
        return render.print_json(rec)
    render.out.print(f"Created trigger [bold]{name}[/bold]: {_says(rec)}")


def _says(t: dict) -> str:
    cause, action = t["cause"], t["action"]
    what = {k: v for k, v in cause.items() if k != "on"}
    does = {k: v for k, v in action.items() if k != "do"}
    return (f"on {cause['on']} {_kv(what)} -> {action['do']} {_kv(does)} "
            f"({t['concurrency']}{', paused' if t['paused'] else ''})").replace("  ", " ")


def _kv(d: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in d.items())


@trigger.command("list")
@click.option("--owner", help="Only those made by OWNER (e.g. loop:NAME).")
@json_option
@pass_ctx
def trigger_list(c: Context, owner, as_json: bool) -> None:
    """List triggers with their next firing."""
    rows = c.ws.triggers.list(owner=owner)
    nxt = c.ws.triggers.next_firings()
    if as_json:
        return render.print_json([{**t, "next_firing": nxt.get(t["name"])} for t in rows])
    render.table("Triggers", ["name", "cause", "action", "target", "concurrency", "paused",
                              "next", "owner"],
                 [[t["name"], f"{t['cause']['on']} {_kv({k: v for k, v in t['cause'].items() if k != 'on'})}",
                   t["action"]["do"], t["target"], t["concurrency"], t["paused"],
                   nxt.get(t["name"]), t["owner"]] for t in rows])  # fmt: skip


@trigger.command("show")
@click.argument("name")
@json_option
@pass_ctx
def trigger_show(c: Context, name: str, as_json: bool) -> None:
    """A trigger, its next firing and its last firings."""
    t = c.ws.triggers.get(name)
    firings = c.ws.triggers.history(name, limit=10)
    nxt = c.ws.triggers.next_firings().get(name)
    if as_json:
        return render.print_json({**t, "next_firing": nxt, "firings": firings})
    render.out.print(f"[bold]{name}[/bold]: {_says(t)}")
    render.out.print(f"  target {t['target']}, missed runs: {t['missed']}, retry: "
                     f"{t['retry']['max_attempts']} attempts, backoff {t['retry']['backoff_seconds']:g}s"
                     + (f", owner {t['owner']}" if t["owner"] else ""))  # fmt: skip
    render.out.print(f"  next firing: {render.fmt(nxt)}")
    _firings_table(f"Last firings of {name}", firings)


def _firings_table(title: str, rows: list[dict]) -> None:
    render.table(title, ["id", "trigger", "time", "cause", "status", "attempts", "started",
                         "error"],
                 [[f["id"], f["trigger"], f["created_at"], f["cause_text"], f["status"],
                   f["attempts"], _kv(f["started"] or {}) or None,
                   (f["error"] or "")[:160] or None] for f in rows])  # fmt: skip


@trigger.command("history")
@click.argument("name", required=False)
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@json_option
@pass_ctx
def trigger_history(c: Context, name, limit: int, as_json: bool) -> None:
    """Firings, newest first: cause, status, what they started, errors."""
    rows = c.ws.triggers.history(name, limit=limit)
    if as_json:
        return render.print_json(rows)
    _firings_table(f"Firings of {name}" if name else "Firings", rows)


@trigger.command("pause")
@click.argument("name")
@pass_ctx
def trigger_pause(c: Context, name: str) -> None:
    """Stop firing (causes seen meanwhile are ignored)."""
    c.ws.triggers.pause(name)
    render.out.print(f"Paused trigger {name}")


@trigger.command("resume")
@click.argument("name")
@pass_ctx
def trigger_resume(c: Context, name: str) -> None:
    """Fire again (a schedule counts from now)."""
    c.ws.triggers.resume(name)
    render.out.print(f"Resumed trigger {name}")


@trigger.command("delete")
@click.argument("name")
@pass_ctx
def trigger_delete(c: Context, name: str) -> None:
    """Delete a trigger (its firings stay in the history)."""
    c.ws.triggers.delete(name)
    render.out.print(f"Deleted trigger {name}")


@trigger.command("fire")
@click.argument("name")
@click.option("--payload", help="JSON recorded with the firing.")
@click.option("--wait/--no-wait", default=True, show_default=True,
              help="Run the action here and now, or leave it to the controller.")
@json_option
@pass_ctx
def trigger_fire(c: Context, name: str, payload, wait: bool, as_json: bool) -> None:
    """Fire a trigger by hand."""
    data = None
    if payload:
        try:
            data = json.loads(payload)
        except ValueError as exc:
            raise InvalidInput(f"--payload is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise InvalidInput("--payload must be a JSON object")
    firing = c.ws.triggers.fire(name, data, run=wait)
    if as_json:
        return render.print_json(firing)
    status = firing["status"]
    if wait and status == "pending" and firing.get("error"):  # failed, a retry is scheduled
        status = (f"attempt {firing['attempts']} failed, retried from "
                  f"{render.fmt(firing['not_before'])} by the controller")
    ending = f": {firing['error']}" if firing.get("error") else ""
    render.out.print(f"Firing {firing['id']} of {name}: {status}"
                     + (f" ({_kv(firing['started'])})" if firing.get("started") else "") + ending)
    if wait and firing["status"] != "succeeded" and (firing.get("error") or
                                                      firing["status"] != "pending"):
        raise SystemExit(1)
