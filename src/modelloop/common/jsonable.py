"""Values from numpy, pandas and pyarrow as plain JSON types.

Records, manifests and reports are written as JSON; model outputs and statistics arrive as numpy
scalars, arrays, pandas timestamps and floats that may be NaN. ``to_jsonable`` converts them
recursively, so ``json.dumps(to_jsonable(x), allow_nan=False)`` never fails on them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import date, datetime, time, timedelta
from typing import Any, Literal

_SCALARS = (str, int, bool, type(None))


def to_jsonable(value: Any, *, nonfinite: Literal["null", "keep"] = "null",
                default: Callable[[Any], Any] = str) -> Any:
    """``value`` with every part made a JSON type (dict with str keys, list, str, int, float,
    bool, None).

    - numpy/pandas scalars become Python scalars (``.item()``), arrays and Series lists;
    - datetimes, dates and times become ISO 8601 text, timedeltas seconds; NaT becomes None;
    - tuples and sets become lists (sets sorted when their items allow it);
    - NaN and ±inf become None (``nonfinite="null"``, strict JSON) or stay floats (``"keep"``,
      for writers that accept them, e.g. ``json.dumps`` with its default ``allow_nan``);
    - anything else is passed to ``default`` (``str`` by default).
    """
    return _convert(value, nonfinite, default)


def _convert(value: Any, nonfinite: str, default: Callable[[Any], Any]) -> Any:
    if isinstance(value, bool | str) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if nonfinite == "null" and not math.isfinite(value):
            return None
        return float(value)
    if isinstance(value, Mapping):
        return {_key(k, nonfinite, default): _convert(v, nonfinite, default)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_convert(v, nonfinite, default) for v in value]
    if isinstance(value, set | frozenset):
        items = [_convert(v, nonfinite, default) for v in value]
        try:
            return sorted(items)
        except TypeError:
            return items
    if _is_missing_time(value):
        return None
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if hasattr(value, "tolist") and hasattr(value, "dtype"):  # numpy arrays and scalars, Series
        return _convert(_numpy(value), nonfinite, default)
    if hasattr(value, "to_pylist"):  # pyarrow arrays and scalars
        return _convert(value.to_pylist(), nonfinite, default)
    if hasattr(value, "as_py"):
        return _convert(value.as_py(), nonfinite, default)
    if hasattr(value, "item") and callable(value.item):
        try:
            return _convert(value.item(), nonfinite, default)
        except (TypeError, ValueError):
            pass
    return default(value)


def _numpy(value: Any) -> Any:
    kind = getattr(value.dtype, "kind", None)
    if kind in ("M", "m"):  # datetime64 / timedelta64: via pandas for ISO text and NaT
        import pandas as pd

        if getattr(value, "ndim", 0) == 0:
            return pd.Timestamp(value) if kind == "M" else pd.Timedelta(value)
        return list(pd.Series(value.ravel() if hasattr(value, "ravel") else value))
    return value.tolist()


def _is_missing_time(value: Any) -> bool:
    return type(value).__name__ in ("NaTType", "NAType")


def _key(key: Any, nonfinite: str, default: Callable[[Any], Any]) -> str:
    """A dict key as ``json.dumps`` would write it."""
    key = _convert(key, nonfinite, default)
    if isinstance(key, str):
        return key
    if isinstance(key, bool) or key is None:
        return {True: "true", False: "false", None: "null"}[key]
    return str(key)
