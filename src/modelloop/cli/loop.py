"""``modelloop loop validate|run`` (declarative retraining loops)."""

from __future__ import annotations

import click

from modelloop.cli import render
from modelloop.cli.context import Context, json_option, pass_ctx
from modelloop.cli.executor_option import executor_option
from modelloop.common.status import RunStatus, StepStatus

_MARK = {
    "succeeded": "[green]✔[/green]",
    "cached": "[cyan]↺ cached[/cyan]",
    "failed": "[red]✘ failed[/red]",
    "skipped": "[dim]– skipped[/dim]",
    "waiting": "[yellow]⏸ waiting[/yellow]",
    "running": "[blue]▶[/blue]",
    "pending": "[dim]·[/dim]",
}


@click.group()
def loop() -> None:
    """Declarative retraining loops: a loop.yaml compiled to a pipeline.

    \b
    A loop ingests new data, checks its quality against the champion's training data, trains
    (or tunes) a candidate, scores candidate and champion on the same holdout, and only when
    the gate passes registers, approves (auto or manual), promotes and deploys it.
    """


@loop.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@json_option
@pass_ctx
def validate(c: Context, spec: str, as_json: bool) -> None:
    """Check SPEC (a loop.yaml) against its schema and the workspace, without running it."""
    parsed = c.ws.loops.validate(spec)
    pipe = c.ws.loops.compile(spec)
    steps = list(pipe.order())
    if as_json:
        render.print_json(
            {"valid": True, "spec": parsed.model_dump(mode="json", by_alias=True), "steps": steps}
        )
        return
    trainer = "tune" if parsed.tune else "train"
    algorithm = (parsed.tune or parsed.train).algorithm
    render.out.print(f"[green]✔[/green] {spec} is a valid loop [bold]{parsed.name}[/bold]")
    render.out.print(
        f"  data {parsed.data.dataset}"
        + (f" (+ ingest {', '.join(parsed.data.ingest)})" if parsed.data.ingest else "")
        + f" → target {parsed.target}; {trainer} {algorithm}; "
        f"model {parsed.model_name} ({parsed.registration.approval} approval)"
    )
    render.out.print(f"  steps: {' → '.join(steps)}")


@loop.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@executor_option("threads", "Where steps run")
@click.option("--wait", is_flag=True, help="Block at a manual approval until it is decided.")
@json_option
@pass_ctx
def run(c: Context, spec: str, executor: str, wait: bool, as_json: bool) -> None:
    """Run the loop in SPEC once: ingest, validate, train, evaluate, gate, register, promote.

    SPEC is a loop.yaml, or the name of an applied loop ('loop apply'), whose endpoint,
    monitors and alarms are then brought in line with the run."""
    result = c.ws.loops.run(
        spec, executor=executor, wait=wait, on_progress=None if as_json else _live_steps()
    )
    if as_json:
        render.print_json({**result.to_dict(), **result.extra})
    else:
        print_summary(result)
        for ch in result.extra.get("applied") or []:
            render.out.print(f"  applied   {ch['kind']}/{ch['name']} {ch['action']}")
        if result.extra.get("apply_error"):
            render.err.print(f"  not applied after the run: {result.extra['apply_error']}")
    if result.status == RunStatus.FAILED:
        raise SystemExit(1)


from modelloop.cli.loop_apply import apply, delete, list_, status  # noqa: E402 - the group's

loop.add_command(apply)
loop.add_command(list_)
loop.add_command(status)
loop.add_command(delete)


def _live_steps():
    """A progress callback printing each step as it changes state (stderr, for a person)."""
    shown: dict[str, str] = {}

    def show(steps: list[dict]) -> None:
        for s in steps:
            status = s["status"]
            if shown.get(s["name"]) == status or status == StepStatus.PENDING:
                continue
            shown[s["name"]] = status
            took = f" [dim]{s['duration']:.1f}s[/dim]" if s.get("duration") else ""
            render.err.print(f"  {s['name']:<9} {_MARK.get(status, status)}{took}")

    return show


def print_summary(result) -> None:
    ev = result.evaluation or {}
    render.out.print(
        f"Run [bold]{result.run_id}[/bold] {result.status} in {result.duration:.1f}s"
        + (f": {result.error}" if result.error else "")
    )
    if result.data:
        d = result.data
        render.out.print(f"  data      {d['ref']} ({d['rows']:,} rows, +{d['new_rows']:,} new)")
    if ev:
        champ = "-" if ev.get("champion") is None else f"{ev['champion']:.4f}"
        render.out.print(
            f"  evaluate  {ev['metric']}: candidate {ev['candidate']:.4f}, champion {champ} "
            f"on {ev['holdout_rows']:,} holdout rows → gate "
            + ("[green]passed[/green]" if ev["passed"] else "[yellow]failed[/yellow]")
        )
        for reason in ev.get("reasons") or []:
            render.out.print(f"            {reason}")
    if result.promoted:
        render.out.print(f"  promoted  {result.promoted['ref']} is now {result.promoted['alias']}")
    if result.deployed:
        render.out.print(
            f"  deployed  {result.deployed.get('endpoint')}"
            if result.deployed.get("deployed") else f"  {result.deployed.get('why')}"
        )
    if result.waiting_for:
        render.out.print(
            f"  [yellow]waiting[/yellow] for approval: modelloop runs approve {result.run_id}  "
            f"(or: modelloop runs reject {result.run_id} --reason …)"
        )
    render.out.print(f"  champion  {result.champion or 'none yet'}")
