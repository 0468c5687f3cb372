"""Reading a dataset version's parts: as batches, a table, its head, its quarantine, its stats.

Parts written before a schema evolution are shaped as the version's schema on the way out
(:func:`conform`), so every reader sees one schema whatever the version's history.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from modelloop.data.versions import DatasetVersion
from modelloop.errors import InvalidInput

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

    from modelloop.artifacts import ArtifactStore


def _present(pf, schema: pa.Schema) -> list[str]:
    have = set(pf.schema_arrow.names)  # a property that rebuilds the schema: once
    return [f.name for f in schema if f.name in have]


def iter_batches(artifacts: ArtifactStore, v: DatasetVersion, parts: list[dict],
                 columns: list[str] | None, batch_size: int) -> Iterator[pa.RecordBatch]:
    """The parts' rows as record batches of the version's schema (memory bounded by one part)."""
    import pyarrow.parquet as pq

    schema = target_schema(v.schema, check_columns(v, columns))
    for part in parts:
        pf = pq.ParquetFile(artifacts.open(part["digest"]))
        for batch in pf.iter_batches(batch_size=batch_size, columns=_present(pf, schema)):
            yield conform(batch, schema)


def read_table(artifacts: ArtifactStore, v: DatasetVersion, parts: list[dict],
               columns: list[str] | None) -> pa.Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = target_schema(v.schema, check_columns(v, columns))
    tables = []
    for p in parts:
        pf = pq.ParquetFile(artifacts.open(p["digest"]))
        tables.append(conform(pf.read(columns=_present(pf, schema)), schema))
    if not tables:
        return schema.empty_table()
    return pa.concat_tables(tables)


def head(artifacts: ArtifactStore, v: DatasetVersion, parts: list[dict], n: int,
         columns: list[str] | None) -> pa.Table:
    import pyarrow as pa

    got, taken = [], 0
    for batch in iter_batches(artifacts, v, parts, columns, max(n, 1)):
        got.append(batch.slice(0, n - taken))
        taken += got[-1].num_rows
        if taken >= n:
            break
    schema = (
        got[0].schema
        if got
        else (v.schema if columns is None else pa.schema([v.schema.field(c) for c in columns]))
    )
    return pa.Table.from_batches(got, schema=schema)


def read_quarantine(artifacts: ArtifactStore, parts: list[dict]) -> pa.Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = [pq.read_table(artifacts.open(p["digest"])) for p in parts]
    return pa.concat_tables(tables, promote_options="permissive") if tables else pa.table({})


def quarantine_page(artifacts: ArtifactStore, parts: list[dict], limit: int,
                    offset: int) -> list[dict]:
    """Rows ``offset`` to ``offset + limit`` of the quarantine parts, in order, as records;
    parts and batches before the page are skipped by their row counts, unread."""
    import pyarrow.parquet as pq

    if limit < 0 or offset < 0:
        raise InvalidInput("limit and offset must not be negative")
    rows: list[dict] = []
    for p in parts:
        if len(rows) >= limit:
            break
        pf = pq.ParquetFile(artifacts.open(p["digest"]))
        for i in range(pf.num_row_groups):
            n = pf.metadata.row_group(i).num_rows
            if offset >= n:
                offset -= n
                continue
            group = pf.read_row_group(i).slice(offset, limit - len(rows))
            offset = 0
            rows.extend(group.to_pylist())
            if len(rows) >= limit:
                break
    return rows


def column_stats(schema: pa.Schema, batches: Iterable[pa.RecordBatch]) -> list[dict]:
    """Per-column summary in one streaming pass: missing, min, max, mean, distinct (capped)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    acc = {
        f.name: {
            "column": f.name,
            "type": str(f.type),
            "missing": 0,
            "min": None,
            "max": None,
            "sum": 0.0,
            "count": 0,
            "distinct": set(),
        }
        for f in schema
    }
    for batch in batches:
        for name, col in zip(batch.schema.names, batch.columns, strict=True):
            a = acc[name]
            a["missing"] += col.null_count
            t = col.type
            if (
                pa.types.is_integer(t)
                or pa.types.is_floating(t)
                or pa.types.is_timestamp(t)
                or pa.types.is_date(t)
                or pa.types.is_time(t)
            ):  # not durations nor intervals: Arrow has no min_max for them
                mm = pc.min_max(col)
                lo, hi = mm["min"].as_py(), mm["max"].as_py()
                if lo is not None:
                    a["min"] = lo if a["min"] is None else min(a["min"], lo)
                    a["max"] = hi if a["max"] is None else max(a["max"], hi)
                if not pa.types.is_temporal(t):
                    s = pc.sum(col).as_py()
                    a["sum"] += s or 0
                    a["count"] += len(col) - col.null_count
            elif (
                pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_boolean(t)
            ) and len(a["distinct"]) <= 1000:
                a["distinct"].update(pc.unique(col).to_pylist())
    out = []
    for a in acc.values():
        row = {
            "column": a["column"],
            "type": a["type"],
            "missing": a["missing"],
            "min": a["min"],
            "max": a["max"],
            "mean": (a["sum"] / a["count"]) if a["count"] else None,
            "distinct": (len(a["distinct"] - {None}) if a["distinct"] else None),
        }
        if row["distinct"] is not None and len(a["distinct"]) > 1000:
            row["distinct"] = ">1000"
        out.append(row)
    return out


def check_columns(v: DatasetVersion, columns: list[str] | None) -> list[str] | None:
    if columns is None:
        return None
    known = set(v.schema.names)
    missing = [c for c in columns if c not in known]
    if missing:
        raise InvalidInput(
            f"dataset {v.ref} has no column {missing[0]!r}",
            hint=f"its columns are: {', '.join(v.schema.names)}",
        )
    return list(columns)


def target_schema(schema: pa.Schema, columns: list[str] | None) -> pa.Schema:
    import pyarrow as pa

    return schema if columns is None else pa.schema([schema.field(c) for c in columns])


def conform(data, schema: pa.Schema):
    """A part written before a schema evolution, shaped as the version's schema.

    Columns added later read as nulls; a widened type is cast. Parts already in shape pass
    through untouched (the common case costs one schema comparison).
    """
    import pyarrow as pa

    if data.schema.equals(schema, check_metadata=False):
        return data
    arrays, have = [], set(data.schema.names)
    for column_field in schema:
        if column_field.name in have:
            column = data.column(column_field.name)
            arrays.append(column if column.type == column_field.type else column.cast(column_field.type))
        else:
            arrays.append(pa.nulls(data.num_rows, type=column_field.type))
    if isinstance(data, pa.RecordBatch):
        return pa.RecordBatch.from_arrays(arrays, schema=schema)
    return pa.Table.from_arrays(arrays, schema=schema)
