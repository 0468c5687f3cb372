"""``modelloop features …``: feature set definitions, point-in-time history, online values."""

from __future__ import annotations

from pathlib import Path

import click

from modelloop.cli import render
from modelloop.cli.context import Context, json_option, pass_ctx
from modelloop.errors import InvalidInput


@click.group()
def features() -> None:
    """Feature sets: windowed aggregates by entity, point-in-time joins, online lookups."""


@features.command("apply")
@click.argument("path", type=click.Path(dir_okay=False))
@json_option
@pass_ctx
def features_apply(c: Context, path: str, as_json: bool) -> None:
    """Store the feature set defined in PATH (features.yaml), checked."""
    row = c.ws.features.apply(path)
    if as_json:
        return render.print_json(row)
    what = "applied" if row["changed"] else "unchanged"
    render.out.print(f"Feature set [bold]{row['name']}[/bold] v{row['version']} {what}: "
                     f"{len(row['spec']['features'])} features from {row['source']}")


@features.command("list")
@json_option
@pass_ctx
def features_list(c: Context, as_json: bool) -> None:
    """List feature sets."""
    rows = c.ws.features.list()
    if as_json:
        return render.print_json(rows)
    render.table("Feature sets", ["name", "version", "source", "entity", "features", "updated"],
                 [[r["name"], r["version"], r["source"], ", ".join(r["spec"]["entities"]),
                   len(r["spec"]["features"]), r["updated_at"]] for r in rows])  # fmt: skip


@features.command("show")
@click.argument("name")
@json_option
@pass_ctx
def features_show(c: Context, name: str, as_json: bool) -> None:
    """A feature set's definition."""
    row = c.ws.features.show(name)
    if as_json:
        return render.print_json(row)
    spec = row["spec"]
    render.out.print(f"[bold]{name}[/bold] v{row['version']}: source {spec['source']}, entity "
                     f"{', '.join(spec['entities'])}, event time {spec['event_time']}")
    render.table(None, ["feature", "aggregate", "of", "window"],
                 [[f["name"], f["aggregate"], f.get("column") or f.get("expression") or "rows",
                   " ".join(x for x in (f.get("window_type", "sliding") if f.get("window") else "",
                                        f.get("window") or "all", f"every {f['hop']}"
                                        if f.get("hop") else "") if x)]
                  for f in spec["features"]])  # fmt: skip


def _read_frame(path: str):
    import pandas as pd

    p = Path(path)
    if not p.exists():
        raise InvalidInput(f"no file {path!r}")
    if p.suffix in (".parquet", ".pq"):
        return pd.read_parquet(p)
    if p.suffix in (".jsonl", ".ndjson"):
        return pd.read_json(p, lines=True)
    return pd.read_csv(p)


def _print_frame(frame, as_json: bool, title: str) -> None:
    from modelloop.common.jsonable import to_jsonable

    records = to_jsonable(frame.to_dict(orient="records"))
    if as_json:
        return render.print_json(records)
    render.table(title, list(frame.columns), [list(r.values()) for r in records])


@features.command("history")
@click.argument("name")
@click.option("--entities", "entities", required=True, type=click.Path(dir_okay=False),
              help="CSV, Parquet or JSON Lines file: an entity key and a time per row.")
@click.option("--timestamp", help="The time column of the file (default: the event-time column).")
@click.option("--source", help="Read this version of the source (e.g. tx@3; default: latest).")
@click.option("--output", "-o", type=click.Path(dir_okay=False),
              help="Write the rows to this file (.parquet or .csv) instead of printing them.")
@json_option
@pass_ctx
def features_history(c: Context, name, entities, timestamp, source, output, as_json) -> None:  # fmt: skip
    """Each feature as known at each row's time (a point-in-time correct join)."""
    frame = c.ws.features.get_historical(name, _read_frame(entities), timestamp=timestamp,
                                         source=source)  # fmt: skip
    if output:
        (frame.to_parquet if output.endswith((".parquet", ".pq")) else
         lambda p: frame.to_csv(p, index=False))(output)  # fmt: skip
        return render.out.print(f"Wrote {len(frame)} rows to {output}")
    _print_frame(frame, as_json, f"{name} as of each row")


@features.command("backfill")
@click.argument("name")
@json_option
@pass_ctx
def features_backfill(c: Context, name: str, as_json: bool) -> None:
    """Compute the online store of NAME afresh from its source's whole history."""
    report = c.ws.features.backfill(name)
    if as_json:
        return render.print_json(report)
    render.out.print(f"Backfilled [bold]{name}[/bold] from {report['version']} version(s) of its "
                     f"source: {report['applied']} rows, {report['entities']} entities")


@features.command("get")
@click.argument("name")
@click.argument("keys", nargs=-1, required=True)
@click.option("--at", help="As of this time (ISO 8601; default now).")
@json_option
@pass_ctx
def features_get(c: Context, name: str, keys: tuple[str, ...], at: str | None, as_json) -> None:
    """Online features of entities: NAME card_id=42 [card_id=43 …]."""
    entity = c.ws.features.show(name)["spec"]["entities"][0]
    values = []
    for item in keys:
        key, sep, value = item.partition("=")
        if not sep or key != entity:
            raise click.BadParameter(f"{item!r}: use KEY=VALUE with the entity key "
                                     f"({entity}=...)", param_hint="KEYS")  # fmt: skip
        values.append(value)
    rows = c.ws.features.get_online(name, values, at=at)
    import pandas as pd

    _print_frame(pd.DataFrame(rows), as_json, f"{name} online")
