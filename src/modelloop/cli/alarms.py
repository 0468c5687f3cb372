"""``modelloop alarms …`` and ``metrics …``: metric series and the alarms on them."""

from __future__ import annotations

import click

from modelloop.cli import render
from modelloop.cli.context import Context, json_option, pass_ctx


def print_alarms_changed(results: list[dict]) -> None:
    for a in results:
        if a["changed"]:
            render.out.print(f"alarm [bold]{a['alarm']}[/bold] → {a['state']}: {a['reason']}")
            for act in a["actions"]:
                render.out.print(f"  {act['action']}: {'ok' if act['ok'] else 'FAILED'} "
                                 f"{act['detail']}")


# -- alarms and metrics ---------------------------------------------------------------------------
def _dims(items: tuple[str, ...]) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r}: use KEY=VALUE", param_hint="--dim")
        out[key] = value
    return out


@click.group()
def alarms() -> None:
    """Alarms on metric series: threshold, M of N datapoints, missing data, actions."""


@alarms.command("create")
@click.argument("name")
@click.option("--metric", required=True, help="Metric name, e.g. drift, violations, quality.accuracy.")
@click.option("--dim", "dims", multiple=True, help="Series dimension KEY=VALUE (e.g. monitor=m1).")
@click.option("--threshold", type=float, required=True)
@click.option("--comparison", default=">", show_default=True, help="> >= < <= or CloudWatch's names.")
@click.option("--statistic", default="average", show_default=True,
              type=click.Choice(["average", "max", "min", "sum", "count"]))
@click.option("--period", type=int, default=3600, show_default=True, help="Seconds per datapoint.")
@click.option("--evaluation-periods", "-N", type=int, default=1, show_default=True)
@click.option("--datapoints-to-alarm", "-M", type=int, help="Breaching datapoints needed (default N).")
@click.option("--missing-data", default="missing", show_default=True,
              type=click.Choice(["missing", "ignore", "breaching", "notBreaching"]))
@click.option("--action", "actions", multiple=True,
              help="webhook:URL or rollback:ENDPOINT (an event is always appended).")
@json_option
@pass_ctx
def alarms_create(c: Context, name, metric, dims, threshold, comparison, statistic, period,
                  evaluation_periods, datapoints_to_alarm, missing_data, actions, as_json) -> None:  # fmt: skip
    """Create alarm NAME on a metric series."""
    rec = c.ws.monitoring.alarms.create(
        name, metric, threshold=threshold, comparison=comparison, dimensions=_dims(dims),
        statistic=statistic, period=period, evaluation_periods=evaluation_periods,
        datapoints_to_alarm=datapoints_to_alarm, missing_data=missing_data, actions=list(actions),
    )  # fmt: skip
    if as_json:
        return render.print_json(rec)
    render.out.print(f"Created alarm [bold]{name}[/bold] on {metric} {rec['dimensions']}: "
                     f"{rec['datapoints_to_alarm']} of {rec['evaluation_periods']} × {period}s "
                     f"{rec['comparison']} {threshold:g}")  # fmt: skip


@alarms.command("list")
@json_option
@pass_ctx
def alarms_list(c: Context, as_json: bool) -> None:
    """List alarms and their states."""
    rows = c.ws.monitoring.alarms.list()
    if as_json:
        return render.print_json(rows)
    render.table("Alarms", ["name", "metric", "dimensions", "state", "since", "reason"],
                 [[a["name"], a["metric"], a["dimensions"], a["state"], a["state_updated_at"],
                   a["state_reason"]] for a in rows])  # fmt: skip


@alarms.command("history")
@click.argument("name")
@json_option
@pass_ctx
def alarms_history(c: Context, name: str, as_json: bool) -> None:
    """An alarm's state changes and action outcomes, newest first."""
    rows = c.ws.monitoring.alarms.history(name)
    if as_json:
        return render.print_json(rows)
    render.table(f"History of {name}", ["time", "kind", "from", "to", "reason"],
                 [[h["time"], h["kind"], h["old_state"], h["new_state"], h["reason"]]
                  for h in rows])  # fmt: skip


@alarms.command("evaluate")
@click.argument("name", required=False)
@json_option
@pass_ctx
def alarms_evaluate(c: Context, name: str | None, as_json: bool) -> None:
    """Evaluate one alarm (or all) now, running actions of those entering ALARM."""
    results = c.ws.monitoring.alarms.evaluate(name)
    if as_json:
        return render.print_json(results)
    render.table("Alarms", ["alarm", "state", "changed", "reason"],
                 [[r["alarm"], r["state"], r["changed"], r["reason"]] for r in results])
    print_alarms_changed(results)


@alarms.command("delete")
@click.argument("name")
@pass_ctx
def alarms_delete(c: Context, name: str) -> None:
    """Delete an alarm and its history."""
    c.ws.monitoring.alarms.delete(name)
    render.out.print(f"Deleted alarm {name}")


@click.group()
def metrics() -> None:
    """Metric series: numbers over time with dimensions (drift, violations, accuracy, …)."""


@metrics.command("list")
@click.option("--prefix", default="", help="Only series whose name starts with this.")
@json_option
@pass_ctx
def metrics_list(c: Context, prefix: str, as_json: bool) -> None:
    """List metric series."""
    rows = c.ws.monitoring.metric_series(prefix)
    if as_json:
        return render.print_json(rows)
    render.table("Metric series", ["name", "dimensions", "points", "last"],
                 [[r["name"], r["dimensions"], r["points"], r["last"]] for r in rows])


@metrics.command("show")
@click.argument("name")
@click.option("--dim", "dims", multiple=True, help="Series dimension KEY=VALUE.")
@click.option("--since", help="From (7d, 12h, ISO time).")
@json_option
@pass_ctx
def metrics_show(c: Context, name: str, dims, since, as_json: bool) -> None:
    """Show a metric series' points."""
    rows = c.ws.monitoring.metric(name, _dims(dims), since=since)
    if as_json:
        return render.print_json(rows)
    render.table(f"{name} {_dims(dims)}", ["time", "value"], [[r["time"], r["value"]] for r in rows])


@metrics.command("put")
@click.argument("name")
@click.argument("value", type=float)
@click.option("--dim", "dims", multiple=True, help="Series dimension KEY=VALUE.")
@pass_ctx
def metrics_put(c: Context, name: str, value: float, dims) -> None:
    """Record one point of a metric series now (e.g. from a script)."""
    c.ws.monitoring.put_metric(name, value, _dims(dims))
    render.out.print(f"{name} {_dims(dims)} = {value:g}")
