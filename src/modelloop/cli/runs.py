"""``modelloop runs …``: pipeline runs, their approval steps (``runs approve|reject``) and callback
steps (``runs callback``)."""

from __future__ import annotations

import json

import click

from modelloop.cli import render
from modelloop.cli.context import Context, json_option, pass_ctx
from modelloop.cli.executor_option import executor_option
from modelloop.common.status import RunStatus, StepStatus

_MARK = {
    "succeeded": ("✔", "green"),
    "cached": ("↺", "cyan"),
    "failed": ("✘", "red"),
    "skipped": ("–", "dim"),
    "waiting": ("⏸", "yellow"),
    "running": ("▶", "blue"),
    "pending": ("·", "dim"),
    "interrupted": ("!", "red"),
}


def _runs(c: Context):
    return c.ws.runs


def _duration(row: dict) -> str:
    if row.get("duration") is not None:
        return (
            f"{row['duration'] * 1000:.1f}ms" if row["duration"] < 1 else f"{row['duration']:.2f}s"
        )
    if row.get("started_at") and row.get("ended_at"):
        return f"{(row['ended_at'] - row['started_at']).total_seconds():.2f}s"
    return "-"


def _label(status: str) -> str:
    mark, color = _MARK.get(status, ("?", "white"))
    return f"[{color}]{mark} {status}[/{color}]"


def draw_dag(spec: dict, steps: dict[str, dict]):
    """The DAG as a rich Tree: each step under its last upstream step, other parents noted."""
    from rich.tree import Tree

    nodes = spec.get("nodes", [])
    order = [n["name"] for n in nodes]
    tree = Tree(f"[bold]{spec.get('name', 'pipeline')}[/bold]")
    branches = {}
    for n in nodes:
        ups = n["upstream"]
        s = steps.get(n["name"], {})
        text = f"{n['name']}  {_label(s.get('status', 'pending'))}  [dim]{_duration(s)}[/dim]"
        if n["kind"] != "step":
            text += f"  [dim]({n['kind']})[/dim]"
        if n.get("conditions"):
            text += f"  [dim]if {' and '.join(n['conditions'])}[/dim]"
        parent = max(ups, key=order.index) if ups else None
        if len(ups) > 1:
            text += f"  [dim]after {', '.join(u for u in ups if u != parent)}[/dim]"
        branches[n["name"]] = (branches[parent] if parent else tree).add(text)
    return tree


@click.group()
def runs() -> None:
    """Pipeline runs: list, show, explain, logs, resume; approve or reject a waiting step;
    deliver a callback."""


@runs.command("list")
@click.option("--pipeline", help="Only runs of this pipeline.")
@click.option(
    "--status",
    type=click.Choice([s.value for s in RunStatus if s != RunStatus.PENDING]),
)
@click.option("-n", "--limit", type=int, default=50, show_default=True)
@json_option
@pass_ctx
def list_(c: Context, pipeline, status, limit, as_json) -> None:
    """List pipeline runs, newest first."""
    rows = _runs(c).list(pipeline=pipeline, status=status, limit=limit)
    if as_json:
        render.print_json(rows)
    elif not rows:
        render.note("No pipeline runs yet.")
    else:
        render.table(
            "Pipeline runs",
            ["id", "pipeline", "status", "executor", "created", "duration", "error"],
            [
                [
                    r["id"],
                    r["pipeline"],
                    r["status"],
                    r["executor"],
                    r["created_at"],
                    _duration(r),
                    (r["error"] or "")[:80],
                ]
                for r in rows
            ],
        )


@runs.command()
@click.argument("run_id")
@json_option
@pass_ctx
def show(c: Context, run_id: str, as_json: bool) -> None:
    """Show a run: its DAG with each step's state, and the steps' details."""
    svc = _runs(c)
    run = svc.get(run_id)
    steps = svc.steps(run["id"])
    if as_json:
        render.print_json({**run, "steps": steps})
        return
    render.out.print(
        f"[bold]run {run['id']}[/bold] {run['pipeline']} — {_label(run['status'])}"
        f" ({_duration(run)}, executor {run['executor']}, attempt {run['attempt']})"
    )
    if run["error"]:
        render.out.print(f"[red]error:[/red] {run['error']}")
    by = run.get("started_by")
    if by:
        render.out.print(f"started by: trigger {by.get('trigger')} (firing {by.get('firing')}): "
                         f"{by.get('cause')}")
    if run["params"]:
        render.out.print("params: " + ", ".join(f"{k}={v!r}" for k, v in run["params"].items()))
    render.out.print(draw_dag(run["spec"], {s["name"]: s for s in steps}))
    render.table(
        "Steps",
        ["step", "kind", "status", "attempts", "duration", "cache key", "output", "error"],
        [
            [
                s["name"],
                s["kind"],
                s["status"],
                s["attempts"],
                _duration(s),
                (s["cache_key"] or "")[:12],
                ", ".join(f"{o['type']} {o['digest'][:12]}" for o in s["outputs"]),
                (s["error"] or "")[:80],
            ]
            for s in steps
        ],
    )
    for s in steps:
        if s["status"] == StepStatus.WAITING:
            if s["kind"] == "approval":
                render.out.print(
                    f"[yellow]waiting:[/yellow] approve with 'modelloop runs approve {run['id']} "
                    f"{s['name']}' (or 'runs reject … --reason …')"
                )
            else:
                render.out.print(
                    f"[yellow]waiting:[/yellow] step {s['name']} waits for 'modelloop runs "
                    f"callback {s['token']} --success|--failure'"
                )


@runs.command()
@click.argument("run_id")
@click.argument("step")
@json_option
@pass_ctx
def explain(c: Context, run_id: str, step: str, as_json: bool) -> None:
    """Say why STEP of a run hit or missed the cache."""
    result = _runs(c).explain(run_id, step)
    if as_json:
        render.print_json(result)
        return
    render.out.print(f"step {step}: cache {result['decision']} ({result['status']})")
    for reason in result["reasons"]:
        render.out.print(f"  - {reason}")


@runs.command()
@click.argument("run_id")
@click.argument("step")
@pass_ctx
def logs(c: Context, run_id: str, step: str) -> None:
    """Print what a step printed."""
    click.echo(_runs(c).logs(run_id, step).rstrip("\n"))


def _print_result(result, as_json: bool) -> None:
    if as_json:
        render.print_json(
            {
                "run_id": result.run_id,
                "status": result.status,
                "steps": result.steps,
                "error": result.error,
            }
        )
    else:
        render.out.print(f"run {result.run_id}: {_label(result.status)}")
        if result.error:
            render.out.print(f"[red]error:[/red] {result.error}")


_executor_option = executor_option("threads", "Where steps run")


@runs.command()
@click.argument("run_id")
@_executor_option
@click.option("--no-wait", is_flag=True, help="Stop when only approvals or callbacks are left.")
@json_option
@pass_ctx
def resume(c: Context, run_id: str, executor: str, no_wait: bool, as_json: bool) -> None:
    """Continue a failed, interrupted or waiting run, reusing its finished steps."""
    result = _runs(c).resume(run_id, executor=executor, wait=not no_wait)
    _print_result(result, as_json)
    if result.status == RunStatus.FAILED:
        raise SystemExit(1)


def _decide(c: Context, run_id, step, approved, by, reason, no_resume, as_json) -> None:
    svc = _runs(c)
    decision = svc.approve(run_id, step, by=by, reason=reason, approved=approved)
    step = decision["step"]
    verb = "approved" if approved else "rejected"
    if not no_resume and svc.needs_runner(run_id):
        result = svc.resume(run_id, wait=False)
        if not as_json:
            render.out.print(f"step {step} {verb}; run continued")
        _print_result(result, as_json)
        return
    if as_json:
        from modelloop.errors import parse_id

        render.print_json({"run_id": parse_id(run_id, "run", prefix="run-"), **decision})
    else:
        render.out.print(f"step {step} of run {run_id} {verb}; its runner continues the run")


_decision_options = [
    click.argument("run_id"),
    click.argument("step", required=False),
    click.option("--by", help="Who decides (default: the current user)."),
    click.option("--no-resume", is_flag=True, help="Only record the decision."),
    json_option,
]


def _with(options):
    def wrap(f):
        for o in reversed(options):
            f = o(f)
        return f

    return wrap


@runs.command()
@_with(_decision_options)
@click.option("--reason", help="Why (kept with the run).")
@pass_ctx
def approve(c: Context, run_id, step, by, no_resume, as_json, reason) -> None:
    """Approve the waiting approval STEP of run RUN_ID; the run then continues.

    STEP may be left out when the run waits on one approval step (a loop's is named 'approve').
    """
    _decide(c, run_id, step, True, by, reason, no_resume, as_json)


@runs.command()
@_with(_decision_options)
@click.option("--reason", required=True, help="Why (kept with the run).")
@pass_ctx
def reject(c: Context, run_id, step, by, no_resume, as_json, reason) -> None:
    """Reject the waiting approval STEP of run RUN_ID; the run then fails.

    STEP may be left out when the run waits on one approval step.
    """
    _decide(c, run_id, step, False, by, reason, no_resume, as_json)


@runs.command()
@click.argument("token")
@click.option("--success/--failure", required=True, help="How the external work ended.")
@click.option("--output", help="JSON the callback step outputs (on success).")
@click.option("--error", help="What went wrong (on failure).")
@click.option("--no-resume", is_flag=True, help="Only record the outcome.")
@json_option
@pass_ctx
def callback(c: Context, token, success, output, error, no_resume, as_json) -> None:
    """Deliver the outcome of the external work a callback step waits on, by its TOKEN."""
    from modelloop.errors import InvalidInput

    try:
        payload = json.loads(output) if output else None
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"--output is not JSON: {exc}", hint="e.g. --output '{\"ok\": 1}'"
        ) from None
    svc = _runs(c)
    result = svc.report(token, success=success, output=payload, error=error)
    if not no_resume and svc.needs_runner(result["run_id"]):
        _print_result(svc.resume(result["run_id"], wait=False), as_json)
    elif as_json:
        render.print_json(result)
    else:
        render.out.print(f"reported to step {result['step']} of run {result['run_id']}")


def deprecated_alias(command: click.Command, old: str, new: str) -> click.Command:
    """``command`` under the name it used to have: hidden from --help, it still works and says
    (one line on stderr) what it is called now."""

    def callback(*args, **kwargs):
        render.note(f"note: 'modelloop {old}' is deprecated; use 'modelloop {new}'")
        return command.callback(*args, **kwargs)

    return click.Command(
        old.split()[-1], callback=callback, params=command.params, help=command.help, hidden=True
    )


runs.add_command(deprecated_alias(callback, "runs report", "runs callback"))
#: The top-level spellings of before (``modelloop approve RUN approve`` read as a typo).
approve_alias = deprecated_alias(approve, "approve", "runs approve")
reject_alias = deprecated_alias(reject, "reject", "runs reject")
