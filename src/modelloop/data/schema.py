"""Schema rules for ingest: which incoming types fit a dataset's schema, and how text is conformed.

A dataset's schema is decided by its first version and changes only when the user allows schema
evolution. The rules, used by :mod:`modelloop.data.ingest`:

- *fits*: a typed incoming column (Parquet, JSON numbers) that can be cast without changing the
  dataset's type is cast: any integer into int64 or float64, float32 into float64, timestamps of
  any unit or zone into the dataset's timestamp, dates into timestamps, anything into string.
  Anything else (a float column into an int column, a string column into a bool one) is a clash.
- *text* columns (CSV fields, JSON strings) are converted value by value: values that do not
  convert are bad rows (quarantined), unless most of the column is bad, which is a clash.
- *unify*: the common type two types widen to, used for new datasets (whose types are inferred per
  block) and for evolution: int + float -> float64; timestamps -> timestamp[us]; otherwise string.
- *infer_text*: the narrowest type that every non-null value of a text column converts to, tried in
  the order int64, float64, timestamp, bool, string.

Nested columns (lists, structs, maps) are kept as they are, up to :data:`MAX_NESTING` levels; where
a nested column must widen to text (a list in one block, a number in another), values become JSON.

Timestamps are stored in microseconds (the range of nanoseconds ends in 2262, and pandas and
Parquet read microseconds everywhere); sub-microsecond digits are truncated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

#: Unit every timestamp column is stored in.
TIME_UNIT = "us"

#: Spellings read as booleans (the same ones pyarrow's CSV reader accepts, plus yes/no).
TRUE_VALUES = ("true", "1", "yes", "t", "y")
FALSE_VALUES = ("false", "0", "no", "f", "n")

#: Text read as a missing value in a typed column (pyarrow's and pandas' CSV defaults).
NULL_MARKERS = frozenset(
    ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN"]
    + ["N/A", "NA", "NULL", "NaN", "n/a", "nan", "null", "None"]
)


#: Deepest nesting of lists, structs and maps a column may have. Arrow refuses to read back a
#: schema nested about 125 levels deep (its flatbuffers verifier), so deeper data would be written
#: but never read again; real records nest a few levels. Deeper JSON values are quarantined, deeper
#: typed columns refused.
MAX_NESTING = 32


def nesting(t: pa.DataType) -> int:
    """How many levels of lists, structs and maps ``t`` nests (0 for a flat type).

    Iterative like :func:`value_nesting`: a type read from a hostile file may nest thousands deep.
    """
    deepest, stack = 0, [(t, 0)]
    while stack:
        t, depth = stack.pop()
        if t.num_fields:
            deepest = max(deepest, depth + 1)
            stack.extend((t.field(i).type, depth + 1) for i in range(t.num_fields))
    return deepest


def value_nesting(value: object, limit: int = MAX_NESTING) -> int:
    """How deep a parsed JSON value nests lists and objects; stops counting past ``limit``.

    Iterative, so that a value nested thousands of levels costs no recursion.
    """
    deepest, stack = 0, [(value, 0)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, dict | list):
            depth += 1
            if depth > limit:
                return depth
            deepest = max(deepest, depth)
            stack.extend((x, depth) for x in (v.values() if isinstance(v, dict) else v))
    return deepest


def castable(src: pa.DataType, dst: pa.DataType) -> bool:
    """Whether Arrow itself casts ``src`` to ``dst``: what a reader does to older parts."""
    import pyarrow as pa

    try:
        pa.array([], type=src).cast(dst)
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        return False
    return True


def is_text(t: pa.DataType) -> bool:
    import pyarrow as pa

    return pa.types.is_string(t) or pa.types.is_large_string(t)


def is_time(t: pa.DataType) -> bool:
    import pyarrow as pa

    return pa.types.is_timestamp(t) or pa.types.is_date(t)


def normalize_type(t: pa.DataType) -> pa.DataType:
    """The type a new dataset stores for an incoming type (one spelling per kind)."""
    import pyarrow as pa

    if pa.types.is_dictionary(t):
        return normalize_type(t.value_type)
    if is_text(t):
        return pa.string()
    if pa.types.is_large_binary(t):
        return pa.binary()
    if pa.types.is_timestamp(t):
        return pa.timestamp(TIME_UNIT, t.tz)
    if pa.types.is_integer(t):
        return pa.int64()
    if pa.types.is_floating(t):
        return pa.float64()
    return t


def normalize_schema(schema: pa.Schema) -> pa.Schema:
    """Normalized types, every field nullable, no metadata (pandas' would go stale)."""
    import pyarrow as pa

    return pa.schema([pa.field(f.name, normalize_type(f.type)) for f in schema])


def fits(src: pa.DataType, dst: pa.DataType) -> bool:
    """Whether a typed column of ``src`` can be stored in a ``dst`` column without a schema change."""
    import pyarrow as pa

    t = pa.types
    if src == dst or t.is_null(src) or is_text(dst):
        return True
    if t.is_dictionary(src):
        return fits(src.value_type, dst)
    if t.is_integer(src):
        return t.is_integer(dst) or t.is_floating(dst)
    if t.is_floating(src):
        return t.is_floating(dst) and src.bit_width <= dst.bit_width
    if is_time(src):
        return t.is_timestamp(dst) or (t.is_date(src) and t.is_date(dst))
    return False


def unify(a: pa.DataType, b: pa.DataType) -> pa.DataType:
    """The narrowest type both ``a`` and ``b`` widen to."""
    import pyarrow as pa

    a, b = normalize_type(a), normalize_type(b)
    t = pa.types
    if a == b:
        return a
    if t.is_null(a):
        return b
    if t.is_null(b):
        return a
    if (t.is_integer(a) or t.is_floating(a)) and (t.is_integer(b) or t.is_floating(b)):
        return pa.float64()
    if is_time(a) and is_time(b):
        tz = a.tz if t.is_timestamp(a) else None
        tz = tz or (b.tz if t.is_timestamp(b) else None)
        return pa.timestamp(TIME_UNIT, tz)
    return pa.string()


def cast_typed(arr, dst: pa.DataType):
    """Cast a column that :func:`fits` ``dst``; timestamps may lose sub-microsecond digits."""
    import pyarrow as pa

    if arr.type == dst:
        return arr
    if is_text(dst) and arr.type.num_fields and not castable(arr.type, dst):
        # Arrow has no cast from nested types to text: keep the values as JSON
        import json

        return pa.array(
            [None if v is None else json.dumps(v, default=str) for v in arr.to_pylist()],
            type=dst,
        )
    safe = not (pa.types.is_timestamp(dst) and is_time(arr.type))
    return arr.cast(dst, safe=safe)


def align_table(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` in ``schema``'s columns and types: missing columns null, widened types cast.

    Used to rewrite parts written before a schema widened, and to read a dataset's older parts
    (written under a narrower schema) together with newer ones.
    """
    import pyarrow as pa

    have = set(table.column_names)
    cols = [
        cast_typed(table[f.name], f.type) if f.name in have else pa.nulls(table.num_rows, f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(cols, schema=schema)


# -- text ----------------------------------------------------------------------------------------


def infer_text(arr: pa.Array | pa.ChunkedArray) -> pa.DataType:
    """The narrowest type all non-null values convert to (int64, float64, timestamp, bool, string)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if arr.null_count == len(arr):
        return pa.null()
    # a failed cast costs a pass over the column: rule candidates out on a sample first
    sample = pc.drop_null(arr.slice(0, 4096))
    for candidate in (
        pa.int64(),
        pa.float64(),
        pa.timestamp(TIME_UNIT, "UTC"),
        pa.timestamp(TIME_UNIT),
        pa.bool_(),
    ):
        try:
            sample.cast(candidate)
            arr.cast(candidate)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        return candidate
    return pa.string()


def conform_text(
    arr: pa.Array | pa.ChunkedArray, dst: pa.DataType
) -> tuple[pa.Array, np.ndarray | None]:
    """Convert a text column to ``dst``; returns the values and a mask of values that failed.

    The mask is None when every value converted (the common case: one vectorized cast). Otherwise
    pandas converts value by value, failures become null, and the mask marks them (a value that
    was null to begin with is not a failure).
    """
    import pyarrow as pa

    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if is_text(dst):
        return arr.cast(dst), None
    try:
        return arr.cast(dst), None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    import numpy as np
    import pandas as pd

    s = pd.Series(arr.to_numpy(zero_copy_only=False), dtype=object)
    given = s.notna().to_numpy() & ~s.astype(str).str.strip().isin(NULL_MARKERS).to_numpy()
    t = pa.types
    if t.is_integer(dst) or t.is_floating(dst):
        num = pd.to_numeric(s, errors="coerce")
        ok = num.notna().to_numpy().copy()
        if t.is_integer(dst):
            ok &= (num.fillna(0) % 1 == 0).to_numpy()
            values = pa.array(num.where(ok, None).astype("Int64"), type=pa.int64())
        else:
            values = pa.array(num.where(ok, np.nan).to_numpy(dtype="float64"), mask=~ok)
        values = values.cast(dst)
    elif t.is_timestamp(dst) or t.is_date(dst):
        parsed = pd.to_datetime(s, errors="coerce", utc=True, format="mixed")
        ok = parsed.notna().to_numpy()
        # UTC wall times; naive targets keep them, zoned targets read them as UTC
        utc = parsed.dt.tz_convert(None).to_numpy(dtype=f"datetime64[{TIME_UNIT}]")
        values = pa.array(utc, type=pa.timestamp(TIME_UNIT), from_pandas=True)
        if t.is_timestamp(dst) and dst.tz is not None:
            values = values.cast(pa.timestamp(TIME_UNIT, "UTC"))
        values = values.cast(dst)
    elif t.is_boolean(dst):
        low = s.astype(str).str.strip().str.lower()
        truth = low.isin(TRUE_VALUES).to_numpy()
        ok = truth | low.isin(FALSE_VALUES).to_numpy()
        values = pa.array(truth, mask=~ok)
    else:
        # Rare target types (decimal, time, binary...): pandas has no converter; cast one by one.
        out, ok = [], []
        for v in arr:
            try:
                out.append(v.cast(dst).as_py() if v.is_valid else None)
                ok.append(True)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                out.append(None)
                ok.append(False)
        values, ok = pa.array(out, type=dst), np.array(ok)
    bad = given & ~ok  # failed values are null in ``values`` already
    return values, (bad if bad.any() else None)
