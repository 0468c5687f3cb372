"""Column access over the inputs the quality package accepts.

Baselines and checks read data one column of one batch at a time, so that a dataset larger than
memory (an iterable of pyarrow RecordBatches) and a 1M-row pandas frame are both read without
materialising a second copy of the data: a frame is one batch whose columns are turned into NumPy
arrays (or value counts) only when asked for, and dropped right after.

Accepted inputs: a pandas DataFrame, a pyarrow Table or RecordBatch, or an iterable of any of these.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from modelloop.errors import InvalidInput, SchemaMismatch

NUMERIC = "numeric"
CATEGORICAL = "categorical"


class Batch:
    """One batch of rows, read column by column."""

    def __init__(self, data: pd.DataFrame | pa.RecordBatch | pa.Table):
        self._data = data
        self._pandas = isinstance(data, pd.DataFrame)
        self.names: list[str] = (
            [str(c) for c in data.columns] if self._pandas else data.schema.names
        )
        if len(set(self.names)) != len(self.names):
            raise InvalidInput(
                "the data has duplicate column names", hint="give every column a unique name"
            )
        self.n_rows = len(data) if self._pandas else data.num_rows

    def _column(self, name: str) -> Any:
        if self._pandas:
            return self._data[name]
        col = self._data.column(name)
        if isinstance(col, pa.ChunkedArray):
            col = col.combine_chunks()
        if pa.types.is_dictionary(col.type):
            col = col.dictionary_decode()
        return col

    def kind(self, name: str) -> str | None:
        """``numeric``, ``categorical``, or None for types we do not profile (times, lists, ...)."""
        if self._pandas:
            dtype = self._data[name].dtype
            if pd.api.types.is_bool_dtype(dtype):
                return CATEGORICAL
            if pd.api.types.is_numeric_dtype(dtype):
                return NUMERIC
            if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(dtype):
                return CATEGORICAL
            if pd.api.types.is_object_dtype(dtype):
                return CATEGORICAL
            return None
        t = self._data.schema.field(name).type
        if pa.types.is_dictionary(t):
            t = t.value_type
        if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
            return NUMERIC
        if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_boolean(t):
            return CATEGORICAL
        if hasattr(pa.types, "is_string_view") and pa.types.is_string_view(t):
            return CATEGORICAL
        return None

    def is_temporal(self, name: str) -> bool:
        """Dates, times, timestamps and durations (columns whose role is ``time``)."""
        if self._pandas:
            dtype = self._data[name].dtype
            return pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(
                dtype
            )
        t = self._data.schema.field(name).type
        return pa.types.is_temporal(t.value_type if pa.types.is_dictionary(t) else t)

    def is_integer_typed(self, name: str) -> bool:
        if self._pandas:
            return pd.api.types.is_integer_dtype(self._data[name].dtype)
        t = self._data.schema.field(name).type
        return pa.types.is_integer(t.value_type if pa.types.is_dictionary(t) else t)

    def numbers(self, name: str) -> tuple[np.ndarray, int]:
        """Finite values as float64, and how many non-missing values were not numbers.

        Missing values (null, NaN, +-inf) are dropped; strings that do not parse as numbers (a CSV
        capture of a numeric feature, say) are dropped too and counted as type mismatches.
        """
        col = self._column(name)
        unparsed = 0
        if self.kind(name) == NUMERIC:
            if self._pandas:
                x = col.to_numpy(dtype="float64", na_value=np.nan)
            else:
                x = pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
        else:
            s = col if self._pandas else col.to_pandas()
            parsed = pd.to_numeric(s, errors="coerce")
            unparsed = int(parsed.isna().sum() - s.isna().sum())
            x = parsed.to_numpy(dtype="float64", na_value=np.nan)
        finite = np.isfinite(x)
        if not finite.all():
            x = x[finite]
        return x, unparsed

    def value_counts(self, name: str) -> tuple[list[str], np.ndarray]:
        """Distinct non-missing values (as strings) and their counts."""
        col = self._column(name)
        if self._pandas:
            vc = col.value_counts(dropna=True, sort=False)
            keys = vc.index.tolist()
            counts = vc.to_numpy(dtype=np.int64)
        else:
            vc = pc.value_counts(col)
            keys = vc.field("values").to_pylist()
            counts = vc.field("counts").to_numpy(zero_copy_only=False).astype(np.int64)
            keep = [i for i, k in enumerate(keys) if k is not None]
            if len(keep) != len(keys):
                keys = [keys[i] for i in keep]
                counts = counts[keep]
        return [k if isinstance(k, str) else _category(k) for k in keys], counts

    def missing(self, name: str) -> int:
        col = self._column(name)
        return int(col.isna().sum()) if self._pandas else int(col.null_count)


def _category(value: Any) -> str:
    """Categories are compared as strings; integral floats print as ints (3.0 -> "3")."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def iter_batches(data: Any) -> Iterator[Batch]:
    """Yield :class:`Batch` objects; every batch must have the same column names."""
    if isinstance(data, pd.DataFrame | pa.RecordBatch):
        parts: Iterable[Any] = [data]
    elif isinstance(data, pa.Table):
        parts = data.to_batches() or [data]
    elif isinstance(data, Iterable) and not isinstance(data, str | bytes | dict):
        parts = data
    else:
        raise InvalidInput(
            f"cannot read data of type {type(data).__name__}",
            hint="pass a pandas DataFrame, a pyarrow Table, or an iterable of pyarrow RecordBatches",
        )
    names: list[str] | None = None
    for part in parts:
        if isinstance(part, pa.Table):
            yield from iter_batches(part)
            continue
        if not isinstance(part, pd.DataFrame | pa.RecordBatch):
            raise InvalidInput(
                f"a batch has type {type(part).__name__}",
                hint="every batch must be a pyarrow RecordBatch, Table or pandas DataFrame",
            )
        batch = Batch(part)
        if names is None:
            names = batch.names
        elif batch.names != names:
            raise SchemaMismatch(
                f"a batch has columns {batch.names}, the first batch had {names}",
                hint="all batches of one dataset must have the same columns in the same order",
            )
        yield batch
