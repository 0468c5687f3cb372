"""The offline store: a feature set's source rows, and point-in-time correct joins over them.

``historical`` answers, for each row of an entity frame (a key and a time), every feature as it
was known at that time: computed from the source rows of that key with an event time at or before
the row's time (never from the future), inside the feature's window. Every row of the frame comes
back, in its order; a key without earlier rows gets empty aggregates (count 0, others null)
rather than being dropped.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from modelloop.errors import InvalidInput
from modelloop.features.spec import FeatureSet, evaluate_expression
from modelloop.features.windows import Events, compute


def arrow_times_ns(column, what: str) -> np.ndarray:
    """An Arrow timestamp/date column as int64 nanoseconds since the epoch (naive = UTC)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    t = column.type
    if pa.types.is_date(t):
        column = column.cast(pa.timestamp("ns"))
    elif pa.types.is_timestamp(t):
        if t.unit != "ns":
            column = column.cast(pa.timestamp("ns", t.tz))
    elif pa.types.is_string(t) or pa.types.is_large_string(t):
        return series_times_ns(column.to_pandas(), what)
    else:
        raise InvalidInput(f"{what} is {t}, not a timestamp")
    if column.null_count:
        raise InvalidInput(f"{what} has {column.null_count} missing time(s)")
    return column.cast(pa.int64()).to_numpy(zero_copy_only=False)


def series_times_ns(series, what: str) -> np.ndarray:
    """Times given by a person (a pandas Series of datetimes or text; naive = UTC) as int64 ns."""
    try:
        parsed = pd.to_datetime(pd.Series(series), utc=True, format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"{what}: cannot read the times ({exc})",
                           hint="use ISO 8601 times such as 2026-05-03T12:00:00Z") from None
    if parsed.isna().any():
        raise InvalidInput(f"{what}: {int(parsed.isna().sum())} missing or unparseable time(s)",
                           hint="every row needs a time")
    return parsed.dt.tz_convert(None).dt.as_unit("ns").to_numpy().view(np.int64)


def row_inputs(fs: FeatureSet, table: pa.Table) -> dict:
    """The per-row values the features aggregate (columns, evaluated expressions)."""
    values = {}
    for f in fs.features:
        if f.input is None or f.input in values:
            continue
        if f.expression:
            from modelloop.features.spec import expression_names

            cols = {n: table.column(n).to_numpy(zero_copy_only=False)
                    for n in expression_names(f.expression)}  # fmt: skip
            values[f.input] = evaluate_expression(f.expression, cols)
            continue
        col = table.column(f.column)
        t = col.type
        if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
            values[f.input] = col.cast(pa.float64()).to_numpy(zero_copy_only=False)
        else:
            values[f.input] = np.asarray(col.to_pylist(), dtype=object)
    return values


def key_codes(event_keys: np.ndarray, query_keys) -> tuple[np.ndarray, np.ndarray, pd.Index]:
    """Integer codes for the events' keys, and the queries' codes in the same coding (-1 for a
    key with no events). Query keys typed differently from the source's (``"42"`` against an int
    column, from a command line) are converted to the source's type first."""
    codes, uniques = pd.factorize(event_keys)
    uniques = pd.Index(uniques)
    q = pd.Series(query_keys)
    if pd.api.types.is_numeric_dtype(uniques.dtype) and not pd.api.types.is_numeric_dtype(q.dtype):
        q = pd.to_numeric(q, errors="coerce")
    elif not pd.api.types.is_numeric_dtype(uniques.dtype) and pd.api.types.is_numeric_dtype(q.dtype):
        q = q.astype(str)
    return codes.astype(np.int64), uniques.get_indexer(q).astype(np.int64), uniques


def source_events(fs: FeatureSet, table: pa.Table) -> tuple[np.ndarray, np.ndarray, dict]:
    """(keys, times in ns, inputs) of the source rows that carry both a key and a time."""
    keys = table.column(fs.entity)
    times = table.column(fs.event_time)
    valid = pc.and_(pc.is_valid(keys), pc.is_valid(times))
    if valid.null_count or not pc.all(valid).as_py():
        table = table.filter(valid)
    return (table.column(fs.entity).to_numpy(), arrow_times_ns(table.column(fs.event_time), "event_time"),
            row_inputs(fs, table))  # fmt: skip


def historical(fs: FeatureSet, table: pa.Table, entity_frame: pd.DataFrame,
               timestamp: str | None = None) -> pd.DataFrame:  # fmt: skip
    """The entity frame with each feature as known at its row's time (point-in-time correct)."""
    timestamp = timestamp or fs.event_time
    missing = [c for c in (fs.entity, timestamp) if c not in entity_frame.columns]
    if missing:
        raise InvalidInput(f"the entity frame lacks column(s) {', '.join(map(repr, missing))}",
                           hint=f"give each row its key {fs.entity!r} and its time {timestamp!r}")
    if entity_frame[fs.entity].isna().any():
        raise InvalidInput(f"the entity frame has rows without a {fs.entity!r}")
    q_times = series_times_ns(entity_frame[timestamp], f"column {timestamp!r}")
    keys, times, inputs = source_events(fs, table)
    ev_codes, q_codes, _ = key_codes(keys, entity_frame[fs.entity].to_numpy())
    values = compute(fs.features, Events.build(ev_codes, times, inputs), q_codes, q_times)
    out = entity_frame.copy()
    for name, arr in values.items():
        out[name] = arr
    return out
