"""``modelloop demo``: the loop closes itself. Daily files land in a watched folder, an endpoint
serves a steady load of real requests with capture on and gets their ground truth later; on the
drift day the monitors raise their alarms, an alarm trigger retrains, the candidate passes the
gate and a canary rollout moves traffic while requests keep flowing. Nobody types a command.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

from modelloop.cli import render
from modelloop.cli.context import json_option

#: The demo's summary, written into its folder (the same as --json prints).
SUMMARY_FILE = "demo-summary.json"


@click.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False))
@click.option("--days", type=click.IntRange(2, 30), default=4, show_default=True,
              help="Days of loan applications.")
@click.option("--rows", "rows_per_day", type=click.IntRange(200, 100_000), default=1500,
              show_default=True, help="Loan applications per daily file.")
@click.option("--drift-day", type=int, default=None,
              help="Day (1-based, at least 2) from which applicants and the approval rule change "
                   "(default: the third, or the last of fewer days).")
@click.option("--day-seconds", type=click.FloatRange(1, 600), default=6.0, show_default=True,
              help="How long a day lasts (the drift day lasts until the new champion serves).")
@click.option("--rate", type=click.FloatRange(1, 1000), default=30.0, show_default=True,
              help="Requests per second to the endpoint.")
@click.option("--online", is_flag=True,
              help="The other update mode: an online model learning every labelled event, "
                   "against a frozen batch champion, through a switch of the approval rule.")
@click.option("--events", type=click.IntRange(100, 1_000_000), default=4000, show_default=True,
              help="--online: labelled events in the stream.")
@click.option("--switch-at", type=click.IntRange(1), default=None,
              help="--online: the event after which the approval rule switches (default: "
                   "three eighths of the stream).")
@click.option("--window", type=click.IntRange(10, 100_000), default=250, show_default=True,
              help="--online: events per window of the learner's metrics.")
@click.option("--event-rate", type=click.FloatRange(10, 1_000_000), default=500.0,
              show_default=True, help="--online: labelled events per second posted.")
@json_option
@click.pass_context
def demo(ctx, directory, days, rows_per_day, drift_day, day_seconds, rate, online, events,
         switch_at, window, event_rate, as_json) -> None:
    """Watch modelloop keep a model fresh by itself, with no command typed.

    \b
    Creates a workspace in DIRECTORY (default: a new temporary folder), applies the demo's loop
    (loop.yaml: a watched folder, a drift and a model-quality monitor with alarms, alarm
    triggers that retrain, a canary deploy), starts the endpoint server and the controller in the
    background, and plays the days: a CSV of loan applications lands in incoming/ each day
    (River's Agrawal generator) while requests flow and their ground truth comes back later.
    From the drift day on, applicants are richer and the approval rule is another one.

    \b
    --online plays the other update mode: a batch model trained on the first approval rule is
    the champion; an online endpoint learns every labelled event posted to it (its learner
    started by 'modelloop serve'), scored on the same events as that frozen champion; after
    --switch-at the rule is another one: the online model recovers, the frozen one does not.
    """
    started = time.perf_counter()
    batch_only = ("days", "rows_per_day", "drift_day", "day_seconds", "rate")
    online_only = ("events", "switch_at", "window", "event_rate")
    given = [p for p in (online_only if not online else batch_only)
             if ctx.get_parameter_source(p) == click.core.ParameterSource.COMMANDLINE]
    if given:
        names = ", ".join("--" + p.replace("_per_day", "").replace("_", "-") for p in given)
        raise click.UsageError(f"{names} {'go' if len(given) > 1 else 'goes'} "
                               f"{'without' if online else 'with'} --online")
    if online:  # checked before a temporary folder is made for it
        switch_at = _switch(events, switch_at, window)
    root = Path(directory or tempfile.mkdtemp(prefix="modelloop-demo-")).resolve()
    if (root / "modelloop.toml").exists():
        from modelloop.errors import InvalidInput

        raise InvalidInput(f"{root} already holds a workspace",
                           hint="give the demo a new or empty folder (or none for a temporary one)")
    if online:
        return _online(root, started, events=events, switch_at=switch_at, window=window,
                       rate=event_rate, as_json=as_json)
    from modelloop.cli.demo_run import DemoRun

    drift = min(3, days) if drift_day is None else drift_day
    if not 2 <= drift <= days:
        from modelloop.errors import InvalidInput

        raise InvalidInput(f"--drift-day {drift} is not between 2 and --days {days}",
                           hint="the first day trains the first champion; drift comes later")
    run = DemoRun(root, days=days, rows=rows_per_day, drift_day=drift, day_seconds=day_seconds,
                  rate=rate, quiet=as_json)
    summary = run.play()
    summary["seconds"] = round(time.perf_counter() - started, 2)
    _finish(root, summary, show_summary, as_json)


def _finish(root: Path, summary: dict, show, as_json: bool) -> None:
    """Print the summary (a table, or JSON for scripts) and keep it in the demo's folder as
    ``demo-summary.json``, so what a person watched can be read back by a script too."""
    import json

    from modelloop.common.jsonable import to_jsonable

    path = root / SUMMARY_FILE
    path.write_text(json.dumps(to_jsonable(summary, nonfinite="keep"), indent=2) + "\n")
    if as_json:
        render.print_json(summary)
        return
    show(summary)
    render.err.print(f"[dim]the summary as JSON: {path}[/dim]")


def _switch(events: int, switch_at: int | None, window: int) -> int:
    """The event after which the rule switches: a whole window before it, two after it."""
    switch = events * 3 // 8 if switch_at is None else switch_at
    if not window <= switch <= events - 2 * window:
        from modelloop.errors import InvalidInput

        raise InvalidInput(f"--switch-at {switch} leaves no whole window before it or two after "
                           f"it in {events} events (--window {window})",
                           hint="a longer stream (--events), an earlier switch or smaller windows")
    return switch


def _online(root: Path, started: float, *, events: int, switch_at: int, window: int,
            rate: float, as_json: bool) -> None:
    from modelloop.cli.demo_online import OnlineDemo, show_online

    summary = OnlineDemo(root, events=events, switch_at=switch_at, window=window, rate=rate,
                         quiet=as_json).play()
    summary["seconds"] = round(time.perf_counter() - started, 2)
    _finish(root, summary, show_online, as_json)


def show_summary(summary: dict) -> None:
    def auc(v):
        return "-" if v is None else f"{v:.3f}"

    rows = []
    for d in summary["days"]:
        rows.append([
            f"{d['day']}" + (" (drift)" if d["day"] == summary["drift_day"] else ""),
            f"{d['rows']:,}" if d["rows"] is not None else "-",
            "-" if d["drift"] is None else
            f"[yellow]yes[/yellow] ({len(d['drifted_columns'])} columns)" if d["drifted_columns"]
            else "no",
            ", ".join(a.removeprefix("loans-") for a in d["alarms"]) or "-",
            auc(d["champion_auc"]),
            auc(d["candidate_auc"]),
            d["promoted"] or "no",
            f"{d['requests']:,}",
            f"[red]{d['failures']}[/red]" if d["failures"] else "0",
            "-" if d["reaction_seconds"] is None else f"{d['reaction_seconds']:.1f}s",
        ])
    render.table(
        "The loop, day by day",
        ["day", "rows", "drift", "alarm", "champion AUC", "candidate AUC", "promoted",
         "requests", "failures", "drift → champion"],
        rows,
    )
    r = summary.get("reaction")
    if r:
        parts = ", ".join(f"{k} {v:.1f}s" for k, v in r["stages"].items() if v is not None)
        render.out.print(f"Reaction: the drifted file landed → the new champion served 100% in "
                         f"[bold]{r['total']:.1f}s[/bold] ({parts})")
    render.out.print(
        f"Demo finished in {summary['seconds']:.1f}s: {summary['requests']:,} requests served, "
        f"{summary['failures']} failed. Champion: {summary['champion']}."
    )
    render.out.print(f"Next: cd {summary['workspace']} && modelloop runs list && "
                     "modelloop alarms list && modelloop endpoint show loans")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_up(root: Path, port: int, log_path: Path, *, interval: float) -> subprocess.Popen:
    """``modelloop up`` for the workspace (the controller, the endpoint server and the job
    workers: one process tree), its lines in ``log_path``; returns once the server listens."""
    return _start(root, ["up", "--port", str(port), "--interval", str(interval)], port,
                  log_path, "up")


def start_serve(root: Path, port: int, log_path: Path) -> subprocess.Popen:
    """``modelloop serve`` for the workspace (the endpoint server and a learner process per
    online endpoint), its lines in ``log_path``; returns once the server listens."""
    return _start(root, ["serve", "--port", str(port)], port, log_path, "serve")


def _start(root: Path, args: list[str], port: int, log_path: Path,
           what: str) -> subprocess.Popen:
    log = open(log_path, "ab")  # noqa: SIM115 - the process tree writes to it until stopped
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelloop", "-w", str(root), *args],
        stdout=log, stderr=subprocess.STDOUT, cwd=root,
        env={**os.environ, "COLUMNS": "200"},
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            from modelloop.errors import ModelloopError

            raise ModelloopError(f"'modelloop {what}' exited ({proc.returncode})",
                                 hint=f"see {log_path}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.1)
    stop_up(proc)
    from modelloop.errors import ModelloopError

    raise ModelloopError("the endpoint server did not start within 120 s", hint=f"see {log_path}")


def stop_up(proc: subprocess.Popen) -> None:
    """SIGTERM: ``up`` stops the controller, then the server (requests in flight answered);
    ``serve`` stops its learners (a last checkpoint each) and the server."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
