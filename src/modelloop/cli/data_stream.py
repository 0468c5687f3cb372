"""``modelloop data stream NAME --from SOURCE``: feed a dataset from a stream, in micro-batches."""

from __future__ import annotations

import click

from modelloop.cli import render
from modelloop.cli.context import Context, json_option, pass_ctx
from modelloop.errors import InvalidInput

#: Prefixes a watch trigger lists (fsspec's object stores).
_WATCHABLE = ("s3://", "gs://", "gcs://", "az://", "abfs://", "file://")


@click.command()
@click.argument("name")
@click.option("--from", "source", default="rows", show_default=True, metavar="SOURCE",
              help="rows (rows POSTed to /datasets/NAME/rows or appended by the SDK), "
                   "redis://HOST:PORT/DB?stream=S&group=G, or a folder / s3:// prefix to watch "
                   "(each new file becomes a version, through a watch trigger).")
@click.option("--every-rows", type=click.IntRange(min=1), default=10_000, show_default=True,
              help="Commit a version once this many rows are gathered.")
@click.option("--every-seconds", type=click.FloatRange(min=0, min_open=True), default=60.0,
              show_default=True, help="... or once the first gathered row waited this long.")
@click.option("--key", "keys", multiple=True, metavar="COLUMN",
              help="An entity key column: rows without a value in it are quarantined.")
@click.option("--event-time", "event_time_column", metavar="COLUMN",
              help="The event-time column (rows without a parseable time are quarantined).")
@click.option("--allow-schema-evolution", is_flag=True,
              help="Accept new columns (else a batch with one stops the consumer, its rows kept).")
@click.option("--consumer", help="This consumer's name in the Redis group (default: NAME).")
@click.option("--max-batches", type=click.IntRange(min=1), help="Stop after this many versions.")
@click.option("--until-idle", is_flag=True,
              help="Commit what is there and stop when the source has nothing more.")
@click.option("--status", "status", is_flag=True,
              help="Show the rows waiting and each source's committed position, and exit.")
@json_option
@pass_ctx
def stream(c: Context, name, source, every_rows, every_seconds, keys, event_time_column,
           allow_schema_evolution, consumer, max_batches, until_idle, status, as_json) -> None:
    """Feed dataset NAME from a stream: rows are committed as versions in micro-batches (by
    size or time), each row exactly once, with file ingest's schema rules and quarantine; each
    batch writes metric series (stream.rows, stream.quarantined_rows, stream.null_fraction) and
    evaluates alarms, and the dataset's after-ingest monitors check it."""
    if status:
        _show_status(c, name, as_json)
        return
    if not source.startswith(("rows", "http", "redis://", "rediss://")):
        _watch(c, name, source, as_json)
        return
    import signal

    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))

    def on_batch(b: dict) -> None:
        if as_json:
            return
        render.out.print(f"[bold]{b['version']}[/bold]: {b['rows']:,} rows"
                         + (f", [yellow]{b['quarantined_rows']:,} quarantined[/yellow]"
                            if b["quarantined_rows"] else ""))
        for r in b["monitor_runs"]:
            if "n_violations" in r:
                render.out.print(f"  monitor {r['monitor']}: {r['n_violations']} violation(s)")
            else:
                render.err.print(f"  monitor {r.get('monitor', '?')} failed: {r.get('error')}")
        for a in b["alarms"]:
            render.out.print(f"  alarm {a['alarm']} -> {a['state']}: {a.get('reason') or ''}")

    if not as_json and not until_idle:
        render.note(f"streaming {source} into {name} (every {every_rows:,} rows or "
                    f"{every_seconds:g} s); stop with Ctrl-C")
    out = c.local_ws.streams.consume(
        name, source, every_rows=every_rows, every_seconds=every_seconds,
        key_columns=list(keys), event_time_column=event_time_column,
        allow_schema_evolution=allow_schema_evolution, consumer=consumer,
        max_batches=max_batches, until_idle=until_idle, on_batch=on_batch,
        should_stop=lambda: bool(stopping))
    if as_json:
        render.print_json(out)
    else:
        render.out.print(f"{out['batches']} version(s), {out['rows']:,} rows, "
                         f"{out['quarantined_rows']:,} quarantined")


def _show_status(c: Context, name: str, as_json: bool) -> None:
    st = c.ws.datasets.stream_status(name)
    if as_json:
        render.print_json(st)
        return
    b = st["backlog"]
    render.out.print(f"{name}: {b['rows']:,} rows waiting in {b['appends']} append(s)"
                     + (f", oldest {b['oldest']:%Y-%m-%d %H:%M:%S}" if b["oldest"] else ""))
    for s in st["sources"]:
        render.out.print(f"  {s['source']}: at {s['position']} ({s['rows']:,} rows, "
                         f"last in {name}@{s['version']})")


def _watch(c: Context, name: str, location: str, as_json: bool) -> None:
    """A folder or prefix: the watched-folder trigger ingests each new file (automation)."""
    import os

    if "://" in location and not location.startswith(_WATCHABLE):
        raise InvalidInput(f"unknown stream source {location!r}",
                           hint="use rows, redis://HOST:PORT/DB?stream=S, a folder or an "
                                "s3:// prefix")
    if "://" not in location:
        if not os.path.isdir(location):
            raise InvalidInput(f"unknown stream source {location!r}: not a folder",
                               hint="use rows, redis://HOST:PORT/DB?stream=S, a folder or "
                                    "an s3:// prefix")
        location = os.path.abspath(location)
    trigger = c.ws.triggers.create(
        f"stream-{name}", cause={"on": "watch", "location": location, "dataset": name,
                                 "pattern": "*", "settle_seconds": 2.0},
        action={"do": "ingest"})
    if as_json:
        render.print_json(trigger)
        return
    render.out.print(f"Watching {location}: each new file becomes a version of {name} "
                     f"(trigger [bold]{trigger['name']}[/bold]; the controller runs it: "
                     "'modelloop controller' or 'modelloop up')")
