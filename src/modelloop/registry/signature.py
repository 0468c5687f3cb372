"""Input and output signatures: the columns a model takes and gives, checked once per request.

A signature is an ordered list of columns, each with a type and whether it is required. The type
names are MLflow's column types (``boolean``, ``integer``, ``long``, ``float``, ``double``,
``string``, ``binary``, ``datetime``) so a signature converts to and from MLflow's signature JSON
without a table of synonyms.

Validation is built for the serving path: a DataFrame is checked on its dtypes (metadata, not
values), a numeric numpy array already in signature order is checked on its shape and one dtype and
passed through untouched. Values are only looked at when a column's dtype does not already fit
(say an ``object`` column of numbers from JSON), and then only that column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelloop.errors import InvalidInput

#: The column types a signature knows, in MLflow's spelling.
COLUMN_TYPES = ("boolean", "integer", "long", "float", "double", "string", "binary", "datetime")
NUMERIC_TYPES = frozenset({"integer", "long", "float", "double"})
_NUMPY_DTYPE = {
    "integer": "int32",
    "long": "int64",
    "float": "float32",
    "double": "float64",
    "boolean": "bool",
}


@dataclass(frozen=True)
class ColumnSpec:
    """One column: its name, type and whether a request may leave it out."""

    name: str
    type: str
    required: bool = True

    def __post_init__(self):
        if self.type not in COLUMN_TYPES:
            raise InvalidInput(
                f"column {self.name!r} has unknown type {self.type!r}",
                hint=f"use one of {', '.join(COLUMN_TYPES)}",
            )

    def to_dict(self) -> dict:
        return {"name": self.name, "type": self.type, "required": self.required}


@dataclass(frozen=True)
class Signature:
    """The ordered columns of a model's input (or output)."""

    columns: tuple[ColumnSpec, ...]
    _index: dict = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self):
        object.__setattr__(self, "columns", tuple(self.columns))
        names = [c.name for c in self.columns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise InvalidInput(
                f"signature lists column {dupes[0]!r} twice", hint="column names must be unique"
            )
        object.__setattr__(self, "_index", {c.name: c for c in self.columns})

    # -- building ------------------------------------------------------------------------------
    @classmethod
    def from_frame(cls, frame, *, optional: tuple[str, ...] | list[str] = ()) -> Signature:
        """Infer a signature from a pandas DataFrame's dtypes (e.g. the training features)."""
        return cls(
            tuple(
                ColumnSpec(str(name), dtype_to_type(dtype), str(name) not in optional)
                for name, dtype in frame.dtypes.items()
            )
        )

    @classmethod
    def from_dict(cls, data: dict | list) -> Signature:
        cols = data["columns"] if isinstance(data, dict) else data
        return cls(
            tuple(ColumnSpec(c["name"], c["type"], bool(c.get("required", True))) for c in cols)
        )

    def to_dict(self) -> dict:
        return {"columns": [c.to_dict() for c in self.columns]}

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def __len__(self) -> int:
        return len(self.columns)

    def __getitem__(self, name: str) -> ColumnSpec:
        return self._index[name]

    # -- MLflow --------------------------------------------------------------------------------
    def to_mlflow_columns(self) -> list[dict]:
        """The column list of MLflow's signature JSON (``[{"type", "name", "required"}]``)."""
        return [{"type": c.type, "name": c.name, "required": c.required} for c in self.columns]

    @classmethod
    def from_mlflow_columns(cls, cols: list[dict]) -> Signature:
        specs = []
        for i, c in enumerate(cols):
            if c.get("type") not in COLUMN_TYPES:
                raise InvalidInput(
                    f"MLflow signature column {c.get('name', i)!r} has type "
                    f"{c.get('type')!r}, which modelloop does not support",
                    hint=f"supported: {', '.join(COLUMN_TYPES)} (tensor specs are not)",
                )
            specs.append(
                ColumnSpec(c.get("name") or f"col_{i}", c["type"], c.get("required", True))
            )
        return cls(tuple(specs))

    # -- validating ----------------------------------------------------------------------------
    def validate(self, data: Any, *, allow_extra: bool = False):
        """Check ``data`` against the signature; return it in signature column order.

        A numeric 2-D numpy array whose width matches is returned as is (the fast path for
        callers that already hold values in signature order). A DataFrame, a dict of columns, a
        record or a list of records comes back as a DataFrame in signature order, with optional
        columns that were left out added as missing values. Raises InvalidInput naming the
        missing, extra or mistyped column.
        """
        import numpy as np
        import pandas as pd

        if isinstance(data, np.ndarray):
            checked = self._validate_array(data)
            if checked is not None:
                return checked
            data = pd.DataFrame(data if data.ndim == 2 else data.reshape(-1, 1), columns=self.names)
        elif isinstance(data, dict):
            first = next(iter(data.values()), None)
            scalar = not isinstance(first, list | tuple | np.ndarray | pd.Series)
            data = pd.DataFrame([data] if scalar else data)
        elif isinstance(data, list):
            data = pd.DataFrame.from_records(data)
        elif not isinstance(data, pd.DataFrame):
            raise InvalidInput(
                f"cannot read model input of type {type(data).__name__}",
                hint="pass a pandas DataFrame, a 2-D numpy array in signature "
                "order, a record (dict) or a list of records",
            )
        return self._validate_frame(data, allow_extra)

    def _validate_array(self, arr):
        """None when the array needs the column-wise path (object dtype), else the array."""
        if arr.ndim == 1 and len(self.columns) == 1:
            arr = arr.reshape(-1, 1)
        if arr.ndim != 2 or arr.shape[1] != len(self.columns):
            raise InvalidInput(
                f"input array has shape {arr.shape}; the model takes {len(self.columns)} columns",
                hint=f"columns in order: {', '.join(self.names[:20])}"
                + (" …" if len(self.columns) > 20 else ""),
            )
        if arr.dtype.kind not in "biuf":
            return None
        for c in self.columns:
            if c.type not in NUMERIC_TYPES and not (c.type == "boolean" and arr.dtype.kind == "b"):
                raise InvalidInput(
                    f"column {c.name!r} must be {c.type}, but the input array is "
                    f"numeric ({arr.dtype})",
                    hint="send a DataFrame or records when columns mix types",
                )
        return arr

    def _validate_frame(self, df, allow_extra: bool):
        import pandas as pd

        # Plain lists once: iterating a pandas Index per column costs more than the checks.
        names = [str(n) for n in df.columns.tolist()]
        present = set(names)
        if len(present) != len(names):
            raise InvalidInput("input has duplicate column names", hint="send each column once")
        missing = [c for c in self.columns if c.name not in present]
        for c in missing:
            if c.required:
                raise InvalidInput(
                    f"input is missing required column {c.name!r}",
                    hint=f"the model takes: {', '.join(self.names)}",
                )
        extra = [n for n in names if n not in self._index]
        if extra and not allow_extra:
            raise InvalidInput(
                f"input has column {extra[0]!r}, which the model does not take",
                hint=f"the model takes: {', '.join(self.names)}",
            )
        if missing:
            df = df.assign(
                **{
                    c.name: pd.Series(
                        None if c.type in ("string", "binary") else float("nan"),
                        index=df.index,
                        dtype=_fill_dtype(c.type),
                    )
                    for c in missing
                }
            )
        casts: dict[str, Any] = {}
        replaced: dict[str, Any] = {}
        dtypes = dict(zip([str(n) for n in df.columns.tolist()], df.dtypes.tolist(), strict=True))
        kinds: dict[Any, str] = {}  # dtype -> our type family, computed once per distinct dtype
        for c in self.columns:
            dtype = dtypes[c.name]
            family = kinds.get(dtype)
            if family is None:
                family = kinds[dtype] = _family(dtype)
            if _fits(c.type, family):
                if c.type in ("float", "double") and family != "float":
                    casts[c.name] = _NUMPY_DTYPE[c.type]
                continue
            if c.type in NUMERIC_TYPES and family in ("object", "string"):
                replaced[c.name] = _to_numeric(df[c.name], c)
            elif c.type in ("integer", "long") and family == "float":
                replaced[c.name] = _integral(df[c.name], c)
            elif c.type == "datetime" and family in ("object", "string"):
                replaced[c.name] = _to_datetime(df[c.name], c)
            else:
                raise InvalidInput(
                    f"column {c.name!r} must be {c.type}, got {dtype}",
                    hint=f"send {c.type} values in column {c.name!r}",
                )
        out = df[self.names] if list(dtypes) != self.names else df
        if replaced:
            out = out.assign(**replaced)
        if casts:
            out = out.astype(casts)
        return out


def dtype_to_type(dtype) -> str:
    """The signature type for a pandas/numpy dtype."""
    family = _family(dtype)
    if family == "float":
        return "float" if getattr(dtype, "itemsize", 8) == 4 else "double"
    if family == "int":
        return (
            "integer"
            if getattr(dtype, "itemsize", 8) <= 4 and str(dtype).startswith("int")
            else "long"
        )
    return {"bool": "boolean", "datetime": "datetime", "bytes": "binary"}.get(family, "string")


def _family(dtype) -> str:
    import numpy as np
    import pandas as pd
    from pandas.api import types as t

    if isinstance(dtype, pd.CategoricalDtype):
        return (
            _family(dtype.categories.dtype) if dtype.categories.dtype.kind in "biuf" else "string"
        )
    if t.is_bool_dtype(dtype):
        return "bool"
    if t.is_integer_dtype(dtype):
        return "int"
    if t.is_float_dtype(dtype):
        return "float"
    if t.is_datetime64_any_dtype(dtype):
        return "datetime"
    numpy_object = isinstance(dtype, np.dtype) and dtype.kind == "O"  # may hold anything
    if t.is_string_dtype(dtype) and not numpy_object:
        return "string"
    if getattr(dtype, "kind", "") == "S":
        return "bytes"
    return "object"


def _fits(kind: str, family: str) -> bool:
    if kind in ("float", "double"):
        return family in ("float", "int", "bool")
    if kind in ("integer", "long"):
        return family in ("int", "bool")
    if kind == "boolean":
        return family == "bool"
    if kind == "string":
        return family in ("string", "object")
    if kind == "binary":
        return family in ("bytes", "object")
    return family == "datetime"


def _fill_dtype(kind: str):
    return (
        "object"
        if kind in ("string", "binary")
        else ("datetime64[ns]" if kind == "datetime" else "float64")
    )


def _to_numeric(series, spec: ColumnSpec):
    import pandas as pd

    try:
        values = pd.to_numeric(series, errors="raise")
    except (ValueError, TypeError):
        bad = series[pd.to_numeric(series, errors="coerce").isna() & series.notna()]
        raise InvalidInput(
            f"column {spec.name!r} must be {spec.type}, got {bad.iloc[0]!r}",
            hint=f"send numbers in column {spec.name!r}",
        ) from None
    if spec.type in ("integer", "long") and values.dtype.kind == "f":
        return _integral(values, spec)
    return values.astype(_NUMPY_DTYPE[spec.type]) if spec.type in ("float", "double") else values


def _integral(series, spec: ColumnSpec):
    import numpy as np

    values = series.to_numpy(dtype="float64")
    infinite = np.isinf(values)
    if infinite.any():
        raise InvalidInput(
            f"column {spec.name!r} must be {spec.type} (whole numbers), got "
            f"{values[infinite][0].item()!r}",
            hint=f"send whole numbers in column {spec.name!r}",
        )
    finite = values[~np.isnan(values)]
    if finite.size and not np.array_equal(finite, np.floor(finite)):
        raise InvalidInput(
            f"column {spec.name!r} must be {spec.type} (whole numbers), got "
            f"{finite[finite != np.floor(finite)][0].item()!r}",
            hint=f"send whole numbers in column {spec.name!r}",
        )
    # Missing values keep the column float (NaN): the model's imputer, if any, decides.
    return series if finite.size < values.size else series.astype(_NUMPY_DTYPE[spec.type])


def _to_datetime(series, spec: ColumnSpec):
    import pandas as pd

    try:
        return pd.to_datetime(series, errors="raise")
    except (ValueError, TypeError):
        raise InvalidInput(
            f"column {spec.name!r} must be a datetime",
            hint="send ISO 8601 timestamps such as 2024-05-01T12:00:00",
        ) from None
