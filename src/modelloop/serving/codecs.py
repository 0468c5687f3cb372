"""Request bodies to ``(columns, rows)`` and predictions to response bodies, per content type.

Every protocol adapter decodes into the same shape — a column list (or None: signature order) and
the rows as a 2-D numpy array or a list of rows — so validation and prediction happen once, on
arrays, in the data plane. Nothing here builds a pandas DataFrame.
"""

from __future__ import annotations

import csv
import io
import json
import math
import struct

from modelloop.errors import InvalidInput, ModelloopError

#: Most rows one request may carry unless the endpoint's ``max_request_rows`` option says
#: otherwise; checked before anything is allocated per row.
MAX_REQUEST_ROWS = 100_000
#: Deepest JSON nesting a request may have; every format here needs at most four levels, and
#: Python's JSON parser turns a deeper document into a RecursionError (a 500) at about 1,000.
MAX_JSON_DEPTH = 32


class Payload:
    """Decoded input: ``columns`` (None means signature order) and ``rows``.

    ``header`` is for CSV only: "present", "absent" or None (decided against the signature by
    the data plane: a first row equal to the model's column names is a header); other formats
    have no header row. ``params`` are
    the request's options (MLflow's ``params``, e.g. ``predict_method``)."""

    __slots__ = ("columns", "rows", "header", "params")

    def __init__(self, columns, rows, header="absent", params=None):
        self.columns = columns
        self.rows = rows
        self.header = header
        self.params = params or {}


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
        return decode_json(_loads(body))
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


def _loads(body: bytes | str, what: str = "request body"):
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


JSON_LINES = ("application/jsonlines", "application/x-jsonlines", "application/jsonl",
              "application/x-ndjson")


def decode_feedback(body: bytes, content_type: str) -> list:
    """The body of ``POST /endpoints/NAME/feedback``: one JSON object, a list of them, or JSON
    Lines; the records are checked by the labels store."""
    ctype, _ = media_type(content_type)
    if ctype in JSON_LINES:
        records = []
        for n, line in _lines(body):
            records.append(_loads(line, f"line {n}"))
            if not isinstance(records[-1], dict):
                raise InvalidInput(f"line {n} is not a JSON object",
                                   hint='send one {"inference_id": "...", "label": ...} per line')
        return records
    if ctype not in ("", "application/json"):
        raise InvalidInput(f"feedback cannot be {ctype}",
                           hint="send application/json or application/jsonlines")
    doc = _loads(body)
    if not isinstance(doc, dict | list):
        raise InvalidInput("feedback must be a JSON object or a list of objects",
                           hint='send {"inference_id": "...", "label": ...} or a list of them')
    records = [doc] if isinstance(doc, dict) else doc
    for n, record in enumerate(records, 1):  # the labels store checks the fields
        if not isinstance(record, dict):
            raise InvalidInput(f"label {n} is not a JSON object",
                               hint='send {"inference_id": "...", "label": ...} or a list of them')
    return records


def _lines(body: bytes):
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
            raise InvalidInput(f"{where}: record {i} is {_kind(r)}, not an object",
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


def _kind(value) -> str:
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
    items = [_loads(line, f"line {n} of the JSON Lines body") for n, line in _lines(body)]
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


class RowLimit(ModelloopError):
    """More rows in one request than the endpoint takes (HTTP 413)."""

    status = 413

    def __init__(self, rows: int, limit: int):
        super().__init__(f"the request has {rows} rows, over the limit of {limit} rows per request",
                         hint="send fewer rows per request, or raise the endpoint's "
                              "max_request_rows option")


# -- responses --------------------------------------------------------------------------------
def encode(result: dict, accept: str) -> tuple[bytes, str]:
    """Body and content type for ``{"predictions": [...], ...}`` in the ``Accept`` type; asked-for
    probabilities follow each prediction (CSV: ``label,p1,p2``; JSON Lines: a
    ``probabilities`` key), in the order of ``classes``."""
    atype = (accept or "application/json").split(",")[0].split(";")[0].strip().lower()
    preds, probs = result["predictions"], result.get("probabilities")
    if atype in ("text/csv", "text/plain"):
        cells = [_csv_cell(p) for p in preds] if probs is None else \
            [_csv_cell([p, *q]) for p, q in zip(preds, probs, strict=True)]
        return ("\n".join(cells) + "\n").encode(), "text/csv"
    if atype in ("application/jsonlines", "application/x-jsonlines"):
        lines = [json.dumps({"prediction": p}) for p in preds] if probs is None else \
            [json.dumps({"prediction": p, "probabilities": q})
             for p, q in zip(preds, probs, strict=True)]
        return ("\n".join(lines) + "\n").encode(), "application/jsonlines"
    return json.dumps(result).encode(), "application/json"


def _csv_cell(value) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


# -- Open Inference Protocol v2 -----------------------------------------------------------------
#: OIP datatypes and their little-endian numpy types in the binary tensor data extension.
OIP_DTYPES = {"BOOL": "|b1", "UINT8": "<u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8",
              "INT8": "<i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8", "FP16": "<f2",
              "FP32": "<f4", "FP64": "<f8", "BYTES": None}


class OipRequest:
    """A decoded ``/v2/models/NAME/infer`` request: the payload, the outputs asked for (None:
    the default) and which of them to send as binary tensor data."""

    __slots__ = ("payload", "id", "outputs", "binary", "binary_default")

    def __init__(self, payload, id, outputs, binary, binary_default):
        self.payload = payload
        self.id = id
        self.outputs = outputs
        self.binary = binary
        self.binary_default = binary_default

    def wants_binary(self, name: str) -> bool:
        return self.binary.get(name, self.binary_default)


def decode_oip(body: bytes, header_length: str | None, *,
               max_rows: int = MAX_REQUEST_ROWS) -> OipRequest:
    """An infer request, JSON or with the binary tensor data extension: a JSON header of
    ``Inference-Header-Content-Length`` bytes, then each input with a ``binary_data_size``
    parameter as raw little-endian values (BYTES: 4-byte length, then the bytes) in order.

    Shapes are checked (whole non-negative numbers, rows within ``max_rows``) and matched with
    the values sent before any row is built. Hand-written: the v2 codecs that exist (tritonclient,
    MLServer) are a client and a whole server, not a decoder to embed."""
    import numpy as np

    binary = b""
    if header_length is not None:
        try:
            n = int(header_length)
        except ValueError:
            n = -1
        if not 0 <= n <= len(body):
            raise InvalidInput(f"Inference-Header-Content-Length {header_length!r} is not a "
                               f"length within the {len(body)}-byte body")
        body, binary = body[:n], body[n:]
    doc = _loads(body)
    if not isinstance(doc, dict):
        raise InvalidInput("the infer request must be a JSON object",
                           hint='{"inputs": [{"name": ..., "shape": ..., "datatype": ..., '
                                '"data": [...]}]}')
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InvalidInput("the infer request has no 'inputs'",
                           hint='{"inputs": [{"name": "input-0", "shape": [1, F], '
                                '"datatype": "FP64", "data": [...]}]}')
    tensors, offset = [], 0
    for i, t in enumerate(inputs):
        if not isinstance(t, dict):
            raise InvalidInput(f"input {i} is {_kind(t)}, not a tensor object",
                               hint="each input needs name, shape, datatype and data")
        name = t.get("name")
        label = f"input {name!r}" if isinstance(name, str) else f"input {i}"
        if not isinstance(name, str):
            raise InvalidInput(f"{label} needs a 'name' (a string)")
        shape = _shape(t.get("shape"), label, max_rows)
        datatype = t.get("datatype")
        if datatype not in OIP_DTYPES:
            raise InvalidInput(f"{label} has datatype {datatype!r}",
                               hint=f"use one of {', '.join(OIP_DTYPES)}")
        params = _params(t, label)
        count = math.prod(shape)
        size = params.get("binary_data_size")
        if size is not None:
            if not _whole(size):
                raise InvalidInput(f"{label}: binary_data_size must be a whole number of bytes")
            if offset + size > len(binary):
                raise InvalidInput(f"{label}: binary_data_size {size} runs past the end of the "
                                   f"body ({len(binary) - offset} bytes left)")
            values = _binary_values(binary[offset:offset + size], datatype, count, label)
            offset += size
        else:
            if "data" not in t:
                raise InvalidInput(f"{label} has no 'data'",
                                   hint="send the values in 'data', or as binary tensor data")
            values = _json_values(t["data"], len(shape), count, label)
        tensors.append((name, shape, values))
    if offset != len(binary):
        raise InvalidInput(f"the body has {len(binary) - offset} bytes of binary data that no "
                           "input's binary_data_size accounts for")
    return OipRequest(_oip_payload(tensors, np), doc.get("id"), *_outputs(doc))


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _params(obj: dict, label: str) -> dict:
    params = obj.get("parameters")
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise InvalidInput(f"{label}: 'parameters' must be an object")
    return params


def _shape(shape, label: str, max_rows: int) -> list[int]:
    if not isinstance(shape, list) or not 1 <= len(shape) <= 2 \
            or not all(_whole(d) for d in shape):
        raise InvalidInput(f"{label} has shape {shape!r}",
                           hint="a shape is [rows] or [rows, columns] of whole numbers ≥ 0")
    if shape[0] > max_rows:
        raise RowLimit(shape[0], max_rows)
    if shape[0] == 0 or (len(shape) == 2 and shape[1] == 0):
        raise InvalidInput(f"{label} has shape {shape}, which holds no values",
                           hint="send at least one row of values")
    return shape


def _json_values(data, ndim: int, count: int, label: str) -> list:
    """The values of ``data``, flat or nested as the shape (row-major), as one flat list."""
    if not isinstance(data, list):
        raise InvalidInput(f"{label}: 'data' must be a list of values, got {_kind(data)}")
    flat = data
    for _ in range(ndim - 1):  # nested as [[row], [row]]: one level per extra dimension
        if not flat or not isinstance(flat[0], list):
            break
        if not all(isinstance(x, list) for x in flat):
            raise InvalidInput(f"{label}: 'data' mixes lists and values")
        flat = [v for row in flat for v in row]
    if any(isinstance(v, list | dict) for v in flat):
        raise InvalidInput(f"{label}: 'data' is nested deeper than its shape",
                           hint="send the values flat, in row-major order")
    if len(flat) != count:
        raise InvalidInput(f"{label} has shape with {count} values but 'data' holds {len(flat)}",
                           hint="data must hold rows × columns values")
    return flat


def _binary_values(raw: bytes, datatype: str, count: int, label: str):
    import numpy as np

    if datatype != "BYTES":
        dtype = np.dtype(OIP_DTYPES[datatype])
        if len(raw) != count * dtype.itemsize:
            raise InvalidInput(f"{label}: {len(raw)} bytes of binary data are not {count} "
                               f"{datatype} values ({count * dtype.itemsize} bytes)")
        return np.frombuffer(raw, dtype=dtype).astype(dtype.newbyteorder("="))
    out, pos = [], 0
    while pos < len(raw):
        if pos + 4 > len(raw):
            raise InvalidInput(f"{label}: BYTES data ends inside a length prefix")
        (n,) = struct.unpack_from("<I", raw, pos)
        pos += 4
        if pos + n > len(raw):
            raise InvalidInput(f"{label}: a BYTES element of {n} bytes runs past its data")
        try:
            out.append(raw[pos:pos + n].decode("utf-8"))
        except UnicodeDecodeError:
            raise InvalidInput(f"{label}: BYTES element {len(out)} is not UTF-8 text") from None
        pos += n
    if len(out) != count:
        raise InvalidInput(f"{label} has shape with {count} values but its BYTES data holds "
                           f"{len(out)}")
    return out


def _oip_payload(tensors: list, np) -> Payload:
    """One [N, F] tensor in signature order, or one [N] (or [N, 1]) tensor per column."""
    if len(tensors) == 1 and len(tensors[0][1]) == 2:
        _, (n, f), values = tensors[0]
        if isinstance(values, np.ndarray):
            return Payload(None, values.reshape(n, f))
        return Payload(None, [values[i * f:(i + 1) * f] for i in range(n)])
    n = tensors[0][1][0]
    for name, shape, _ in tensors:
        if len(shape) == 2 and shape[1] != 1:
            raise InvalidInput(f"input {name!r} has shape {shape}; send one [N, F] tensor or "
                               "one [N] tensor per column")
        if shape[0] != n:
            raise InvalidInput(f"input {name!r} has {shape[0]} rows but input "
                               f"{tensors[0][0]!r} has {n}",
                               hint="send one value per row in every column tensor")
    cols = [name for name, _, _ in tensors]
    values = [v.tolist() if isinstance(v, np.ndarray) else v for _, _, v in tensors]
    return Payload(cols, [list(r) for r in zip(*values, strict=True)])


#: Output names a v2 client may ask for: labels, and class probabilities.
OIP_OUTPUTS = {"predict": "predict", "predict_proba": "predict_proba",
               "probabilities": "predict_proba"}


def _outputs(doc: dict) -> tuple[list | None, dict, bool]:
    params = _params(doc, "the request")
    default = params.get("binary_data_output", False)
    if not isinstance(default, bool):
        raise InvalidInput("parameter binary_data_output must be true or false")
    wanted = doc.get("outputs")
    if wanted is None:
        return None, {}, default
    if not isinstance(wanted, list):
        raise InvalidInput("'outputs' must be a list of objects",
                           hint='e.g. "outputs": [{"name": "predict"}]')
    names, binary = [], {}
    for o in wanted:
        if not isinstance(o, dict) or not isinstance(o.get("name"), str):
            raise InvalidInput(f"each requested output must be an object with a name, got "
                               f"{json.dumps(o)[:40]}",
                               hint='e.g. "outputs": [{"name": "predict"}]')
        if o["name"] not in OIP_OUTPUTS:
            raise InvalidInput(f"there is no output named {o['name']!r}",
                               hint="outputs: predict (labels or values), predict_proba "
                                    "(or probabilities)")
        flag = _params(o, f"output {o['name']!r}").get("binary_data", default)
        if not isinstance(flag, bool):
            raise InvalidInput(f"output {o['name']!r}: binary_data must be true or false")
        names.append(o["name"])
        binary[o["name"]] = flag
    return names, binary, default


def encode_oip(doc: dict, outputs: list[tuple[str, str, list, object]],
               request: OipRequest) -> tuple[bytes, dict]:
    """The response body and headers; ``outputs`` are (name, datatype, shape, values). Outputs
    the request asked for in binary go after the JSON header, which then says its length."""
    import numpy as np

    tensors, chunks = [], []
    for name, datatype, shape, values in outputs:
        tensor = {"name": name, "datatype": datatype, "shape": shape}
        if request.wants_binary(name):
            raw = _to_binary(values, datatype, np)
            tensor["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            tensor["data"] = np.asarray(values).reshape(-1).tolist() if datatype != "BYTES" \
                else [str(v) for v in np.asarray(values, dtype=object).reshape(-1)]
        tensors.append(tensor)
    head = json.dumps({**doc, "outputs": tensors}).encode()
    if not chunks:
        return head, {"content-type": "application/json"}
    return head + b"".join(chunks), {"content-type": "application/octet-stream",
                                     "inference-header-content-length": str(len(head))}


def _to_binary(values, datatype: str, np) -> bytes:
    if datatype == "BYTES":
        parts = []
        for v in np.asarray(values, dtype=object).reshape(-1):
            b = str(v).encode()
            parts.append(struct.pack("<I", len(b)) + b)
        return b"".join(parts)
    return np.ascontiguousarray(values, dtype=OIP_DTYPES[datatype]).tobytes()
