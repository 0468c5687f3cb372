"""``modelloop jobs …``: tracked work."""

from __future__ import annotations

import re
import threading

import click

from modelloop.cli import render
from modelloop.cli.context import Context, json_option, pass_ctx
from modelloop.common.status import JobStatus


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
    """Tracked work: list, show, logs, artifacts, download, report, compare, search, cancel."""


@jobs.command("list")
@click.option("--kind", help="Only jobs of this kind (train, tune, trial, evaluate…).")
@click.option(
    "--status",
    type=click.Choice([s.value for s in JobStatus]),
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
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines until the job ends.")
@pass_ctx
def logs(c: Context, job_id: str, tail: int | None, follow: bool) -> None:
    """Print a job's log."""
    if follow:
        if tail:
            for line in c.ws.jobs.logs(job_id).splitlines()[-tail:]:
                click.echo(line)
            c.ws.jobs.get(job_id)  # an unknown job fails before the loop
        for line in c.ws.jobs.follow(job_id, skip=bool(tail)):
            click.echo(line)
        return
    text = c.ws.jobs.logs(job_id)
    if tail:
        text = "\n".join(text.splitlines()[-tail:])
    click.echo(text.rstrip("\n"))


@jobs.command()
@click.argument("job_id")
@json_option
@pass_ctx
def artifacts(c: Context, job_id: str, as_json: bool) -> None:
    """List a job's artifacts: name, size, sha256."""
    rows = c.ws.jobs.select_artifacts(job_id)
    if as_json:
        render.print_json(rows)
    elif not rows:
        render.note(f"job {job_id} stored no artifacts")
    else:
        render.table(
            f"Artifacts of job {job_id}",
            ["name", "size", "sha256"],
            [[a["name"], a["size"], a["digest"][:12]] for a in rows],
        )


@jobs.command()
@click.argument("job_id")
@click.argument("name", required=False)
@click.option(
    "-o",
    "--output",
    "dest",
    default=".",
    show_default=True,
    metavar="DIR",
    type=click.Path(),
    help="The folder to write into (names keep their folders).",
)
@json_option
@pass_ctx
def download(c: Context, job_id: str, name: str | None, dest: str, as_json: bool) -> None:
    """Download a job's artifacts: all, the one called NAME, or a folder such as model."""
    paths = c.ws.jobs.download(job_id, dest, name)
    if as_json:
        render.print_json([str(p) for p in paths])
        return
    for path in paths:
        render.out.print(str(path))
    render.note(f"downloaded {len(paths)} artifact(s) of job {job_id} into {dest}")


@jobs.command()
@click.argument("job_id")
@click.option(
    "-o",
    "--output",
    "dest",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Write the HTML report to FILE.",
)
@click.option("--open", "open_it", is_flag=True, help="Open the report in a web browser.")
@pass_ctx
def report(c: Context, job_id: str, dest: str | None, open_it: bool) -> None:
    """Write (-o FILE) or open (--open) a job's HTML report."""
    import tempfile
    from pathlib import Path

    html = c.ws.jobs.report(job_id)
    if dest is None and not open_it:
        raise click.UsageError("say where the report goes: -o FILE, or --open")
    if dest is None:
        folder = Path(tempfile.mkdtemp(prefix="modelloop-report-"))
        dest = str(folder / f"job-{job_id}.html")
    render.write_output(dest, html)
    render.out.print(dest)
    if open_it:
        import webbrowser  # honours $BROWSER

        if not webbrowser.open(Path(dest).resolve().as_uri()):
            render.note(f"no web browser found; open {dest} yourself")


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


#: A tuning trial's progress line in a job log (see modelloop.training.tuning._progress_line).
_TRIAL_LINE = re.compile(r"^trial \d+ (complete|pruned|failed)")


class TrialProgress:
    """Shows a tune job's trials on stderr as they finish, while the command waits for the job.

    A thread reads the job's log file (the worker writes it on this machine) and prints the
    trial lines; :meth:`close` prints what is left once the job has ended. Behind the modelloop
    API (the log is on the server's machine) the thread follows the job's log through the API.
    """

    def __init__(self, ws, what: str):
        self.ws = ws
        self.what = what
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._tail = None
        self._started = False

    def started(self, job_id: int) -> None:
        from modelloop.training.jobs import LogTail

        render.note(
            f"{self.what}: job {job_id} started (follow it: modelloop jobs logs {job_id} -f)"
        )
        self._started = True
        if getattr(self.ws, "is_remote", False):
            lines = self.ws.jobs.follow(job_id)  # polls the server until the job has ended
            self._thread = threading.Thread(target=lambda: self._show(lines), daemon=True)
        else:
            self._tail = LogTail(self.ws.jobs.log_path(job_id))
            self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self._show(self._tail.lines())

    def _show(self, lines: list[str]) -> None:
        for line in lines:
            if _TRIAL_LINE.match(line):
                render.err.print(line, markup=False, style="dim")

    def close(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        # following the API, the thread ends once it has read the ended job's log (a call that
        # failed may leave the job running there: the thread is not waited for then)
        self._thread.join(timeout=None if self._tail is not None else 10.0)
        if self._tail is not None:
            self._show(self._tail.lines(final=True))
        self._thread = None

    def finished(self, job: dict) -> None:
        """After a job that never reported its start here: its trial lines from its stored
        log."""
        if not self._started:
            self._show(self.ws.jobs.logs(job["id"]).splitlines())
