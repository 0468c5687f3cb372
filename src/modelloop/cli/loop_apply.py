"""``modelloop loop apply|status|delete``: loops kept in the workspace, like ``kubectl apply``."""

from __future__ import annotations

import click

from modelloop.cli import render
from modelloop.cli.context import Context, json_option, pass_ctx

_ACTION = {
    "created": "[green]created[/green]",
    "updated": "[yellow]updated[/yellow]",
    "deleted": "[red]deleted[/red]",
    "unchanged": "[dim]unchanged[/dim]",
    "waiting": "[blue]waiting[/blue]",
}
_STATE = {"ALARM": "[red]ALARM[/red]", "OK": "[green]OK[/green]"}


@click.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@json_option
@pass_ctx
def apply(c: Context, spec: str, as_json: bool) -> None:
    """Create or update the loop in SPEC and what it declares: its endpoint, monitors with
    their baselines and alarms, and triggers. Prints what changed; applying the same file
    again changes nothing, and what the spec no longer declares is deleted."""
    changes = c.ws.loops.apply(spec)
    if as_json:
        render.print_json(changes)
        return
    print_changes(changes)


def print_changes(changes: list[dict]) -> None:
    for ch in changes:
        render.out.print(f"{ch['kind']}/{ch['name']} {_ACTION.get(ch['action'], ch['action'])}")
        for line in ch["diff"][:12]:
            render.out.print(f"  {line}", markup=False)
        if len(ch["diff"]) > 12:
            render.out.print(f"  … and {len(ch['diff']) - 12} more")
    made = sum(ch["action"] in ("created", "updated", "deleted") for ch in changes)
    render.out.print(f"{made} change(s)" if made else "no changes")


@click.command()
@click.argument("name")
@json_option
@pass_ctx
def status(c: Context, name: str, as_json: bool) -> None:
    """Show the applied loop NAME: champion, endpoint variants and traffic, monitors' last
    verdicts, alarms' states, triggers' next firings and the last runs."""
    s = c.ws.loops.status(name)
    if as_json:
        render.print_json(s)
        return
    out = render.out.print
    out(f"Loop [bold]{s['name']}[/bold] (applied {s['applied_at'][:19]}Z)")
    out(f"  champion  {s['champion'] or 'none yet: waits for its first run'}"
        + (f" (trained on {s['trained_on']})" if s["trained_on"] else ""))
    e = s["endpoint"]
    if e is None:
        out("  endpoint  none (no deploy section)")
    elif e.get("waiting"):
        out(f"  endpoint  {e['name']}: waiting ({e['waiting']})")
    else:
        shown = ", ".join(f"{v['name']}={v['model']} {v['traffic']:g}%"
                          + (" shadow" if v["role"] == "shadow" else "") for v in e["variants"])
        out(f"  endpoint  {e['name']} {e['status']}: {shown}"
            + ("; capture on" if e.get("capture") else ""))
        if e.get("last_rollout"):
            r = e["last_rollout"]
            out(f"            last rollout {r['id']}: {r['strategy']} {r['model']} {r['status']}")
    if s["monitors"]:
        render.table("monitors", ["monitor", "kind", "watches", "last run", "verdict"],
                     [[m["name"], m["kind"], m["watches"], *_last_run(m)] for m in s["monitors"]])
    if s["alarms"]:
        render.table("alarms", ["alarm", "state", "since", "reason"],
                     [[a["name"], _STATE.get(a["state"], a["state"] or "-"),
                       (a.get("since") or "-")[:19], a.get("reason") or ""]
                      for a in s["alarms"]])
    if s["triggers"]:
        render.table("triggers", ["trigger", "cause", "action", "next firing", "last firing"],
                     [[t["name"], _cause(t["cause"]), _action(t["action"]),
                       t.get("waiting") or ("paused" if t.get("paused") else
                                            (t.get("next_firing") or "-")[:19]),
                       _last_firing(t.get("last_firing"))]
                      for t in s["triggers"]])
    if s["runs"]:
        render.table("last runs", ["run", "status", "started", "started by"],
                     [[r["id"], r["status"], r["created_at"][:19], _started_by(r["started_by"])]
                      for r in s["runs"]])
    else:
        out("  runs      none yet ('modelloop loop run " + s["name"] + "')")


def _last_run(m: dict) -> list[str]:
    if m.get("waiting"):
        return ["-", f"waiting: {m['waiting']}"]
    r = m.get("last_run")
    if r is None:
        return ["never", "-"]
    if r["status"] != "completed":
        return [r["at"][:19], r["status"]]
    if m["kind"] == "model_quality":
        q = r.get("quality")
        return [r["at"][:19], f"{q['metric']} {q['value']:.3f} on {r['labelled']} labels" if q
                else f"{r.get('labelled') or 0} labels: not enough"]
    verdict = "drift" if r["drift"] else "no drift"
    if r["violations"]:
        verdict += f", {r['violations']} violation(s)"
    return [r["at"][:19], verdict]


def _last_firing(f: dict | None) -> str:
    if not f:
        return "-"
    return f"{f['at'][:19]} {f['status']}" + (f": {f['error'][:60]}" if f.get("error") else "")


def _cause(cause: dict | None) -> str:
    cause = dict(cause or {})
    on = cause.pop("on", "?")
    return on + (" " + ", ".join(f"{k}={v}" for k, v in cause.items()) if cause else "")


def _action(action: dict | None) -> str:
    action = dict(action or {})
    do = action.pop("do", "?")
    return do + (" " + ", ".join(f"{k}={v}" for k, v in action.items()) if action else "")


def _started_by(value) -> str:
    """``trigger NAME (its cause)`` for a run a trigger started; ``-`` for one a person did."""
    if not value:
        return "-"
    if isinstance(value, dict) and value.get("trigger"):
        return f"trigger {value['trigger']}" + (f" ({value['cause']})" if value.get("cause")
                                                else "")
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


@click.command(name="list")
@json_option
@pass_ctx
def list_(c: Context, as_json: bool) -> None:
    """List the applied loops."""
    rows = c.ws.loops.list()
    if as_json:
        render.print_json([{"name": r["name"], "applied_at": r["applied_at"].isoformat(),
                            "hash": r["hash"], "base_dir": r["base_dir"],
                            "resources": r["resources"]} for r in rows])
        return
    if not rows:
        render.out.print("no applied loops ('modelloop loop apply loop.yaml')")
        return
    render.table("applied loops", ["loop", "applied", "endpoint", "monitors", "alarms", "folder"],
                 [[r["name"], r["applied_at"].isoformat()[:19],
                   (r["resources"].get("endpoint") or {}).get("name", "-"),
                   len(r["resources"].get("monitors") or []),
                   len(r["resources"].get("alarms") or []), r["base_dir"]] for r in rows])


@click.command()
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@pass_ctx
def delete(c: Context, name: str, yes: bool, as_json: bool) -> None:
    """Delete the applied loop NAME and what apply made for it (its triggers, alarms, monitors
    and the endpoint it created). Registered model versions, datasets and baselines are kept."""
    c.ws.loops.get(name)  # NotFound before asking
    if not yes and not as_json:
        click.confirm(f"delete loop {name!r} and its endpoint, monitors, alarms and triggers?",
                      abort=True)
    changes = c.ws.loops.delete(name)
    if as_json:
        render.print_json(changes)
        return
    print_changes(changes)
