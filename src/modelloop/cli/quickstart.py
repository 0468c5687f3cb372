"""``modelloop quickstart``: a workspace with a sample dataset, in one command."""

from __future__ import annotations

from pathlib import Path

import click

from modelloop.cli import render


@click.command()
@click.argument("directory", default="modelloop-quickstart", type=click.Path(file_okay=False))
def quickstart(directory: str) -> None:
    """Create a workspace in DIRECTORY, ingest three days of sample loan applications, show them."""
    from modelloop.data import samples
    from modelloop.workspace import Workspace

    root = Path(directory).resolve()
    ws = Workspace(root) if (root / "modelloop.toml").exists() else Workspace.init(root)
    render.out.print(f"Workspace [bold]{ws.root}[/bold]")
    incoming = root / "incoming"
    files = samples.write_daily_batches(incoming, days=3)
    for f in files:
        report = ws.datasets.ingest("loans", [f], event_time_column="applied_at")
        v = report.version
        if v is None:
            render.out.print(f"  {f.name}: already ingested")
        else:
            q = f", [yellow]{v.quarantined_rows} quarantined[/yellow]" if v.quarantined_rows else ""
            render.out.print(f"  {f.name} → [bold]{v.ref}[/bold] (+{v.added_rows:,} rows{q})")
    v = ws.datasets.get("loans")
    stats = ws.datasets.stats(v.ref)
    render.table(
        f"{v.ref}: {v.row_count:,} rows",
        ["column", "type", "missing", "min", "max", "mean"],
        [[s["column"], s["type"], s["missing"], s["min"], s["max"], s["mean"]] for s in stats],
    )
    render.out.print(
        "Next: [bold]cd " + str(root) + "[/bold] and try "
        "'modelloop data show loans', 'modelloop data head loans@1', "
        "'modelloop data quarantine loans'."
    )
