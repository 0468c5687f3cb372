"""``modelloop controller``: the process that closes the loop (events, schedules, monitors,
alarms, triggers), in the foreground with one progress line per tick. ``modelloop up`` is in
:mod:`modelloop.cli.up`."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading

import click

from modelloop.cli import render
from modelloop.cli.context import Context, json_option, pass_ctx


@contextlib.contextmanager
def graceful_stop(what: str = "stopping after this tick", say=render.note):
    """An event SIGTERM and SIGINT set (the first time: the work under way finishes); a second
    SIGINT interrupts at once, as Ctrl-C twice does. ``say`` tells the person."""
    stop = threading.Event()

    def on_signal(signum, _frame):
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()
        say(f"{signal.Signals(signum).name}: {what}")

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def tick_line(tick, lease: dict | None) -> str:
    """One line a person reads: when, whether this controller leads, and what the tick did."""
    when = tick.time.astimezone().strftime("%H:%M:%S")
    if not tick.leading:
        holder = f"leader {lease['holder']}" if lease and not lease.get("expired") else \
            "no leader yet"  # fmt: skip
        return f"{when} #{tick.number} [dim]standby ({holder})[/dim]"
    parts = [f"[bold green]leading[/bold green] (term {tick.term})"]
    if tick.events:
        parts.append(f"{tick.events} event{'s' * (tick.events != 1)}")
    for f in tick.firings:
        parts.append(f"fired [bold]{f.get('trigger', '?')}[/bold] ({f.get('cause_key', '')})")
    for a in tick.actions:  # claimed (running), or ended without running (skipped, cancelled)
        what = "started" if a.get("status") == "running" else a.get("status", "?")
        parts.append(f"{what} [bold]{a.get('trigger', '?')}[/bold] ({a.get('cause_key', '')})")
    for r in tick.monitor_runs:
        what = f"run #{r['id']}, {r.get('n_violations', 0)} violation(s)" if "id" in r else \
            f"[red]{r.get('error', 'failed')}[/red]"  # fmt: skip
        parts.append(f"monitor {r['monitor']}: {what}")
    for a in tick.alarms:
        parts.append(f"alarm [bold]{a['alarm']}[/bold] → {a['state']}")
    if tick.lost_lead:
        parts.append("[yellow]lost the lease: stopped[/yellow]")
    if not tick.busy:
        parts.append("[dim]idle[/dim]")
    line = f"{when} #{tick.number} " + " · ".join(parts) + f" [dim]({tick.seconds:.2f} s)[/dim]"
    for e in tick.errors:
        line += f"\n  [red]error[/red] {render_escape(e)}"
    return line


def show_status(found: dict, as_json: bool) -> None:
    if as_json:
        return render.print_json(found)
    lease, group = found["lease"], found["events"]
    if lease is None:
        render.out.print("no controller has run on this workspace")
    else:
        state = "[yellow]nobody leads[/yellow] (last" if lease["expired"] else "leader"
        render.out.print(f"{state} [bold]{lease['holder']}[/bold], term {lease['term']}, since "
                         f"{render.fmt(lease['acquired_at'])}, lease until "
                         f"{render.fmt(lease['expires_at'])}" + (")" if lease["expired"] else ""))
    if group is not None:
        pending = {m: n for m, n in group["pending"].items() if n}
        render.out.print(f"events: handled up to #{group['position']}, "
                         + (", ".join(f"{n} unacknowledged by {m}" for m, n in pending.items())
                            or "none unacknowledged"))  # fmt: skip


def render_escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


@click.command()
@click.option("--interval", type=float, default=2.0, show_default=True, metavar="SECONDS",
              help="Seconds between ticks.")
@click.option("--lease-seconds", type=float, default=10.0, show_default=True,
              help="How long leadership lasts unrenewed: a standby takes over this long after "
                   "the leader died (renewed four times per lease).")
@click.option("--grace", type=float, default=30.0, show_default=True, metavar="SECONDS",
              help="On stop, how long actions still running here may take to end; one that "
                   "does not is continued by the next leader (its run resumed).")
@click.option("--ticks", type=int, help="Stop after this many ticks.")
@click.option("--quiet", is_flag=True, help="Print only ticks that did something.")
@click.option("--status", is_flag=True, help="Show who leads (and the events not yet "
              "acknowledged) and exit.")
@json_option
@pass_ctx
def controller(c: Context, interval: float, lease_seconds: float, grace: float,
               ticks: int | None, quiet: bool, status: bool, as_json: bool) -> None:  # fmt: skip
    """Close the loop: consume events, run due schedules and monitors, evaluate alarms, fire
    triggers and run their actions. Runs in the foreground until SIGTERM or Ctrl-C (the tick
    under way finishes, then the lease is let go).

    Several controllers may run against one workspace (on several machines, with PostgreSQL):
    one leads, the others stand by and take over within --lease-seconds of its death.
    """
    from modelloop.errors import InvalidInput

    if status:
        return show_status(c.ws.controller_status(), as_json)
    if not interval > 0:
        raise InvalidInput(f"--interval must be positive, not {interval}")
    ws = c.local_ws

    def on_change(state: str) -> None:
        if not as_json:
            render.note(f"controller {ctl.leader.holder}: {state}")

    ctl = ws.controller(lease_seconds=lease_seconds, on_change=on_change)
    click.echo(f"modelloop: controller {ctl.leader.holder} on {ws.store.safe_url}, every "
               f"{interval:g} s (Ctrl-C to stop)", err=True)  # fmt: skip
    last_standby = [None]

    def show(tick) -> None:
        if as_json:
            render.print_json(tick.as_dict())
            return
        if not tick.leading:
            lease = ctl.leader.current()
            holder = lease and lease["holder"]
            if quiet and holder == last_standby[0]:
                return
            last_standby[0] = holder
            render.out.print(tick_line(tick, lease))
        elif tick.busy or not quiet:
            render.out.print(tick_line(tick, None))

    with graceful_stop() as stop:
        ctl.run(interval=interval, stop=stop, max_ticks=ticks, on_tick=show, grace=grace)
    left = ctl.unfinished()
    if not as_json:
        render.note(f"controller {ctl.leader.holder} stopped after {ctl.ticks} ticks")
    if left:
        # The actions' threads (and their pipelines' executors) would hold the exit until they
        # end: leave now instead. Their runs are marked interrupted on sight, and the next
        # leader adopts each firing and resumes its run from the finished steps.
        render.note(f"{len(left)} action(s) still running after --grace "
                    f"({', '.join(f['trigger'] for f in left)}): the next controller continues "
                    "them")  # fmt: skip
        c.close()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
