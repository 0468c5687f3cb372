"""``modelloop loop validate|run`` (declarative retraining loops) and ``modelloop demo``."""

from __future__ import annotations

import time
from pathlib import Path

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
    """Run the loop in SPEC once: ingest, validate, train, evaluate, gate, register, promote."""
    result = c.ws.loops.run(
        spec, executor=executor, wait=wait, on_progress=None if as_json else _live_steps()
    )
    if as_json:
        render.print_json(result.to_dict())
    else:
        print_summary(result)
    if result.status == RunStatus.FAILED:
        raise SystemExit(1)


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


# -- the demo --------------------------------------------------------------------------------------
DEMO_LOOP = """\
# The demo's loop: loan applications arrive daily; retrain on the newest days, promote only a
# candidate that beats the champion on the same freshest holdout rows.
name: loans
data:
  dataset: loans
  ingest: [incoming/]
  event_time_column: applied_at
  window: 2                 # train on the newest two days
target: approved
split: {{method: time, fraction: 0.25}}
quality:
  ignore: [application_id, applied_at]
train:
  algorithm: hist_gradient_boosting
  params: {{max_iter: {max_iter}}}
evaluate:
  metric: roc_auc
  gate:
    - min_absolute_change: 0.005    # must beat the champion by 0.005 AUC
register:
  approval: auto
deploy:
  endpoint: loans
  strategy: all-at-once
"""


@click.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False))
@click.option("--days", type=click.IntRange(2, 60), default=6, show_default=True,
              help="Daily batches to run the loop on.")
@click.option("--rows", "rows_per_day", type=click.IntRange(200, 1_000_000), default=1500,
              show_default=True, help="Loan applications per day.")
@click.option("--drift-day", type=int, default=None,
              help="Day (1-based) from which the approval rule changes (default: the middle).")
@executor_option("threads", "Where steps run")
@json_option
def demo(directory, days, rows_per_day, drift_day, executor, as_json) -> None:
    """Run the retraining loop on simulated daily loan applications with concept drift.

    \b
    Creates a workspace in DIRECTORY (default: a new temporary folder), writes one day of loan
    applications at a time (River's Agrawal generator; the approval rule switches on the drift
    day) and runs the loop after each: the first run trains and registers a champion, later
    runs retrain and promote only when the candidate beats the champion.
    """
    import tempfile

    started = time.perf_counter()  # the demo's time, printed at the end, counts from here
    from modelloop.data.agrawal import write_days
    from modelloop.workspace import Workspace

    root = Path(directory or tempfile.mkdtemp(prefix="modelloop-demo-")).resolve()
    if (root / "modelloop.toml").exists():
        from modelloop.errors import InvalidInput

        raise InvalidInput(f"{root} already holds a workspace",
                           hint="give the demo a new or empty folder (or none for a temporary one)")
    ws = Workspace.init(root)
    ws.jobs.warm_up()  # the job server imports while the demo writes its first day
    drift = (days // 2 + 1) if drift_day is None else drift_day
    spec_path = root / "loop.yaml"
    spec_path.write_text(DEMO_LOOP.format(max_iter=60))
    if not as_json:
        render.out.print(f"Workspace [bold]{root}[/bold]; loop spec {spec_path.name}")
        render.out.print(f"{days} days of {rows_per_day:,} loan applications; the approval rule "
                         f"changes on day {drift} (concept drift)")
    rows = []
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    # a live bar in a terminal; piped (to a file, tee, a CI log) one line per step as it starts
    live = render.err.is_terminal and not as_json
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                        TextColumn("{task.completed}/{task.total} days"), TimeElapsedColumn(),
                        console=render.err, transient=True, disable=not live)

    def say(line: str) -> None:
        if live:
            progress.update(task, description=line)
        elif not as_json:
            render.err.print(line)

    with progress:
        task = progress.add_task("day 1", total=days)
        for day in range(1, days + 1):
            day_started = time.perf_counter()
            say(f"day {day}: new applications")
            write_days(root / "incoming", day, rows_per_day, drift_day=drift - 1)
            started_steps: set[str] = set()

            def show(steps, day=day, started_steps=started_steps):
                for s in steps:
                    if s["status"] == StepStatus.RUNNING and s["name"] not in started_steps:
                        started_steps.add(s["name"])
                        say(f"day {day}: {s['name']}")

            result = ws.loops.run(spec_path, executor=executor, on_progress=show)
            ev = result.evaluation or {}
            if not as_json:
                (progress.console if live else render.err).print(
                    f"day {day}: {result.status}; candidate AUC {_auc(ev.get('candidate'))}, "
                    f"champion AUC {_auc(ev.get('champion'))}"
                    + (f"; promoted {result.promoted['ref']}" if result.promoted else "")
                )
            rows.append({
                "day": day,
                "rows": (result.data or {}).get("new_rows"),
                "candidate": ev.get("candidate"),
                "champion": ev.get("champion"),
                "promoted": bool(result.promoted),
                "champion_version": result.champion,
                "status": result.status,
                "why": "; ".join(ev.get("reasons") or []) or result.error,
                "drift": day >= drift,
                "run": result.run_id,
                "seconds": round(time.perf_counter() - day_started, 2),
            })
            progress.advance(task)
            if result.status != RunStatus.SUCCEEDED:
                break
    elapsed = time.perf_counter() - started
    if as_json:
        render.print_json({"workspace": str(root), "seconds": round(elapsed, 2), "days": rows})
    else:
        render.table(
            f"Loop 'loans' over {len(rows)} days",
            ["day", "rows", "candidate AUC", "champion AUC", "promoted?", "champion", "run",
             "time"],
            [[f"{r['day']}" + (" (drift)" if r["day"] == drift else ""), r["rows"],
              _auc(r["candidate"]), _auc(r["champion"]),
              "[green]yes[/green]" if r["promoted"] else "no",
              r["champion_version"], r["run"], f"{r['seconds']:.1f}s"] for r in rows],
        )
        render.out.print(f"Demo finished in {elapsed:.1f}s ({len(rows)} days)")
        render.out.print(
            f"Next: cd {root} && modelloop runs list && modelloop models show loans "
            "(or edit loop.yaml and 'modelloop loop run loop.yaml')"
        )
    failed = [r for r in rows if r["status"] != RunStatus.SUCCEEDED]
    if failed:
        from modelloop.errors import ModelloopError

        raise ModelloopError(f"the loop did not succeed on day {failed[0]['day']}: "
                             f"{failed[0]['why']}",
                             hint=f"see 'modelloop -w {root} runs show {failed[0]['run']}'")


def _auc(value) -> str:
    return "-" if value is None else f"{value:.4f}"
