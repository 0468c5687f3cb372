"""``modelloop quickstart``: a workspace with a sample dataset, in one command; and
``modelloop samples``: the sample files alone, to follow the README's quickstart by hand."""

from __future__ import annotations

from pathlib import Path

import click

from modelloop.cli import render


@click.command()
@click.argument("directory", default="modelloop-quickstart", type=click.Path(file_okay=False))
def quickstart(directory: str) -> None:
    """Create a workspace in DIRECTORY, ingest three days of sample loan applications, show them.

    \b
    The files are those of 'modelloop samples': day1.csv, then incoming/ (two more days, the
    last with a few malformed rows, which are quarantined).
    """
    from modelloop.data import samples
    from modelloop.workspace import Workspace

    root = Path(directory).resolve()
    ws = Workspace(root) if (root / "modelloop.toml").exists() else Workspace.init(root)
    render.out.print(f"Workspace [bold]{ws.root}[/bold]")
    for f in samples.write_quickstart_files(root):
        report = ws.datasets.ingest("loans", [f], event_time_column="applied_at")
        v = report.version
        shown = f.relative_to(root)
        if v is None:
            render.out.print(f"  {shown}: already ingested")
        else:
            q = f", [yellow]{v.quarantined_rows} quarantined[/yellow]" if v.quarantined_rows else ""
            render.out.print(f"  {shown} → [bold]{v.ref}[/bold] (+{v.added_rows:,} rows{q})")
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


@click.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@click.option("--rows", type=click.IntRange(1, 1_000_000), default=5_000, show_default=True,
              help="Loan applications per day.")
def samples(directory: str, rows: int) -> None:
    """Write the README quickstart's sample files into DIRECTORY (default: here).

    \b
    day1.csv         the first day of loan applications
    incoming/        the next two days, the last with a few malformed rows
    Files already there are left as they are.
    """
    from modelloop.data import samples as sample_data

    root = Path(directory).resolve()
    for f in sample_data.write_quickstart_files(root, rows_per_day=rows):
        render.out.print(str(f.relative_to(root)))
