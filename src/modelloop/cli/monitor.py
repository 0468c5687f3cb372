"""``modelloop monitor …``: scheduled checks of datasets or captured traffic, model quality."""

from __future__ import annotations

import click

from modelloop.cli import render
from modelloop.cli.alarms import print_alarms_changed
from modelloop.cli.context import Context, json_option, pass_ctx
from modelloop.cli.quality import load_check_config, print_check


# -- monitors -------------------------------------------------------------------------------------
@click.group()
def monitor() -> None:
    """Monitors: scheduled checks of datasets or captured traffic, model quality from labels."""


@monitor.command("create")
@click.argument("name")
@click.option("--dataset", help="Watch this dataset's versions.")
@click.option("--endpoint", help="Watch this endpoint's captured traffic.")
@click.option("--variant", help="Only this variant's traffic.")
@click.option("--baseline", "baseline_ref", required=True, help="Baseline name or DATASET@VERSION.")
@click.option("--schedule", help="Cron schedule, e.g. '0 * * * *' (every hour).")
@click.option("--after-ingest", is_flag=True, help="Run after every new version of --dataset.")
@click.option("--window", help="How much traffic a run looks at (endpoint monitors; default 1h).")
@click.option("--model", help="Model version served (MODEL@N): its task and training metrics.")
@click.option("--exclude", multiple=True, help="Baseline column not to check (e.g. the target).")
@click.option("--detector", "detectors", multiple=True, type=click.Choice(["adwin", "pagehinkley", "ddm"]),
              help="River drift detector on the error stream of labelled predictions.")
@click.option("--quality-period", type=int, default=3600, show_default=True,
              help="Seconds per model-quality window.")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
              help="Check configuration (YAML/JSON).")
@click.option("--bias-facet", metavar="COLUMN[=V|>T]",
              help="Bias drift on labelled traffic for this facet (series bias.<METRIC>).")
@click.option("--bias-label", metavar="VALUES|>T", help="The positive label, e.g. 1 (with --bias-facet).")
@click.option("--bias-metric", "bias_metrics", multiple=True, metavar="NAME",
              help="Post-training metric to watch (repeat; default DI, DPPL, AD, RD).")
@click.option("--bias-baseline", "bias_baseline", multiple=True, metavar="NAME=VALUE",
              help="A metric's value at training time: farther from fair is a violation.")
@click.option("--attribution-drift", is_flag=True,
              help="SHAP importances of --model on traffic vs the baseline data, by NDCG.")
@click.option("--attribution-threshold", type=click.FloatRange(0, 1), default=0.9,
              show_default=True, help="NDCG below this is a violation.")
@click.option("--attribution-rows", type=click.IntRange(min=1), default=200, show_default=True,
              help="Rows explained on each side per run.")
@json_option
@pass_ctx
def monitor_create(c: Context, name, dataset, endpoint, variant, baseline_ref, schedule,
                   after_ingest, window, model, exclude, detectors, quality_period, config_path,
                   bias_facet, bias_label, bias_metrics, bias_baseline, attribution_drift,
                   attribution_threshold, attribution_rows, as_json) -> None:  # fmt: skip
    """Create monitor NAME on a dataset or an endpoint, against a baseline."""
    config = {"exclude": list(exclude), "detectors": list(detectors),
              "quality_period": quality_period}  # fmt: skip
    if attribution_drift:
        config["attribution"] = {"threshold": attribution_threshold, "rows": attribution_rows}
    if bias_facet or bias_label:
        config["bias"] = {"facet": bias_facet, "label": bias_label,
                          "metrics": list(bias_metrics) or None,
                          "baseline": _pairs(bias_baseline, "--bias-baseline")}  # fmt: skip
    check_config = load_check_config(config_path)
    if check_config:
        config["check"] = check_config
    rec = c.ws.monitoring.create_monitor(
        name, baseline=baseline_ref, dataset=dataset, endpoint=endpoint, variant=variant,
        schedule=schedule, after_ingest=after_ingest, window=window, model=model, config=config,
    )  # fmt: skip
    if as_json:
        return render.print_json(rec)
    watch = f"dataset {dataset}" if dataset else f"endpoint {endpoint}"
    when = " and ".join(filter(None, [f"on '{schedule}'" if schedule else None,
                                      "after each ingest" if after_ingest else None])) or "on demand"
    render.out.print(f"Created monitor [bold]{name}[/bold] on {watch} against {baseline_ref}, "
                     f"running {when}")  # fmt: skip


def _pairs(items, option: str) -> dict[str, float]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            out[key] = float(value)
            if out[key] != out[key] or abs(out[key]) == float("inf"):
                raise ValueError(value)
        except ValueError:
            sep = ""
        if not sep or not key:
            raise click.BadParameter(f"{item!r}: use NAME=NUMBER", param_hint=option)
    return out


@monitor.command("list")
@json_option
@pass_ctx
def monitor_list(c: Context, as_json: bool) -> None:
    """List monitors and their last run."""
    rows = c.ws.monitoring.monitors()
    if as_json:
        return render.print_json(rows)
    out = []
    for m in rows:
        last = c.ws.monitoring.runs(m["name"], 1)
        out.append([m["name"], m["dataset"] or f"{m['endpoint']}/{m['variant'] or '*'}",
                    m["baseline"], m["schedule"] or ("after ingest" if m["after_ingest"] else "-"),
                    f"#{last[0]['id']} {last[0]['status']}" if last else "-"])  # fmt: skip
    render.table("Monitors", ["name", "watches", "baseline", "schedule", "last run"], out)


@monitor.command("show")
@click.argument("name")
@click.option("-n", "--limit", type=int, default=20, show_default=True)
@json_option
@pass_ctx
def monitor_show(c: Context, name: str, limit: int, as_json: bool) -> None:
    """Show a monitor and its recent runs."""
    m = c.ws.monitoring.monitor(name)
    runs = c.ws.monitoring.runs(name, limit)
    if as_json:
        return render.print_json({"monitor": m, "runs": runs})
    render.out.print(f"[bold]{name}[/bold]: {m['dataset'] or m['endpoint']} vs {m['baseline']}, "
                     f"schedule {m['schedule'] or '-'}, after ingest {m['after_ingest']}")
    _print_runs(runs)


def _print_runs(runs: list[dict]) -> None:
    render.table("Runs", ["run", "job", "status", "data", "window end", "rows", "violations",
                          "drifted"],
                 [[r["id"], r["job_id"], r["status"], r["data"], r["window_end"], r["n_rows"],
                   r["n_violations"], ", ".join(r["summary"].get("drifted_columns", []))]
                  for r in runs])  # fmt: skip


@monitor.command("run")
@click.argument("name")
@click.option("--dataset-version", "dataset_ref", help="Check this version (dataset monitors).")
@click.option("--since", help="Window start (endpoint monitors; default: the monitor's window).")
@click.option("--until", help="Window end (default now).")
@json_option
@pass_ctx
def monitor_run(c: Context, name, dataset_ref, since, until, as_json) -> None:
    """Run monitor NAME now (a tracked job) and print its summary."""
    with render.err.status(f"running monitor {name}…"):
        run = c.ws.monitoring.run(name, dataset_ref=dataset_ref, window_start=since,
                                  window_end=until)  # fmt: skip
    if as_json:
        return render.print_json(run)
    _print_runs([run])
    print_alarms_changed(run.get("alarms", []))


@monitor.command("labels")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--endpoint", required=True, help="The endpoint whose predictions these label.")
@click.option("--id-column", default="inference_id", show_default=True)
@click.option("--label-column", default="label", show_default=True)
@json_option
@pass_ctx
def monitor_labels(c: Context, file, endpoint, id_column, label_column, as_json) -> None:
    """Add ground truth (CSV or JSON Lines: inference id + label) for an endpoint's predictions."""
    out = c.ws.monitoring.add_labels(endpoint, file, id_column=id_column,
                                     label_column=label_column)  # fmt: skip
    if as_json:
        return render.print_json(out)
    render.out.print(f"Stored {out['labels']} labels for {endpoint}: {out['matched']} match "
                     f"captured predictions, {out['unknown']} unknown inference ids"
                     + (f" (e.g. {', '.join(out['unknown_examples'])})" if out["unknown"] else ""))


@monitor.command("report")
@click.argument("run_id", metavar="RUN")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="HTML file to write (default: monitor-report-RUN.html).")
@json_option
@pass_ctx
def monitor_report(c: Context, run_id: str, output: str | None, as_json: bool) -> None:
    """Write a monitor run's self-contained HTML report and print its summary."""
    path = c.ws.monitoring.write_report(run_id, output or f"monitor-report-{run_id}.html")
    report = c.ws.monitoring.run_report(run_id)
    if as_json:
        return render.print_json({"html": path, "summary": report["summary"],
                                  "check": report.get("check"), "quality": report.get("quality")})
    if report.get("check"):
        print_check(report["check"])
    else:
        render.out.print(f"Run {run_id}: {report['status']} ({report['n_rows']} rows)")
    q = report.get("quality")
    if q and q.get("n_labelled"):
        render.table(f"Model quality ({q['n_labelled']} labelled)", ["metric", "now", "training"],
                     [[k, v, q["reference"].get(k)] for k, v in q["metrics"].items()])
    render.out.print(f"Report: {path}")


@monitor.command("scheduler")
@click.option("--once", is_flag=True, help="One pass: run what is due now, evaluate alarms, exit.")
@click.option("--interval", type=float, default=30.0, show_default=True, help="Seconds between passes.")
@click.option("--ticks", type=int, help="Stop after this many passes.")
@json_option
@pass_ctx
def monitor_scheduler(c: Context, once: bool, interval: float, ticks, as_json: bool) -> None:
    """Run due monitors (cron schedules, new dataset versions) and evaluate alarms, in a loop."""

    def show(result):
        if as_json:
            return render.print_json(result)
        for r in result["runs"]:
            render.out.print(f"ran {r['monitor']} → run #{r['id']} {r['status']}, "
                             f"{r['n_violations']} violation(s)")
        for f in result["failures"]:
            render.err.print(f"monitor {f['monitor']} failed: {f['error']}")
        print_alarms_changed(result["alarms"])
        if not result["runs"] and not result["failures"]:
            render.note("nothing due")

    c.ws.monitoring.scheduler(interval=interval, max_ticks=1 if once else ticks, on_tick=show)
