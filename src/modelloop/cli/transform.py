"""``modelloop transform``: score files or a dataset version with a registered model.

    modelloop transform --model churn@champion --input 'data/*.csv' --output scores.csv
    modelloop transform resume 42
"""

from __future__ import annotations

import time

import click

from modelloop.cli.context import Context, json_option, pass_ctx
from modelloop.cli.executor_option import executor_option


def _columns(value: str | None) -> list[str] | None:
    if not value:
        return None
    return [c.strip() for c in value.split(",") if c.strip()]


run_options = [
    click.option("--workers", "-j", type=int, help="Worker processes (default: the cores)."),
    executor_option("processes", "Where chunks are scored"),
    click.option("--ray-address", metavar="ADDR", help="A Ray cluster to run on (with ray)."),
]


def _with(options):
    def wrap(f):
        for opt in reversed(options):
            f = opt(f)
        return f
    return wrap


@click.group(invoke_without_command=True)
@click.option("--model", "-m", metavar="NAME@V", help="The model: NAME@3, NAME@champion, NAME.")
@click.option("--input", "-i", "inputs", multiple=True, metavar="WHERE",
              help="A file, folder, glob, s3:// URL or dataset:NAME@V (repeatable).")
@click.option("--output", "-o", metavar="WHERE", help="The output file or s3:// URL (a folder "
              "gets predictions.<format>).")
@click.option("--input-format", type=click.Choice(["csv", "tsv", "parquet", "jsonl"]),
              help="Default: from the file names.")
@click.option("--output-format", type=click.Choice(["csv", "tsv", "parquet", "jsonl"]),
              help="Default: from the output's name, else the input's format.")
@click.option("--input-filter", metavar="COLS", help="Columns fed to the model, comma-separated; "
              "'-col' leaves one out (default: the model's signature columns).")
@click.option("--output-filter", metavar="COLS", help="Columns written, in this order.")
@click.option("--join-source", type=click.Choice(["none", "input"]), default="none",
              show_default=True, help="input: write the input columns before the predictions.")
@click.option("--id-column", metavar="COL", help="A column passed through to the output.")
@click.option("--proba", is_flag=True, help="Also write class probabilities (proba_<class>).")
@click.option("--errors-file", metavar="WHERE", help="Where failed rows go (default: beside "
              "the output, its suffix replaced: scores.parquet -> scores.errors.jsonl).")
@click.option("--chunk-mb", type=float, default=16.0, show_default=True,
              help="Text input is scored in chunks of this size.")
@click.option("--chunk-rows", type=int, default=250_000, show_default=True,
              help="Parquet input is scored in chunks of whole row groups of about this many rows.")
@click.option("--max-errors-per-chunk", type=int, default=1000, show_default=True,
              help="More failing rows than this in a chunk fail the transform.")
@click.option("--force", is_flag=True,
              help="Score with a model version that is not approved (recorded, with a warning).")
@click.option("--reason", help="Why --force (kept in the job's record).")
@_with(run_options)
@json_option
@pass_ctx
@click.pass_context
def transform(cctx: click.Context, c: Context, model, inputs, output, input_format, output_format,
              input_filter, output_filter, join_source, id_column, proba, errors_file, chunk_mb,
              chunk_rows, max_errors_per_chunk, force, reason, workers, executor, ray_address,
              as_json) -> None:
    """Score the input with a registered model into the output, as a resumable tracked job.

    Rerunning the same command after a crash, or 'modelloop transform resume JOB', skips the
    chunks already scored and gives the same output as an uninterrupted run. The model version
    must be approved (or --force).
    """
    if cctx.invoked_subcommand is not None:
        return
    missing = [n for n, v in (("--model", model), ("--input", inputs), ("--output", output))
               if not v]
    if missing:
        raise click.UsageError(f"missing {', '.join(missing)} (see 'modelloop transform --help')")
    _run(c, as_json, lambda progress: c.ws.transforms.run(
        model, list(inputs), output, workers=workers, executor=executor, ray_address=ray_address,
        errors_file=errors_file, progress=progress, input_format=input_format,
        output_format=output_format, input_filter=_columns(input_filter),
        output_filter=_columns(output_filter), join_source=join_source, id_column=id_column,
        proba=proba, chunk_mb=chunk_mb, chunk_rows=chunk_rows,
        max_errors_per_chunk=max_errors_per_chunk, force=force, reason=reason))


@transform.command()
@click.argument("job")
@_with(run_options)
@json_option
@pass_ctx
def resume(c: Context, job: str, workers, executor, ray_address, as_json) -> None:
    """Resume transform JOB: score only the chunks it had not finished."""
    _run(c, as_json, lambda progress: c.ws.transforms.resume(
        job, workers=workers, executor=executor, ray_address=ray_address, progress=progress))


def _run(c: Context, as_json: bool, start) -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from modelloop.cli import render

    bar = Progress(
        TextColumn("[bold]transform"),
        BarColumn(),
        TextColumn("{task.fields[rows]:>12,} rows  {task.fields[rate]:>10,.0f} rows/s"),
        TextColumn("{task.fields[chunks]}"),
        TimeRemainingColumn(),
        console=render.err,
        transient=True,
        disable=not render.err.is_terminal,
    )
    task = bar.add_task("transform", total=None, rows=0, rate=0.0, chunks="")
    first: dict = {}

    def progress(p: dict) -> None:
        now = time.monotonic()
        first.setdefault("t", now)
        first.setdefault("rows", p["rows"])
        elapsed = now - first["t"]
        rate = (p["rows"] - first["rows"]) / elapsed if elapsed > 0 else 0.0
        bar.update(task, total=p["total_bytes"] or None, completed=p["input_bytes"],
                   rows=p["rows"] + p["error_rows"], rate=rate,
                   chunks=f"{p['chunks']}/{p['total_chunks']} chunks")

    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        try:
            with bar:
                result = start(progress)
        finally:  # e.g. a forced unapproved version: one line each, even if the job failed
            for w in caught:
                if issubclass(w.category, UserWarning):
                    render.note(f"warning: {w.message}")
    if as_json:
        render.print_json(result.to_dict())
        return
    rate = (result.rows + result.error_rows) / result.seconds if result.seconds else 0
    colour = "yellow" if result.error_rows else "green"
    render.out.print(
        f"[bold]job {result.job_id}[/bold] transform [{colour}]{result.status}[/{colour}] "
        f"in {result.seconds:.1f}s ({rate:,.0f} rows/s): {result.rows:,} rows written to "
        f"{result.output}")
    if result.chunks_skipped:
        render.out.print(f"  resumed: {result.chunks_skipped} of {result.chunks} chunks were "
                         "already scored")
    if result.error_rows:
        render.out.print(f"  {result.error_rows:,} rows failed scoring; reasons in "
                         f"{result.errors_file}")
