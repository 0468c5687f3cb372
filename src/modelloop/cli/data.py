"""``modelloop data …``: versioned datasets."""

from __future__ import annotations

import click

from modelloop.cli import render
from modelloop.cli.context import Context, json_option, pass_ctx
from modelloop.cli.data_stream import stream
from modelloop.common.status import MonitorRunStatus


@click.group()
def data() -> None:
    """Versioned datasets: ingest files, list, show, read, delete."""


@data.command()
@click.argument("name")
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--allow-schema-evolution",
    is_flag=True,
    help="Accept new columns and widened types instead of rejecting them.",
)
@click.option(
    "--event-time",
    "event_time_column",
    metavar="COLUMN",
    help="Column holding each row's event time (its range is recorded per version).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "tsv", "parquet", "jsonl", "json"]),
    help="Input format (default: from each file's suffix).",
)
@json_option
@pass_ctx
def ingest(
    c: Context,
    name: str,
    paths: tuple[str, ...],
    allow_schema_evolution: bool,
    event_time_column: str | None,
    fmt: str | None,
    as_json: bool,
) -> None:
    """Append files (CSV, Parquet, JSON Lines; files, folders or globs) to dataset NAME as a new version."""
    bar, description = render.progress_bar(f"ingest {name}")
    with bar:
        task = bar.add_task(description, total=None)
        report = c.ws.datasets.ingest(
            name,
            list(paths),
            allow_schema_evolution=allow_schema_evolution,
            event_time_column=event_time_column,
            format=fmt,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    runs = getattr(report, "monitor_runs", [])  # after-ingest monitors, run by the workspace
    if as_json:
        render.print_json(report.to_dict() | {"monitor_runs": runs})
        return
    for s in report.skipped:
        render.note(f"skipped {s}: already ingested into {name} (same content)")
    v = report.version
    if v is None:
        render.out.print(f"Nothing new for [bold]{name}[/bold]: every file was already ingested.")
        return
    render.out.print(
        f"Created [bold]{v.ref}[/bold]: {v.added_rows:,} rows added ({v.row_count:,} in all) "
        f"from {len(report.sources)} file(s)"
        + (
            f", [yellow]{v.quarantined_rows:,} rows quarantined[/yellow]"
            if v.quarantined_rows
            else ""
        )
    )
    for change in v.schema_changes:
        render.out.print(f"  schema: {change}")
    for r in runs:
        if r.get("status") == MonitorRunStatus.FAILED:
            render.err.print(f"monitor {r.get('monitor', '?')} failed: {r['error']}")
        else:
            render.out.print(f"  monitor {r['monitor']} → run #{r['id']} on {r['data']}: "
                             f"{r['n_rows']:,} rows, {r['n_violations']} violation(s)")
    if v.quarantined_rows:
        render.note(f"see them with: modelloop data quarantine {v.ref}")


@data.command()
@click.argument("ref")
@click.option(
    "--and-later", is_flag=True, help="Also delete every later version (they contain its rows)."
)
@click.option(
    "--force", is_flag=True, help="Delete even data that trained a registered model (needs --reason)."
)
@click.option("--reason", help="Why (kept in the event log).")
@json_option
@pass_ctx
def delete(
    c: Context, ref: str, and_later: bool, force: bool, reason: str | None, as_json: bool
) -> None:
    """Delete version REF (NAME@V) so its files can be ingested again; --and-later for V and after."""
    done = c.ws.datasets.delete(ref, force=force, reason=reason, and_later=and_later)
    if as_json:
        render.print_json(done)
        return
    name = done["dataset"]
    render.out.print("deleted " + ", ".join(f"{name}@{v}" for v in done["versions"]))
    if done["models"]:
        render.note(f"the lineage of {', '.join(done['models'])} now names deleted data")
    if done["baselines_deleted"]:
        render.note(f"deleted their baselines {', '.join(done['baselines_deleted'])}")
    if done["baselines_kept"]:
        render.note(
            f"kept baselines {', '.join(done['baselines_kept'])}: monitors use them "
            "(they no longer stand for a dataset version)"
        )


@data.command("list")
@json_option
@pass_ctx
def list_(c: Context, as_json: bool) -> None:
    """List datasets with their latest version."""
    rows = c.ws.datasets.list()
    if as_json:
        render.print_json(rows)
        return
    if not rows:
        render.note("No datasets yet. Ingest one with: modelloop data ingest NAME FILE…")
        return
    render.table(
        "Datasets",
        ["name", "latest", "rows", "columns", "quarantined", "updated"],
        [
            [
                r["name"],
                r["latest_version"],
                r["row_count"],
                r["columns"],
                r["quarantined_rows"],
                r["updated_at"],
            ]
            for r in rows
        ],
    )


@data.command()
@click.argument("ref")
@click.option(
    "--no-stats", is_flag=True, help="Skip the per-column statistics (a pass over the data)."
)
@json_option
@pass_ctx
def show(c: Context, ref: str, no_stats: bool, as_json: bool) -> None:
    """Show a dataset version (NAME, NAME@3, NAME@latest): schema, statistics, versions, source files."""
    ds = c.ws.datasets
    v = ds.get(ref)
    versions = ds.versions(v.name)
    sources = ds.sources(v.ref)
    stats = None if no_stats else ds.stats(v.ref)
    if as_json:
        render.print_json(
            {
                **v.to_dict(),
                "stats": stats,
                "sources": sources,
                "versions": [x.to_dict() for x in versions],
            }
        )
        return
    render.out.print(
        f"[bold]{v.ref}[/bold]  {v.row_count:,} rows, {len(v.schema)} columns, "
        f"created {render.fmt(v.created_at)}"
    )
    render.out.print(f"content hash {v.content_hash}")
    if v.quarantined_rows:
        render.out.print(
            f"[yellow]{v.quarantined_rows:,} rows quarantined by this version's ingest[/yellow]"
        )
    if v.event_time_min:
        render.out.print(
            f"event time {render.fmt(v.event_time_min)} … {render.fmt(v.event_time_max)}"
        )
    if stats is not None:
        render.table(
            "Columns",
            ["column", "type", "missing", "min", "max", "mean", "distinct"],
            [
                [s["column"], s["type"], s["missing"], s["min"], s["max"], s["mean"], s["distinct"]]
                for s in stats
            ],
        )
    else:
        render.table("Columns", ["column", "type"], [[f.name, str(f.type)] for f in v.schema])
    render.table(
        "Versions",
        ["version", "created", "added rows", "rows", "quarantined"],
        [
            [x.version, x.created_at, x.added_rows, x.row_count, x.quarantined_rows]
            for x in versions
        ],
    )
    render.table(
        "Source files (lineage)",
        ["version", "file", "rows", "quarantined", "sha256"],
        [
            [s["version"], s["path"], s["rows"], s["quarantined_rows"], s["sha256"][:12]]
            for s in sources
        ],
    )


@data.command()
@click.argument("ref")
@click.option("-n", "--rows", "n", type=click.IntRange(min=0), default=10, show_default=True)
@click.option("--columns", help="Comma-separated columns to show.")
@json_option
@pass_ctx
def head(c: Context, ref: str, n: int, columns: str | None, as_json: bool) -> None:
    """Show the first rows of a dataset version."""
    cols = [x.strip() for x in columns.split(",")] if columns else None
    t = c.ws.datasets.head(ref, n, columns=cols)
    rows = t.to_pylist()
    if as_json:
        render.print_json(rows)
        return
    render.table(None, t.schema.names, [list(r.values()) for r in rows])


@data.command()
@click.argument("ref")
@click.option("-n", "--rows", "n", type=click.IntRange(min=0), default=20, show_default=True)
@json_option
@pass_ctx
def quarantine(c: Context, ref: str, n: int, as_json: bool) -> None:
    """Show rows that ingests up to this version rejected, with their reasons."""
    t = c.ws.datasets.quarantined(ref)
    rows = t.slice(0, n).to_pylist()
    if as_json:
        render.print_json({"total": t.num_rows, "rows": rows})
        return
    if not t.num_rows:
        render.out.print("No quarantined rows.")
        return
    render.out.print(f"{t.num_rows:,} quarantined rows (showing {len(rows)})")
    render.table(None, t.schema.names, [list(r.values()) for r in rows])


data.add_command(stream)  # ``data stream``: micro-batches from a stream (cli/data_stream.py)
