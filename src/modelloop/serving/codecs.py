"""Request bodies to ``(columns, rows)`` and predictions to response bodies, per content type.

Every protocol adapter decodes into the same shape — a column list (or None: signature order) and
the rows as a 2-D numpy array or a list of rows — so validation and prediction happen once, on
arrays, in the data plane. Nothing here builds a pandas DataFrame.
"""

from __future__ import annotations

import csv
import io
import json

from modelloop.errors import InvalidInput


class Payload:
    """Decoded input: ``columns`` (None means signature order) and ``rows``."""

    __slots__ = ("columns", "rows")

    def __init__(self, columns, rows):
        self.columns = columns
        self.rows = rows


def decode(body: bytes, content_type: str) -> Payload:
    ctype = (content_type or "application/json").split(";")[0].strip().lower()
    if ctype in ("application/json", "application/x-json", ""):
        return decode_json(_loads(body))
    if ctype in ("text/csv", "text/plain"):
        return decode_csv(body)
    if ctype in ("application/jsonlines", "application/x-jsonlines", "application/jsonl"):
        return decode_json_lines(body)
    if ctype == "application/x-npy":
        return decode_npy(body)
    raise InvalidInput(
        f"content type {ctype!r} is not supported",
        hint="send application/json, text/csv, application/jsonlines or application/x-npy",
    )


def _loads(body: bytes):
    try:
        return json.loads(body)
    except ValueError as exc:
        raise InvalidInput(f"request body is not valid JSON: {exc}",
                           hint="send a JSON document, e.g. {\"instances\": [[...]]}") from None


JSON_LINES = ("application/jsonlines", "application/x-jsonlines", "application/jsonl",
              "application/x-ndjson")


def decode_feedback(body: bytes, content_type: str) -> list:
    """The body of ``POST /endpoints/NAME/feedback``: one JSON object, a list of them, or JSON
    Lines; the records are checked by the labels store."""
    ctype = content_type.split(";")[0].strip().lower()
    if ctype in JSON_LINES:
        out = []
        for n, line in enumerate(body.splitlines()):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except ValueError as exc:
                    raise InvalidInput(f"line {n + 1} is not valid JSON: {exc}",
                                       hint="send one JSON object per line") from None
        return out
    if ctype not in ("", "application/json"):
        raise InvalidInput(f"feedback cannot be {ctype}",
                           hint="send application/json or application/jsonlines")
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise InvalidInput(f"request body is not valid JSON: {exc}",
                           hint='send {"inference_id": "...", "label": ...} or a list of '
                                "them") from None
    return [doc] if isinstance(doc, dict) else doc


def decode_json(obj) -> Payload:
    """MLflow's scoring formats, SageMaker-style lists and plain records."""
    if isinstance(obj, dict):
        if "dataframe_split" in obj:
            split = obj["dataframe_split"]
            if not isinstance(split, dict) or "data" not in split:
                raise InvalidInput("dataframe_split needs 'columns' and 'data'",
                                   hint='{"dataframe_split": {"columns": [...], "data": [[...]]}}')
            return Payload(split.get("columns"), split["data"])
        if "dataframe_records" in obj:
            return _records(obj["dataframe_records"])
        for key in ("instances", "inputs"):
            if key in obj:
                return _rows_or_records(obj[key], key)
        if "columns" in obj and "data" in obj:
            return Payload(obj["columns"], obj["data"])
        if obj and all(not isinstance(v, dict | list) for v in obj.values()):
            return _records([obj])  # one record
        if obj and all(isinstance(v, list) for v in obj.values()):  # columns -> values
            cols = list(obj)
            return Payload(cols, [list(r) for r in zip(*obj.values(), strict=False)])
        raise InvalidInput(
            "cannot find the input rows in this JSON",
            hint="use dataframe_split, dataframe_records, instances or inputs (MLflow's "
                 "formats), {'columns': [...], 'data': [[...]]} or a list of rows",
        )
    if isinstance(obj, list):
        return _rows_or_records(obj, "body")
    raise InvalidInput("the JSON body must be an object or a list of rows")


def _rows_or_records(value, where: str) -> Payload:
    if isinstance(value, dict):  # {"col": [values]} (MLflow "inputs" as columns)
        cols = list(value)
        vals = [v if isinstance(v, list) else [v] for v in value.values()]
        return Payload(cols, [list(r) for r in zip(*vals, strict=False)])
    if not isinstance(value, list) or not value:
        raise InvalidInput(f"{where} holds no rows", hint="send at least one row")
    if isinstance(value[0], dict):
        return _records(value)
    if not isinstance(value[0], list):
        return Payload(None, [value])  # one row as a flat list
    return Payload(None, value)


def _records(records) -> Payload:
    if not isinstance(records, list) or not records or not isinstance(records[0], dict):
        raise InvalidInput("dataframe_records must be a non-empty list of objects")
    cols = list(records[0])
    seen = set(cols)
    for r in records[1:]:
        for k in r:
            if k not in seen:
                cols.append(k)
                seen.add(k)
    return Payload(cols, [[r.get(c) for c in cols] for r in records])


def decode_csv(body: bytes) -> Payload:
    text = body.decode("utf-8-sig", errors="replace")
    rows = [r for r in csv.reader(io.StringIO(text)) if r]
    if not rows:
        raise InvalidInput("the CSV body has no rows", hint="send one row per line, no header")
    columns = None
    if rows and any(_not_number(c) for c in rows[0]) and len(rows) > 1:
        columns, rows = rows[0], rows[1:]  # a header line
    return Payload(columns, rows)


def _not_number(text: str) -> bool:
    try:
        float(text)
        return False
    except ValueError:
        return True


def decode_json_lines(body: bytes) -> Payload:
    items = []
    for i, line in enumerate(body.decode().splitlines(), 1):
        if line.strip():
            try:
                items.append(json.loads(line))
            except ValueError:
                raise InvalidInput(f"line {i} of the JSON Lines body is not JSON") from None
    if not items:
        raise InvalidInput("the JSON Lines body has no rows")
    if isinstance(items[0], dict) and "features" in items[0]:  # SageMaker's {"features": [...]}
        return Payload(None, [it["features"] for it in items])
    return _rows_or_records(items, "body")


def decode_npy(body: bytes) -> Payload:
    import numpy as np

    try:
        arr = np.load(io.BytesIO(body), allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise InvalidInput(f"cannot read the .npy body: {exc}",
                           hint="send numpy.save output (no pickled objects)") from None
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    return Payload(None, arr)


# -- responses --------------------------------------------------------------------------------
def encode(result: dict, accept: str) -> tuple[bytes, str]:
    """Body and content type for ``{"predictions": [...], ...}`` in the ``Accept`` type."""
    atype = (accept or "application/json").split(",")[0].split(";")[0].strip().lower()
    if atype in ("text/csv", "text/plain"):
        preds = result["predictions"]
        return ("\n".join(_csv_cell(p) for p in preds) + "\n").encode(), "text/csv"
    if atype in ("application/jsonlines", "application/x-jsonlines"):
        lines = [json.dumps({"prediction": p}) for p in result["predictions"]]
        return ("\n".join(lines) + "\n").encode(), "application/jsonlines"
    return json.dumps(result).encode(), "application/json"


def _csv_cell(value) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)
