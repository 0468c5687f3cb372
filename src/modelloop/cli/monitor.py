"""``modelloop baseline …``, ``check``, ``monitor …``, ``alarms …``, ``metrics``: monitoring."""

from __future__ import annotations

import json
import sys

import click

from modelloop.cli import render
from modelloop.cli.main import Context, json_option, pass_ctx

#: Exit status of ``check`` when the data has violations (errors exit 1, usage errors 2).
EXIT_VIOLATIONS = 3


def _rows_progress(description: str):
    """Wrap a batch iterator with a rich row-count progress bar on stderr."""

    def wrap(batches, total):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        with Progress(TextColumn(f"[bold]{description}"), BarColumn(), MofNCompleteColumn(),
                      console=render.err, transient=True,
                      disable=not render.err.is_terminal) as bar:  # fmt: skip
            task = bar.add_task(description, total=total)
            for b in batches:
                bar.advance(task, b.num_rows)
                yield b

    return wrap


# -- baselines ------------------------------------------------------------------------------------
@click.group()
def baseline() -> None:
    """Baselines: statistics and constraints of a dataset version, the reference for checks."""


def _roles(items: tuple[str, ...]) -> dict:
    out = {}
    for item in items:
        column, sep, role = item.partition("=")
        if not sep or not column or not role:
            raise click.BadParameter(f"{item!r}: use COLUMN=ROLE", param_hint="--role")
        out[column] = role
    return out


@baseline.command("create")
@click.argument("dataset_ref", metavar="DATASET@VERSION")
@click.option("--name", help="Baseline name (default: DATASET-vVERSION).")
@click.option("--categorical", multiple=True, help="Treat this numeric column as categories.")
@click.option("--target", help="The label column (checked where data has it; traffic has none).")
@click.option("--role", "roles", multiple=True, metavar="COLUMN=ROLE",
              help="A column's role: feature, target, identifier, time or ignored "
                   "(default: inferred; identifiers and time columns are not compared).")
@click.option("--force", is_flag=True, help="Recompute the baseline if it exists already.")
@json_option
@pass_ctx
def baseline_create(c: Context, dataset_ref: str, name, categorical, target, roles, force,
                    as_json: bool) -> None:  # fmt: skip
    """Profile DATASET@VERSION in one pass and store its baseline (training makes one for every
    version it trains on: then this shows it)."""
    rec = c.ws.monitoring.baselines.create(
        dataset_ref, name=name, categorical=list(categorical), target=target,
        roles=_roles(roles), force=force, progress=_rows_progress(f"profiling {dataset_ref}"),
    )  # fmt: skip
    if as_json:
        return render.print_json(rec)
    if rec.get("existed"):
        render.note(f"baseline {rec['name']} of {rec['ref']} exists already (created "
                    f"{rec['created_at']}); --force recomputes it")  # fmt: skip
        return _show_baseline(c, rec["name"])
    verb = "Recomputed" if force else "Created"
    render.out.print(f"{verb} baseline [bold]{rec['name']}[/bold] of {rec['ref']}: "
                     f"{rec['n_rows']} rows, {rec['n_columns']} columns")  # fmt: skip


@baseline.command("list")
@json_option
@pass_ctx
def baseline_list(c: Context, as_json: bool) -> None:
    """List stored baselines."""
    rows = c.ws.monitoring.baselines.list()
    if as_json:
        return render.print_json(rows)
    render.table("Baselines", ["name", "dataset", "source", "rows", "columns", "created"],
                 [[b["name"], b["ref"] or "-", b["source"], b["n_rows"], b["n_columns"],
                   b["created_at"]] for b in rows])  # fmt: skip


@baseline.command("show")
@click.argument("ref")
@json_option
@pass_ctx
def baseline_show(c: Context, ref: str, as_json: bool) -> None:
    """Show a baseline's per-column statistics and constraints (REF: name or DATASET@VERSION)."""
    if as_json:
        b = c.ws.monitoring.baselines.load(ref)
        return render.print_json(b.to_sagemaker()[0] | {"constraints": b.to_sagemaker()[1]})
    _show_baseline(c, ref)


def _show_baseline(c: Context, ref: str) -> None:
    b = c.ws.monitoring.baselines.load(ref)
    rows = []
    for name, p in b.columns.items():
        con = b.constraint(name)
        if p.kind == "numeric":
            q = p.quantiles([0.5]) if p.n else [None]
            stats = (f"mean {p.mean:.4g}, std {p.std:.4g}, min {p.min:.4g}, median {q[0]:.4g}, "
                     f"max {p.max:.4g}") if p.n else "no values"  # fmt: skip
        elif not p.counts:
            stats = f"{p.n_distinct} distinct values"
        else:
            top = sorted(p.counts.items(), key=lambda kv: -kv[1])[:3]
            stats = f"{len(p.counts)} categories; top: " + ", ".join(f"{k} ({v})" for k, v in top)
        rows.append([name, b.role(name), p.kind, p.n, p.missing, f"{con['completeness']:.4g}",
                     stats])  # fmt: skip
    rows += [[name, b.role(name), "-", "-", "-", "-", "not profiled"] for name in b.skipped]
    render.table(f"Baseline {ref} ({b.n_rows} rows)",
                 ["column", "role", "kind", "present", "missing", "completeness", "statistics"],
                 rows)  # fmt: skip


@baseline.command("export")
@click.argument("ref")
@click.argument("folder", type=click.Path(file_okay=False))
@pass_ctx
def baseline_export(c: Context, ref: str, folder: str) -> None:
    """Write REF as SageMaker statistics.json and constraints.json into FOLDER."""
    paths = c.ws.monitoring.baselines.export(ref, folder)
    render.out.print("Wrote " + ", ".join(str(p) for p in paths))


@baseline.command("import")
@click.argument("name")
@click.argument("path", type=click.Path(exists=True))
@json_option
@pass_ctx
def baseline_import(c: Context, name: str, path: str, as_json: bool) -> None:
    """Store a baseline NAME from SageMaker files (a folder or statistics.json) or modelloop JSON."""
    rec = c.ws.monitoring.baselines.import_(name, path)
    if as_json:
        return render.print_json(rec)
    render.out.print(f"Imported baseline [bold]{rec['name']}[/bold] ({rec['source']}): "
                     f"{rec['n_rows']} rows, {rec['n_columns']} columns")  # fmt: skip


# -- check ----------------------------------------------------------------------------------------
def _load_config(path: str | None) -> dict | None:
    if not path:
        return None
    import yaml

    from modelloop.errors import InvalidInput

    try:
        with open(path, encoding="utf-8") as fh:
            return yaml.safe_load(fh) or {}
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise InvalidInput(f"cannot read --config {path}: {reason or exc}") from None
    except yaml.YAMLError as exc:
        raise InvalidInput(f"--config {path} is not valid YAML or JSON: {exc}") from None


@click.command()
@click.argument("data", required=False, metavar="DATASET@VERSION|FILE")
@click.option("--baseline", "baseline_ref", required=True,
              help="Baseline name, DATASET@VERSION, or a folder/file of baseline JSON.")
@click.option("--endpoint", help="Check this endpoint's captured traffic instead of DATA.")
@click.option("--variant", help="Only this variant's traffic.")
@click.option("--since", help="Captured traffic from (1h, 7d, ISO time).")
@click.option("--until", help="Captured traffic until (ISO time; default now).")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
              help="Check configuration (YAML/JSON: methods, thresholds, per-column settings; "
                   "see the README).")
@click.option("--exclude", multiple=True, help="Baseline column not to check (repeatable).")
@click.option("--violations-out", type=click.Path(dir_okay=False),
              help="Also write SageMaker's constraint_violations.json here.")
@json_option
@pass_ctx
def check(c: Context, data, baseline_ref, endpoint, variant, since, until, config_path, exclude,
          violations_out, as_json: bool) -> None:  # fmt: skip
    """Check data against a baseline: violations, drift table and verdict.

    Captured traffic (--endpoint) is compared on the served model's input columns. Exits 3 when
    there are violations, 0 when the data is fine (or too small to judge: "not enough data").
    """
    if bool(data) == bool(endpoint):
        raise click.UsageError("give DATA (a dataset version or file) or --endpoint EP")
    report = c.ws.monitoring.check(data, baseline_ref, _load_config(config_path),
                                   since=since, until=until, endpoint=endpoint,
                                   variant=variant, exclude=list(exclude))  # fmt: skip
    if violations_out:
        render.write_output(violations_out, json.dumps(report.to_sagemaker_violations(), indent=2))
    if as_json:
        render.print_json(report.to_dict())
    else:
        _print_check(report.to_dict())
    if report.violations:
        sys.exit(EXIT_VIOLATIONS)


def _print_check(d: dict) -> None:
    v = d["verdict"]
    if d["violations"]:
        render.table(f"Violations ({len(d['violations'])})", ["feature", "check", "description"],
                     [[x["feature_name"], x["constraint_check_type"], x["description"]]
                      for x in d["violations"]])  # fmt: skip
    if d["drift"]:
        render.table("Drift", ["column", "kind", "method", "value", "threshold", "p adj.", "drift"],
                     [[r["column"], r["kind"], r["method"], r["value"], r["threshold"],
                       r["p_adjusted"], "[red]yes[/red]" if r["drifted"] else "no"]
                      for r in d["drift"]])  # fmt: skip
    verdict = "[green]OK[/green]" if v["ok"] else "[red]ISSUES[/red]"
    if not v.get("enough_data", True):
        render.note(f"not enough data: {d['n_rows']} rows are too few to compare distributions "
                    "(min_rows); only the columns were checked")  # fmt: skip
    elif v.get("not_enough_data"):
        render.note("not enough data to compare: " + ", ".join(v["not_enough_data"]))
    render.out.print(
        f"Verdict: {verdict} — {d['n_rows']} rows, {v['n_violations']} violation(s), "
        f"{len(v['drifted_columns'])} of {v['n_columns']} columns drift"
        f"{' (dataset drift)' if v['dataset_drift'] else ''}"
        f"{' (target drift)' if v.get('target_drift') else ''}"
    )


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
@json_option
@pass_ctx
def monitor_create(c: Context, name, dataset, endpoint, variant, baseline_ref, schedule,
                   after_ingest, window, model, exclude, detectors, quality_period, config_path,
                   as_json) -> None:  # fmt: skip
    """Create monitor NAME on a dataset or an endpoint, against a baseline."""
    config = {"exclude": list(exclude), "detectors": list(detectors),
              "quality_period": quality_period}  # fmt: skip
    check_config = _load_config(config_path)
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
    _print_alarms_changed(run.get("alarms", []))


def _print_alarms_changed(results: list[dict]) -> None:
    for a in results:
        if a["changed"]:
            render.out.print(f"alarm [bold]{a['alarm']}[/bold] → {a['state']}: {a['reason']}")
            for act in a["actions"]:
                render.out.print(f"  {act['action']}: {'ok' if act['ok'] else 'FAILED'} "
                                 f"{act['detail']}")


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
        _print_check(report["check"])
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
        _print_alarms_changed(result["alarms"])
        if not result["runs"] and not result["failures"]:
            render.note("nothing due")

    c.ws.monitoring.scheduler(interval=interval, max_ticks=1 if once else ticks, on_tick=show)


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
    _print_alarms_changed(results)


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
