"""Values of the façade as JSON and back, by the annotation of the method that returns them.

The server renders what a façade method returned with :func:`encode`; the remote client rebuilds
it with :func:`decode` from the method's return annotation, so a command renders the same objects
whether its workspace is local or behind the API. Plain values (dicts, lists, numbers, text) pass
through pydantic; what pydantic cannot carry is handled here: dataclasses whose fields hold Arrow
schemas (:class:`~modelloop.data.versions.DatasetVersion`), Arrow tables (rows as JSON objects
with the exact schema beside them), bytes (base64) and paths (text).
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import inspect
import json
import types
import typing
from datetime import date, datetime
from pathlib import Path
from typing import Any

from modelloop.common.jsonable import to_jsonable

#: The tag of an encoded Arrow table (an Arrow schema is the object schema_to_json writes:
#: ``{"fields", "arrow"}``).
TABLE = "arrow_table"


def encode(value: Any) -> Any:
    """``value`` as JSON types: dataclasses as objects of their fields, Arrow tables and schemas
    tagged (see :func:`decode`), bytes in base64, the rest by :func:`to_jsonable`."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, Path):
        return str(value)
    kind = type(value).__module__.split(".", 1)[0]
    if kind == "pyarrow":
        import pyarrow as pa

        from modelloop.data.versions import schema_to_json

        if isinstance(value, pa.Schema):  # readable fields, and the exact schema for code
            return json.loads(schema_to_json(value))
        if isinstance(value, pa.RecordBatch):
            value = pa.Table.from_batches([value])
        if isinstance(value, pa.Table):
            return {TABLE: schema_to_json(value.schema), "rows": to_jsonable(value.to_pylist())}
    if kind == "pandas" and hasattr(value, "to_dict") and hasattr(value, "columns"):
        return to_jsonable(value.to_dict(orient="records"))  # a frame sent as its rows
    return to_jsonable(value)


def decode(data: Any, hint: Any) -> Any:
    """The value :func:`encode` made ``data`` from, rebuilt as ``hint`` (a return annotation,
    resolved) says; where the annotation says nothing useful (missing, ``Any``, ``dict``), the
    JSON value itself."""
    if data is None or hint is None or hint is Any or hint is inspect.Signature.empty:
        return _untagged(data)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return decode(data, options[0]) if len(options) == 1 else _untagged(data)
    if origin in (list, tuple, set, frozenset) or hint in (list, tuple):
        (item, *_) = typing.get_args(hint) or (Any,)
        return [decode(v, item) for v in data] if isinstance(data, list) else data
    if origin is not None and str(origin).endswith("Iterator"):
        (item, *_) = typing.get_args(hint) or (Any,)
        return iter([decode(v, item) for v in data])
    if isinstance(hint, type):
        if dataclasses.is_dataclass(hint) and isinstance(data, dict):
            return _dataclass(hint, data)
        if issubclass(hint, bytes):
            return base64.b64decode(data)
        if issubclass(hint, Path):
            return Path(data)
        if issubclass(hint, datetime | date) and isinstance(data, str):
            return _adapter(hint).validate_python(data)
    return _untagged(data)


def _untagged(data: Any) -> Any:
    """Tagged Arrow values rebuilt wherever they are; everything else as it is."""
    if isinstance(data, dict):
        if TABLE in data and "rows" in data:
            return _table(data)
        if data.keys() == {"fields", "arrow"}:  # what encode makes of an Arrow schema
            from modelloop.data.versions import schema_from_json

            return schema_from_json(json.dumps(data))
        return {k: _time(v) if _is_time_key(k) else _untagged(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_untagged(v) for v in data]
    return data


def _is_time_key(key: str) -> bool:
    """Keys of records that hold times (``created_at``, ``ended_at``, an event's ``time``,
    ``event_time_min`` …): the store gives datetimes, JSON gives their text; a dict the
    annotation does not describe gets its datetimes back by this naming rule of the records."""
    return key.endswith(("_at", "time", "_time_min", "_time_max"))


def _time(value: Any) -> Any:
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and value[10] == "T":
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


def _table(data: dict):
    import pyarrow as pa

    from modelloop.data.versions import schema_from_json

    schema = schema_from_json(data[TABLE])
    try:
        return pa.Table.from_pylist(data["rows"], schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):  # a type JSON cannot give back
        return pa.Table.from_pylist(data["rows"])


def _dataclass(cls: type, data: dict):
    hints = _hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            values[f.name] = decode(data[f.name], hints.get(f.name))
    return cls(**values)


@functools.cache
def _hints(cls: type) -> dict:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # noqa: BLE001 - an annotation that does not resolve: the raw JSON value
        return {}


@functools.cache
def _adapter(hint: Any):
    from pydantic import TypeAdapter

    return TypeAdapter(hint)
