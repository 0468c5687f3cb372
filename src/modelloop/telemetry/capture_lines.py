"""Capture records as JSON lines, cheaply: the writer thread of :mod:`~modelloop.telemetry.capture`
encodes thousands a second, on the same cores as the server it captures for.

:class:`LineEncoder` gives the same JSON as encoding ``capture.make_record``'s record (a test holds
them equal) from pieces encoded once per variant; :func:`event_ids` makes a batch's event ids
from one read of the random source.
"""

from __future__ import annotations

import os


class LineEncoder:
    """JSON lines of ``capture.Pending`` captures, equal as JSON to ``capture.make_record``'s records
    but cheaper: the parts that are the same for every record of a variant (names, columns,
    classes, the SageMaker keys) are encoded once, so a record costs one small encode per array
    and its ids. Numbers need no escaping inside the record's ``data`` strings; a capture with
    other arrays (text inputs or labels) gets None, and goes through ``make_record``."""

    def __init__(self):
        self._parts: dict[tuple, tuple[bytes, ...]] = {}
        # the last pieces of each variant and shape, held with the very column and class lists
        # they were made from: a variant's captures share those lists, so the next capture of
        # it finds its pieces without copying and hashing its column names
        self._recent: dict[tuple, tuple] = {}

    def line(self, p, event_id: str, when: str) -> bytes | None:
        np, orjson = _libraries()
        rows = None
        if p.keep_input:
            rows = p.x.to_numpy() if hasattr(p.x, "to_numpy") else p.x
        preds = p.predictions
        probs = p.probabilities if preds is not None else None
        for a in (rows, preds, probs):
            if a is not None and not (isinstance(a, np.ndarray) and a.dtype.kind in "biuf"):
                return None
        cols, classes = p.columns, p.classes
        fast = (p.endpoint, p.variant, p.model, p.shadow, rows is None, preds is None,
                probs is None)
        hit = self._recent.get(fast)
        if hit is not None and hit[0] is cols and hit[1] is classes:
            parts = hit[2]
        else:
            key = (p.endpoint, p.variant, p.model, bool(p.shadow),
                   None if rows is None else tuple(cols) if cols is not None else (),
                   preds is not None, probs is not None,
                   None if probs is None or classes is None else tuple(classes))
            parts = self._parts.get(key)
            if parts is None:
                parts = self._parts[key] = _line_parts(p, rows is not None, preds is not None,
                                                       probs is not None)
            self._recent[fast] = (cols, classes, parts)
        dumps, opt = orjson.dumps, orjson.OPT_SERIALIZE_NUMPY
        out = [parts[0]]
        if rows is not None:
            out += (dumps(rows, option=opt), parts[1])
        if preds is not None:
            out += (parts[2], dumps(preds, option=opt))
            if probs is not None:
                out += (parts[3], dumps(probs, option=opt))
            out.append(parts[4])
        n = len(rows) if rows is not None else len(preds) if preds is not None else 0
        out += (parts[5], event_id.encode(), b'","inferenceId":', dumps(str(p.inference_id)),
                b',"inferenceTime":"', when.encode(), parts[6], str(n).encode(), b"}}\n")
        return b"".join(out)


_LIBRARIES: tuple = ()


def _libraries() -> tuple:
    """numpy and orjson, imported on first use (not by whoever imports this module) and then
    kept: an import statement costs about a microsecond even when the module is loaded, and the
    writer encodes thousands of lines a second."""
    global _LIBRARIES
    if not _LIBRARIES:
        import numpy
        import orjson

        _LIBRARIES = (numpy, orjson)
    return _LIBRARIES


def _line_parts(p, inp: bool, output: bool, proba: bool) -> tuple[bytes, ...]:
    """The constant pieces of a variant's capture lines, in ``make_record``'s key order."""
    import orjson

    def esc(text: str) -> str:  # text as it reads inside a JSON string
        return orjson.dumps(text).decode()[1:-1]

    head = '{"captureData":{'
    rows_end = b""
    if inp:
        cols = orjson.dumps(p.columns).decode()
        head += ('"endpointInput":{"observedContentType":"application/json","mode":"INPUT",'
                 '"data":"' + esc('{"columns":' + cols + ',"data":'))
        rows_end = (esc("}") + '","encoding":"JSON"}' + ("," if output else "")).encode()
    out_head = out_proba = out_end = b""
    if output:
        out_head = ('"endpointOutput":{"observedContentType":"application/json","mode":"OUTPUT",'
                    '"data":"' + esc('{"predictions":')).encode()
        out_proba = esc(',"probabilities":').encode()
        tail = ""
        if proba and p.classes is not None:
            tail = ',"classes":' + orjson.dumps(list(p.classes)).decode()
        out_end = (esc(tail + "}") + '","encoding":"JSON"}').encode()
    meta = orjson.dumps({"endpoint": p.endpoint, "variant": p.variant, "model": p.model,
                         "shadow": bool(p.shadow)}).decode()[:-1]
    return (head.encode(), rows_end, out_head, out_proba, out_end,
            b'},"eventMetadata":{"eventId":"',
            ('"},"eventVersion":"0","modelloop":' + meta + ',"rows":').encode())


def event_ids(n: int) -> list[str]:
    """``n`` random (version 4) UUIDs as text, from one read of the system's random source
    (``uuid.uuid4()`` reads it once per id: a system call per record)."""
    import numpy as np

    raw = np.frombuffer(os.urandom(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.tobytes().hex()
    return [f"{h[i:i + 8]}-{h[i + 8:i + 12]}-{h[i + 12:i + 16]}-{h[i + 16:i + 20]}-"
            f"{h[i + 20:i + 32]}" for i in range(0, 32 * n, 32)]
