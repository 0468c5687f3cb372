"""``modelloop train | tune | evaluate``: tracked training work on dataset versions."""

from __future__ import annotations

import json
from pathlib import Path

import click

from modelloop.cli import render
from modelloop.cli.context import Context, json_option, pass_ctx
from modelloop.cli.executor_option import executor_option
from modelloop.cli.jobs import TrialProgress
from modelloop.config import JOB_EXECUTORS


def _kv(values: tuple[str, ...], what: str) -> dict:
    """``--param max_depth=5`` → ``{"max_depth": 5}`` (values read as JSON when they parse)."""
    out = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint=what)
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def _gate(values: tuple[str, ...]) -> list[dict]:
    """``--gate roc_auc>=0.8`` (threshold), ``--gate roc_auc+=0.01`` (absolute change),
    ``--gate rmse%=0.02`` (relative change)."""
    out = []
    for item in values:
        for op, key in ((">=", "threshold"), ("<=", "threshold"), ("+=", "min_absolute_change"),
                        ("%=", "min_relative_change")):
            metric, sep, raw = item.partition(op)
            if sep:
                try:
                    cond = {"metric": metric.strip(), key: float(raw)}
                except ValueError:
                    raise click.BadParameter(f"{raw!r} in {item!r} is not a number",
                                             param_hint="--gate") from None
                if op == "<=":
                    cond["direction"] = "lower"
                out.append(cond)
                break
        else:
            raise click.BadParameter(
                f"cannot read {item!r}; write METRIC>=VALUE, METRIC<=VALUE, METRIC+=CHANGE or "
                "METRIC%=RELATIVE_CHANGE", param_hint="--gate")
    return out


def _print_job(job: dict, ws, as_json: bool, *, extra: list[str] = ()) -> None:
    if as_json:
        render.print_json({**job, "artifacts": ws.jobs.artifacts_of(job["id"])})
        return
    duration = ""
    if job.get("started_at") and job.get("ended_at"):
        duration = f" in {(job['ended_at'] - job['started_at']).total_seconds():.1f}s"
    render.out.print(f"[bold]job {job['id']}[/bold] {job['kind']} {job['status']}{duration}")
    if job["metrics"]:
        render.table("Validation metrics", ["metric", "value"],
                     [[k, v] for k, v in job["metrics"].items()])
    for line in extra:
        render.out.print(line)


data_options = [
    click.option("--target", "-t", required=True, help="The column to predict."),
    click.option("--task", type=click.Choice(["binary", "multiclass", "regression"]),
                 help="Default: inferred from the target."),
    click.option("--split", help="random[:0.2], stratified[:0.2], time[:COLUMN] (default: "
                                 "stratified for classes, random for regression)."),
    click.option("--holdout", metavar="DATASET@V", help="Validate on these rows instead; they must "
                 "not be in the training data (e.g. train on NAME@4, hold out NAME@4..5)."),
    click.option("--since", help="Only the parts ingested in this window, e.g. 30d."),
    click.option("--seed", type=int, default=0, show_default=True),
    click.option("--name", help="A name for the job."),
    executor_option(None, "Where the job runs (default: [jobs] executor in modelloop.toml, "
                    "else local)", only=JOB_EXECUTORS,
                    summaries={"local": "on this machine, as [jobs] runner says",
                               "ray": "a Ray task, tuning trials in parallel, on the cluster at "
                                      "$RAY_ADDRESS or a local Ray"}),
]


def _with(options):
    def wrap(f):
        for option in reversed(options):
            f = option(f)
        return f
    return wrap


@click.command()
@click.argument("dataset")
@click.option("--algorithm", "-a", default="hist_gradient_boosting", show_default=True,
              help="A built-in name (logistic_regression, random_forest, lightgbm, xgboost…), an "
                   "estimator's import path, 'module:function' for a custom trainer, or auto.")
@click.option("--param", "-p", "params", multiple=True, metavar="KEY=VALUE",
              help="An algorithm parameter (repeat).")
@click.option("--time-budget", type=float, default=60.0, show_default=True,
              help="Seconds for --algorithm auto.")
@click.option("--register", metavar="MODEL", help="Register the trained model as MODEL.")
@_with(data_options)
@json_option
@pass_ctx
def train(c: Context, dataset, algorithm, params, time_budget, register, target, task, split,
          holdout, since, seed, name, executor, as_json) -> None:
    """Train a model on DATASET (NAME or NAME@V) as a tracked job."""
    c.prepare_job("train", executor)
    progress = TrialProgress(c.ws, "train")  # -a auto runs trials: show them as they finish
    try:
        job = c.ws.training.train(dataset, target, algorithm, _kv(params, "--param"), task=task,
                                  split=split, holdout=holdout, seed=seed,
                                  time_budget=time_budget, since=since, name=name,
                                  on_start=progress.started, executor=executor)
    finally:
        progress.close()
    progress.finished(job)
    extra = []
    if register:
        record = c.ws.models.register_from_job(register, job["id"])
        job["registered"] = record["ref"]
        extra.append(f"registered [bold]{record['ref']}[/bold] (status {record['status']})")
    else:
        extra.append(f"register it with: modelloop models register MODEL --job {job['id']}")
    _print_job(job, c.ws, as_json, extra=extra)


@click.command()
@click.argument("dataset")
@click.option("--algorithm", "-a", default="hist_gradient_boosting", show_default=True,
              help="The algorithm to tune, or auto to search across the built-in ones.")
@click.option("--space", type=click.Path(dir_okay=False), help="A YAML search space file.")
@click.option("--metric", help="The objective (default: roc_auc, log_loss or rmse by task).")
@click.option("--direction", type=click.Choice(["maximize", "minimize"]))
@click.option("--trials", "n_trials", type=int,
              help="Stop after N trials (default: 20, or none with --time-budget).")
@click.option("--time-budget", type=float,
              help="Seconds for the search and retraining the best; with no --trials, trials "
                   "run until it is used.")
@click.option("--target-value", type=float, help="Stop when the best value reaches this.")
@click.option("--patience", type=int, help="Stop after N trials without improvement.")
@click.option("--sampler", type=click.Choice(["tpe", "random", "grid"]), default="tpe",
              show_default=True)
@click.option("--pruner", type=click.Choice(["median", "hyperband", "none"]), default="median",
              show_default=True)
@click.option("--cv", type=int, default=3, show_default=True, help="Folds (1: one holdout).")
@click.option("--jobs", "n_jobs", type=int, default=1, show_default=True,
              help="Trials run in parallel (threads in the job; Ray tasks with --executor ray).")
@click.option("--warm-start", metavar="JOB", help="Start from an earlier tune job's trials.")
@click.option("--register", metavar="MODEL", help="Register the best model as MODEL.")
@_with(data_options)
@json_option
@pass_ctx
def tune(c: Context, dataset, algorithm, space, metric, direction, n_trials, time_budget,
         target_value, patience, sampler, pruner, cv, n_jobs, warm_start, register, target, task,
         split, holdout, since, seed, name, executor, as_json) -> None:
    """Tune an algorithm's hyperparameters on DATASET; every trial is a job."""
    c.prepare_job("tune", executor)
    progress = TrialProgress(c.ws, "tune")
    if space is not None and c.remote:  # the file is on this machine, not the server's
        space = Path(space).read_text()
    try:
        job = c.ws.training.tune(
            dataset, target, algorithm, space, metric=metric, direction=direction, task=task,
            split=split, holdout=holdout, cv=cv, time_budget=time_budget,
            **({} if n_trials is None else {"n_trials": n_trials}),
            target_value=target_value, patience=patience, sampler=sampler,
            pruner=None if pruner == "none" else pruner, n_jobs=n_jobs, seed=seed,
            warm_start=warm_start, since=since, name=name, on_start=progress.started,
            executor=executor)
    finally:
        progress.close()
    progress.finished(job)
    extra = []
    board = job["outputs"].get("leaderboard") or []
    if board and not as_json:
        keys = ["algorithm", "value"] if algorithm == "auto" else ["number", "value"]
        render.table("Leaderboard", [*keys, "params"],
                     [[row.get(k) for k in keys] + [json.dumps(row.get("params"))]
                      for row in board[:10]])
    best = job["outputs"].get("best") or {}
    if best:
        extra.append(f"best {best.get('metric')} {best.get('value'):.6g} with "
                     f"{best.get('algorithm')} {json.dumps(best.get('params'))}; "
                     f"stopped because {job['info'].get('stopped_because')}")
    if register:
        record = c.ws.models.register_from_job(register, job["id"])
        job["registered"] = record["ref"]
        extra.append(f"registered [bold]{record['ref']}[/bold] (status {record['status']})")
    _print_job(job, c.ws, as_json, extra=extra)


@click.command()
@click.argument("model")
@click.argument("dataset")
@click.option("--target", "-t", help="Default: the target the model was trained on.")
@click.option("--baseline", metavar="MODEL@V", help="Compare with this model on the same rows, "
                                                    "e.g. NAME@champion.")
@click.option("--gate", "gates", multiple=True, metavar="CONDITION",
              help="METRIC>=V (threshold), METRIC<=V (lower is better), METRIC+=D (absolute "
                   "improvement on the baseline), METRIC%=R (relative). Repeat.")
@click.option("--no-report", is_flag=True, help="Skip the plots and HTML report.")
@click.option("--since", help="Only the parts ingested in this window, e.g. 7d.")
@click.option("--exclude-overlap", is_flag=True,
              help="Score on the rows of DATASET neither model trained on (default: refuse "
                   "when DATASET holds training rows).")
@click.option("--allow-overlap", is_flag=True,
              help="Score on every row even if a model trained on some (warned and recorded).")
@json_option
@pass_ctx
def evaluate(c: Context, model, dataset, target, baseline, gates, no_report, since,
             exclude_overlap, allow_overlap, as_json) -> None:
    """Evaluate MODEL (NAME@V or NAME@alias) on DATASET, optionally against a baseline.

    DATASET must hold no row either model trained on: versions are cumulative, so name the rows
    added after the training data with a range, e.g. NAME@4..5."""
    if exclude_overlap and allow_overlap:
        raise click.UsageError("give --exclude-overlap or --allow-overlap, not both")
    policy = "exclude" if exclude_overlap else "allow" if allow_overlap else "refuse"
    c.prepare_job("evaluate")
    job = c.ws.training.evaluate(model, dataset, target=target, baseline=baseline,
                                 gate=_gate(gates), report=not no_report, since=since,
                                 overlap=policy)
    found = job["info"].get("overlap") or {}
    if found.get("excluded"):
        render.note(f"excluded {found['excluded']:,} of {found['rows']:,} rows a model trained "
                    f"on; evaluated on the other {found['evaluated_rows']:,}")
    elif policy == "allow" and (found.get("model") or found.get("baseline")):
        render.note(f"[red]WARNING[/red]: scored on rows the models trained on "
                    f"({found.get('model', 0):,} of {model}"
                    + (f", {found['baseline']:,} of the baseline" if "baseline" in found else "")
                    + f", of {found['rows']:,} rows): these metrics are optimistic")
    for ref in found.get("unknown") or []:
        render.note(f"note: {ref} records no training data, so its overlap with {dataset} "
                    "could not be checked")
    verdict = job["outputs"].get("gate")
    extra = []
    base = job["outputs"].get("baseline")
    if base and not as_json:
        names = sorted(set(job["metrics"]) & set(base["metrics"]))
        render.table(f"{model} vs {base['ref']}", ["metric", "candidate", "baseline"],
                     [[k, job["metrics"][k], base["metrics"][k]] for k in names])
    if verdict:
        extra.append("gate: [green]passed[/green]" if verdict["passed"] else
                     "gate: [red]failed[/red]\n  " + "\n  ".join(verdict["reasons"]))
    if any(a["name"].startswith("report/") for a in c.ws.jobs.artifacts_of(job["id"])):
        extra.append(f"report: modelloop jobs report {job['id']} --open (or -o FILE)")
    _print_job(job, c.ws, as_json, extra=extra)
    if verdict and not verdict["passed"]:
        raise SystemExit(3)
