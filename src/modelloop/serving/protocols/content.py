"""Request body formats that several protocols share, decoded into a
:class:`~modelloop.serving.dataplane.payload.Payload`: JSON (MLflow's scoring formats, SageMaker-style
lists and plain records), CSV, JSON Lines and ``.npy``; and JSON parsing that refuses documents
nested deeper than any of them needs.

Every adapter decodes into the same shape — a column list (or None: signature order) and the rows
as a 2-D numpy array or a list of rows — so validation and prediction happen once, on arrays, in
the data plane. Nothing here builds a pandas DataFrame.
"""

from __future__ import annotations

import csv
import io
import json
import math

from modelloop.errors import InvalidInput
from modelloop.serving.dataplane.payload import MAX_REQUEST_ROWS, Payload, RowLimit

#: Deepest JSON nesting a request may have; every format here needs at most four levels, and
#: Python's JSON parser turns a deeper document into a RecursionError (a 500) at about 1,000.
MAX_JSON_DEPTH = 32


def media_type(content_type: str) -> tuple[str, dict]:
    """``text/csv; header=present`` -> ("text/csv", {"header": "present"})."""
    parts = (content_type or "").split(";")
    params = {}
    for part in parts[1:]:
        key, _, value = part.partition("=")
        params[key.strip().lower()] = value.strip().strip('"').lower()
    return parts[0].strip().lower(), params


def decode(body: bytes, content_type: str, *, csv_header: str | None = None,
           max_rows: int = MAX_REQUEST_ROWS) -> Payload:
    """``csv_header`` is the route's default for CSV (MLflow's CSV always has a header); a
    ``header=present|absent`` Content-Type parameter overrides it."""
    ctype, params = media_type(content_type or "application/json")
    if ctype in ("application/json", "application/x-json", ""):
        return decode_json(loads_json(body))
    if ctype in ("text/csv", "text/plain"):
        header = params.get("header", csv_header)
        if header not in (None, "present", "absent"):
            raise InvalidInput(f"CSV header={header!r} is not understood",
                               hint="use header=present or header=absent")
        return decode_csv(body, header)
    if ctype in JSON_LINES:
        return decode_json_lines(body)
    if ctype == "application/x-npy":
        return decode_npy(body, max_rows)
    raise InvalidInput(
        f"content type {ctype!r} is not supported",
        hint="send application/json, text/csv, application/jsonlines or application/x-npy",
    )


def loads_json(body: bytes | str, what: str = "request body"):
    """The parsed JSON document; too deep or not JSON is an InvalidInput naming ``what``."""
    if _too_deep(body.encode() if isinstance(body, str) else body):
        raise InvalidInput(f"{what} is nested too deeply",
                           hint=f"send at most {MAX_JSON_DEPTH} levels of nesting")
    try:
        return json.loads(body)
    except RecursionError:  # cannot happen after the depth check; kept as the last guard
        raise InvalidInput(f"{what} is nested too deeply",
                           hint=f"send at most {MAX_JSON_DEPTH} levels of nesting") from None
    except ValueError as exc:  # also UnicodeDecodeError: bytes that are not UTF-8
        raise InvalidInput(f"{what} is not valid JSON: {exc}",
                           hint="send a JSON document, e.g. {\"instances\": [[...]]}") from None


def _too_deep(body: bytes) -> bool:
    """Whether the JSON text nests deeper than ``MAX_JSON_DEPTH``, found on the bytes before
    parsing: a document with few brackets cannot be deep (one C-speed count); otherwise numpy
    tracks the depth outside strings (a walk of the parsed document cost as much as parsing)."""
    if body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH:
        return False
    import numpy as np

    a = np.frombuffer(body, dtype=np.uint8)
    step = _depth_steps(np)[a]  # +1 for [ {, -1 for ] }, 0 otherwise
    quotes = np.flatnonzero(a == ord('"'))
    if quotes.size and b"\\" in body:  # a quote after an odd run of backslashes is escaped
        keep = [i for i in quotes.tolist() if _backslashes_before(body, i) % 2 == 0]
        quotes = np.asarray(keep, dtype=np.int64)
    if quotes.size % 2:
        return False  # not JSON: the parser says so, naming the position
    if quotes.size <= 256:
        for start, end in zip(quotes[0::2].tolist(), quotes[1::2].tolist(), strict=True):
            step[start:end] = 0
    elif quotes.size:
        marks = np.zeros(len(a) + 1, dtype=np.int32)
        marks[quotes[0::2]] = 1
        marks[quotes[1::2]] = -1
        step[np.cumsum(marks[:-1], dtype=np.int32) > 0] = 0
    return bool(np.cumsum(step, dtype=np.int32).max() > MAX_JSON_DEPTH)


_STEPS = []


def _depth_steps(np):
    if not _STEPS:
        lut = np.zeros(256, dtype=np.int8)
        lut[[ord("["), ord("{")]] = 1
        lut[[ord("]"), ord("}")]] = -1
        _STEPS.append(lut)
    return _STEPS[0]


def _backslashes_before(body: bytes, i: int) -> int:
    n = 0
    while i - n - 1 >= 0 and body[i - n - 1] == 0x5C:
        n += 1
    return n


#: Content types of JSON Lines bodies.
JSON_LINES = ("application/jsonlines", "application/x-jsonlines", "application/jsonl",
              "application/x-ndjson")


def json_lines(body: bytes):
    """(line number, text) of the non-blank lines of a JSON Lines body."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"the JSON Lines body is not UTF-8 text: {exc}",
                           hint="encode the body as UTF-8") from None
    return [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def decode_json(obj) -> Payload:
    """MLflow's scoring formats, SageMaker-style lists and plain records."""
    if isinstance(obj, dict):
        params = obj.get("params")
        if params is not None and not isinstance(params, dict):
            raise InvalidInput("'params' must be an object",
                               hint='e.g. "params": {"predict_method": "predict_proba"}')
        payload = _decode_object({k: v for k, v in obj.items() if k != "params"}
                                 if params is not None else obj)
        payload.params = params or {}
        return payload
    if isinstance(obj, list):
        return _rows_or_records(obj, "body")
    raise InvalidInput("the JSON body must be an object or a list of rows")


def _decode_object(obj: dict) -> Payload:
    if "dataframe_split" in obj:
        split = obj["dataframe_split"]
        if not isinstance(split, dict) or "data" not in split:
            raise InvalidInput("dataframe_split needs 'columns' and 'data'",
                               hint='{"dataframe_split": {"columns": [...], "data": [[...]]}}')
        return _split(split.get("columns"), split["data"], "dataframe_split")
    if "dataframe_records" in obj:
        return _records(obj["dataframe_records"], "dataframe_records")
    for key in ("instances", "inputs"):
        if key in obj:
            return _rows_or_records(obj[key], key)
    if "columns" in obj and "data" in obj:
        return _split(obj["columns"], obj["data"], "body")
    if obj and all(not isinstance(v, dict | list) for v in obj.values()):
        return _records([obj], "body")  # one record
    if obj and all(isinstance(v, list) for v in obj.values()):  # columns -> values
        return _columns(obj, "body")
    raise InvalidInput(
        "cannot find the input rows in this JSON",
        hint="use dataframe_split, dataframe_records, instances or inputs (MLflow's "
             "formats), {'columns': [...], 'data': [[...]]} or a list of rows",
    )


def _split(columns, data, where: str) -> Payload:
    if columns is not None and (not isinstance(columns, list)
                                or not all(isinstance(c, str) for c in columns)):
        raise InvalidInput(f"{where} 'columns' must be a list of column names",
                           hint='e.g. "columns": ["age", "plan"]')
    if not isinstance(data, list) or not data:
        raise InvalidInput(f"{where} 'data' must be a non-empty list of rows",
                           hint='e.g. "data": [[42, "basic"]]')
    return Payload(columns, data)


def _columns(value: dict, where: str) -> Payload:
    """``{"col": [values], ...}``: every column must hold the same number of values."""
    cols = [str(c) for c in value]
    vals = [v if isinstance(v, list) else [v] for v in value.values()]
    n = len(vals[0])
    for name, v in zip(cols, vals, strict=True):
        if len(v) != n:
            raise InvalidInput(
                f"{where}: column {name!r} has {len(v)} values but column {cols[0]!r} has {n}",
                hint="send the same number of values in every column")
    if n == 0:
        raise InvalidInput(f"{where} holds no rows", hint="send at least one row")
    return Payload(cols, [list(r) for r in zip(*vals, strict=True)])


def _rows_or_records(value, where: str) -> Payload:
    if isinstance(value, dict):  # {"col": [values]} (MLflow "inputs" as columns)
        if not value:
            raise InvalidInput(f"{where} holds no rows", hint="send at least one row")
        return _columns(value, where)
    if not isinstance(value, list) or not value:
        raise InvalidInput(f"{where} holds no rows", hint="send at least one row")
    if isinstance(value[0], dict):
        return _records(value, where)
    if not isinstance(value[0], list):
        return Payload(None, [value])  # one row as a flat list
    return Payload(None, value)


def _records(records, where: str) -> Payload:
    """A list of objects with the same keys; a key missing from one record is an error, not a
    silent null (send null for a missing value)."""
    if not isinstance(records, list) or not records:
        raise InvalidInput(f"{where} must be a non-empty list of objects",
                           hint='e.g. [{"age": 42, "plan": "basic"}]')
    cols = None
    for i, r in enumerate(records):
        if not isinstance(r, dict):
            raise InvalidInput(f"{where}: record {i} is {kind_of(r)}, not an object",
                               hint="send every record as a JSON object")
        if cols is None:
            cols = list(r)
        elif len(r) != len(cols) or any(k not in r for k in cols):
            missing = [k for k in cols if k not in r]
            problem = (f"has no {missing[0]!r}" if missing else
                       f"has {next(k for k in r if k not in cols)!r}, which record 0 has not")
            raise InvalidInput(f"{where}: record {i} {problem}",
                               hint="give every record the same keys (null for a missing value)")
    return Payload(cols, [[r[c] for c in cols] for r in records])


def kind_of(value) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(value), "a number")


def decode_csv(body: bytes, header: str | None = None) -> Payload:
    """Rows of strings. Headerless is SageMaker's convention, so a first row is a header only
    when ``header`` says so or (``header`` None) the data plane finds it equal to the model's
    column names — a guess from the values would take a row with text for a header."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"the CSV body is not UTF-8 text: {exc}",
                           hint="encode the body as UTF-8") from None
    try:
        rows = [r for r in csv.reader(io.StringIO(text)) if r]
    except csv.Error as exc:
        raise InvalidInput(f"the CSV body cannot be read: {exc}") from None
    if not rows:
        raise InvalidInput("the CSV body has no rows", hint="send one row per line, no header")
    if header == "present":
        if len(rows) < 2:
            raise InvalidInput("the CSV body has a header but no rows")
        return Payload(rows[0], rows[1:], header="present")
    return Payload(None, rows, header=header)


def decode_json_lines(body: bytes) -> Payload:
    items = [loads_json(line, f"line {n} of the JSON Lines body") for n, line in json_lines(body)]
    if not items:
        raise InvalidInput("the JSON Lines body has no rows")
    if isinstance(items[0], dict) and "features" in items[0]:  # SageMaker's {"features": [...]}
        for n, it in enumerate(items, 1):
            if not isinstance(it, dict) or not isinstance(it.get("features"), list):
                raise InvalidInput(f"line {n} has no 'features' list",
                                   hint='send {"features": [...]} on every line')
        return Payload(None, [it["features"] for it in items])
    return _rows_or_records(items, "body")


def decode_npy(body: bytes, max_rows: int = MAX_REQUEST_ROWS) -> Payload:
    """numpy.save output; the header's shape is checked against the bytes that follow (and the
    row limit) before numpy allocates the array it announces."""
    import numpy as np
    from numpy.lib import format as npy

    f = io.BytesIO(body)
    try:
        version = npy.read_magic(f)
        read_header = npy.read_array_header_1_0 if version == (1, 0) else \
            npy.read_array_header_2_0
        shape, _, dtype = read_header(f)
    except (ValueError, OSError, SyntaxError, TypeError) as exc:
        raise InvalidInput(f"cannot read the .npy body: {exc}",
                           hint="send numpy.save output (no pickled objects)") from None
    count = math.prod(shape)
    if dtype.hasobject:
        raise InvalidInput("the .npy body holds Python objects",
                           hint="send numbers or fixed-width strings (no pickled objects)")
    if count * dtype.itemsize != len(body) - f.tell():
        raise InvalidInput(f"the .npy header announces shape {list(shape)} of {dtype}, which is "
                           f"not the {len(body) - f.tell()} bytes that follow")
    if shape and shape[0] > max_rows and len(shape) > 1:
        raise RowLimit(shape[0], max_rows)
    try:
        arr = np.load(io.BytesIO(body), allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise InvalidInput(f"cannot read the .npy body: {exc}",
                           hint="send numpy.save output (no pickled objects)") from None
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2 or arr.dtype.names is not None:
        raise InvalidInput(f"the .npy body holds an array of shape {list(arr.shape)} and dtype "
                           f"{arr.dtype}", hint="send one row [F] or rows [N, F] of plain values")
    return Payload(None, arr)


