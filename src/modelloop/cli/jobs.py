"""``modelloop jobs …``: tracked work."""

from __future__ import annotations

import click

from modelloop.cli import render
from modelloop.cli.main import Context, json_option, pass_ctx


def _duration(job: dict) -> str:
    if job.get("started_at") and job.get("ended_at"):
        return f"{(job['ended_at'] - job['started_at']).total_seconds():.1f}s"
    return "-"


def _metrics_summary(job: dict, n: int = 3) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in list(job["metrics"].items())[:n])


def _jobs_table(title: str, jobs: list[dict]) -> None:
    render.table(
        title,
        ["id", "kind", "name", "status", "parent", "created", "duration", "metrics"],
        [
            [
                j["id"],
                j["kind"],
                j["name"],
                j["status"],
                j["parent_id"],
                j["created_at"],
                _duration(j),
                _metrics_summary(j),
            ]
            for j in jobs
        ],
    )


@click.group()
def jobs() -> None:
    """Tracked work: list, show, logs, compare, search, cancel."""


@jobs.command("list")
@click.option("--kind", help="Only jobs of this kind (train, tune, trial, evaluate…).")
@click.option(
    "--status", type=click.Choice(["queued", "running", "succeeded", "failed", "cancelled"])
)
@click.option(
    "--parent",
    "parent_id",
    type=int,
    help="Only the children of this job (e.g. a tuning job's trials).",
)
@click.option("-n", "--limit", type=int, default=50, show_default=True)
@json_option
@pass_ctx
def list_(c: Context, kind, status, parent_id, limit, as_json) -> None:
    """List jobs, newest first."""
    rows = c.ws.jobs.list(kind=kind, status=status, parent_id=parent_id, limit=limit)
    if as_json:
        render.print_json(rows)
    elif not rows:
        render.note("No jobs yet. Train a model with: modelloop train DATASET --target COLUMN")
    else:
        _jobs_table("Jobs", rows)


@jobs.command()
@click.argument("job_id")
@json_option
@pass_ctx
def show(c: Context, job_id: str, as_json: bool) -> None:
    """Show one job: status, params, metrics, lineage, artifacts."""
    job = c.ws.jobs.get(job_id)
    artifacts = c.ws.jobs.artifacts_of(job["id"])
    if as_json:
        render.print_json({**job, "artifacts": artifacts})
        return
    render.out.print(
        f"[bold]job {job['id']}[/bold] {job['kind']} {job['name'] or ''} — {job['status']}"
        f" ({_duration(job)})"
    )
    if job["error"]:
        render.out.print(f"[red]error:[/red] {job['error']}")
    if job["parent_id"]:
        render.out.print(f"parent job: {job['parent_id']}")
    for title, section in (("Params", "params"), ("Metrics", "metrics")):
        if job[section]:
            render.table(
                title,
                ["name", "value"],
                [
                    [k, v if not isinstance(v, dict | list) else str(v)]
                    for k, v in job[section].items()
                ],
            )
    if job["inputs"]:
        render.table(
            "Inputs (lineage)",
            ["kind", "ref", "detail"],
            [[i.get("kind"), i.get("ref"), i.get("content_hash", "")[:12]] for i in job["inputs"]],
        )
    for key, value in job["info"].items():
        render.out.print(f"{key}: {value}")
    if artifacts:
        render.table(
            "Artifacts",
            ["name", "sha256", "size"],
            [[a["name"], a["digest"][:12], a["size"]] for a in artifacts],
        )


@jobs.command()
@click.argument("job_id")
@click.option("--tail", type=int, help="Only the last N lines.")
@pass_ctx
def logs(c: Context, job_id: str, tail: int | None) -> None:
    """Print a job's log."""
    text = c.ws.jobs.logs(job_id)
    if tail:
        text = "\n".join(text.splitlines()[-tail:])
    click.echo(text.rstrip("\n"))


@jobs.command()
@click.argument("job_ids", nargs=-1, required=True)
@json_option
@pass_ctx
def compare(c: Context, job_ids: tuple[str, ...], as_json: bool) -> None:
    """Compare the params and metrics of several jobs side by side."""
    result = c.ws.jobs.compare(list(job_ids))
    if as_json:
        render.print_json(result)
        return
    cols = ["", *[f"job {j}" for j in result["jobs"]]]
    rows = [[f"params.{k}", *v] for k, v in result["params"].items()]
    rows += [[f"metrics.{k}", *v] for k, v in result["metrics"].items()]
    render.table("Comparison", cols, rows)


@jobs.command()
@click.argument("expression")
@click.option("--kind")
@click.option("-n", "--limit", type=int)
@json_option
@pass_ctx
def search(c: Context, expression: str, kind: str | None, limit: int | None, as_json: bool) -> None:
    """Find jobs, e.g. "metrics.roc_auc > 0.8 and params.max_depth = 5"."""
    rows = c.ws.jobs.search(expression, kind=kind, limit=limit)
    if as_json:
        render.print_json(rows)
    else:
        _jobs_table(f"Jobs where {expression}", rows)


@jobs.command()
@click.argument("job_id")
@json_option
@pass_ctx
def cancel(c: Context, job_id: str, as_json: bool) -> None:
    """Cancel a queued or running job."""
    job = c.ws.jobs.cancel(job_id)
    if as_json:
        render.print_json(job)
    else:
        render.out.print(f"job {job['id']}: {job['status']}")
