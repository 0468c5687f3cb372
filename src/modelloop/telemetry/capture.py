"""Data capture: sampled request/response pairs as SageMaker data-capture JSON Lines records.

Serving writes captures and monitoring reads them, both through this module (the contract):

- a record is SageMaker's (``captureData.endpointInput/endpointOutput``, ``eventMetadata`` with
  ``eventId``, ``inferenceId``, ``inferenceTime``, ``eventVersion``) plus a top-level
  ``"modelloop": {"endpoint", "variant", "model", "shadow"}``; the input ``data`` is always the JSON
  text ``{"columns": [...], "data": [[...]]}`` and the output ``{"predictions": [...]}`` (plus
  ``"probabilities"``), whatever the request's content type, so readers never parse CSV or npy;
- files are blobs in the artifact store (local folder or S3), one per endpoint, variant, hour and
  flush, indexed in the metadata store (``capture_files``) — the index row is written after the
  blob, so a reader never sees a half-written file; the records' inference ids are indexed in the
  same transaction (``capture_ids``), so :func:`known_inference_ids` answers "was this prediction
  captured?" without reading any file;
- :class:`CaptureWriter` never blocks the request path: the server hands it a :class:`Pending`
  capture (references to the request's arrays, nothing encoded) and a background thread builds,
  encodes and writes the records in batches: every second, or at once when the buffer is a
  quarter full. Probabilities the answer did not include are computed there too, one model
  call per flush and variant instead of one per request (equal to the per-request ones to the
  last bit or within one rounding, as batch scoring is). When the buffer is full (the store is
  down or slower than the traffic), ``write`` refuses the record: it is counted in ``dropped``,
  logged, and shown by the server's metrics (``/metrics``), never lost silently.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from datetime import UTC, datetime, timedelta

from modelloop.common.hashing import sha256_bytes
from modelloop.common.jsonable import to_jsonable
from modelloop.telemetry.capture_lines import LineEncoder, event_ids

log = logging.getLogger(__name__)

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def _dumps(value) -> str:
    """JSON text of a record part; numpy arrays are encoded as they are (orjson, ~5x faster than
    ``json`` with ``tolist()``). Object arrays (strings) fall back to plain lists; NaN is null."""
    import orjson

    try:
        return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    except TypeError:
        return orjson.dumps(to_jsonable(value)).decode()


def inference_time(ts: float | None = None) -> str:
    """SageMaker's inferenceTime spelling (UTC, seconds)."""
    return time.strftime(TIME_FORMAT, time.gmtime(time.time() if ts is None else ts))


def make_record(*, endpoint: str, variant: str, model: str, shadow: bool, event_id: str,
                inference_id: str, ts: float, columns: list[str] | None, rows: list | None,
                predictions: list | None, probabilities: list | None = None,
                classes: list | None = None, when: str | None = None) -> dict:
    """One capture record; ``rows``/``predictions`` None leave out the input/output half.
    ``when``: its inferenceTime already spelled (else from ``ts``)."""
    data: dict = {}
    if rows is not None:
        data["endpointInput"] = {
            "observedContentType": "application/json", "mode": "INPUT",
            "data": _dumps({"columns": columns, "data": rows}),
            "encoding": "JSON",
        }
    if predictions is not None:
        out: dict = {"predictions": predictions}
        if probabilities is not None:
            out["probabilities"] = probabilities
            if classes is not None:
                out["classes"] = classes  # names the proba_<class> columns of capture_frame
        data["endpointOutput"] = {
            "observedContentType": "application/json", "mode": "OUTPUT",
            "data": _dumps(out), "encoding": "JSON",
        }
    return {
        "captureData": data,
        "eventMetadata": {"eventId": event_id, "inferenceId": inference_id,
                          "inferenceTime": when or inference_time(ts)},
        "eventVersion": "0",
        "modelloop": {"endpoint": endpoint, "variant": variant, "model": model,
                      "shadow": bool(shadow),
                      "rows": len(rows) if rows is not None else
                      len(predictions) if predictions is not None else 0},
    }


class Pending:
    """One request's capture as the data plane hands it over, built into a record later.

    ``x`` is the validated input the model saw (an array or a DataFrame, not touched after the
    response); ``keep_input`` says whether the record carries it. ``predictions`` None leaves
    out the output half. ``probas_of``, when the answer gave no probabilities but the record
    wants them, maps a list of such inputs to their probability arrays; the writer calls it once
    for all the pending captures of one endpoint, variant and model.
    """

    __slots__ = ("endpoint", "variant", "model", "shadow", "ts", "inference_id", "columns", "x",
                 "keep_input", "predictions", "probabilities", "classes", "probas_of")

    def __init__(self, *, endpoint: str, variant: str, model: str, shadow: bool, ts: float,
                 inference_id: str, columns: list[str] | None, x, keep_input: bool,
                 predictions=None, probabilities=None, classes: list | None = None,
                 probas_of=None):
        self.endpoint, self.variant, self.model, self.shadow = endpoint, variant, model, shadow
        self.ts, self.inference_id, self.columns, self.x = ts, inference_id, columns, x
        self.keep_input, self.predictions, self.probabilities = keep_input, predictions, \
            probabilities
        self.classes, self.probas_of = classes, probas_of

    def record(self, when: str, event_id: str) -> dict:
        """The capture record (``when``: its inferenceTime, the same for a whole second)."""
        rows = None
        if self.keep_input:
            rows = self.x.to_numpy() if hasattr(self.x, "to_numpy") else self.x
        return make_record(endpoint=self.endpoint, variant=self.variant, model=self.model,
                          shadow=self.shadow, event_id=event_id,
                          inference_id=self.inference_id, ts=self.ts, columns=self.columns,
                          rows=rows, predictions=self.predictions,
                          probabilities=self.probabilities, classes=self.classes, when=when)


def fill_probabilities(pending: list[Pending]) -> int:
    """Compute the probabilities the pending captures want, one call per endpoint, variant and
    model; returns how many could not be computed (those records go without them)."""
    groups: dict[tuple, list[Pending]] = {}
    for p in pending:
        if p.probas_of is not None and p.probabilities is None and p.predictions is not None:
            groups.setdefault((p.endpoint, p.variant, p.model), []).append(p)
    failed = 0
    for (endpoint, variant, _), items in groups.items():
        for start in range(0, len(items), 2048):  # bounded memory for one model call
            part = items[start:start + 2048]
            try:
                probas = part[0].probas_of([p.x for p in part])
            except Exception as exc:  # the record still carries input and predictions
                failed += len(part)
                log.warning("capture of %s/%s: no probabilities for %d records: %s",
                            endpoint, variant, len(part), exc)
                continue
            for p, proba in zip(part, probas, strict=True):
                p.probabilities = proba
    return failed


def _parse_time(text: str) -> datetime:
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)


def _hour(dt: datetime) -> datetime:
    return dt.replace(minute=0, second=0, microsecond=0)


class CaptureWriter:
    """Buffers capture records and writes them as JSON Lines blobs off the request path."""

    def __init__(self, store, artifacts, *, max_buffer: int = 50_000, flush_seconds: float = 1.0):
        self.store = store
        self.artifacts = artifacts
        self.max_buffer = max_buffer
        self.flush_seconds = flush_seconds
        self.written = 0  # records in indexed files
        self.dropped = 0  # refused because the buffer was full
        self.failed = 0  # could not be written (after the retries of later flushes)
        self.without_probabilities = 0  # written, but their probabilities could not be computed
        self._buffer: deque = deque()
        self._wake_at = max(max_buffer // 4, 1)
        self._wake = threading.Event()
        self._flush_lock = threading.Lock()
        self._closed = threading.Event()
        self._warned = 0.0
        self._lines = LineEncoder()
        self._thread = threading.Thread(target=self._run, name="capture-writer", daemon=True)
        self._thread.start()

    def write(self, record) -> bool:
        """Queue one record; False (and counted in ``dropped``) when the buffer is full.

        ``record`` is a :class:`Pending` capture (what the server passes: building and encoding
        happen in the writer thread, off the request), a dict, or a function returning one.
        """
        # deque.append is atomic under the GIL; the length check may overshoot by a few records
        # under races, which is harmless for a bound meant to cap memory.
        n = len(self._buffer)
        if n >= self.max_buffer or self._closed.is_set():
            self._drop()
            return False
        self._buffer.append(record)
        if n + 1 >= self._wake_at:
            self._wake.set()  # a burst: flush now rather than at the next tick
        return True

    def _drop(self) -> None:
        self.dropped += 1
        now = time.monotonic()
        if now - self._warned >= 10.0:  # say so, at most every 10 s (it is counted always)
            self._warned = now
            log.warning("capture buffer full (%d records) or closed: %d records dropped so far",
                        self.max_buffer, self.dropped)

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def flush(self) -> int:
        """Write everything buffered now; returns how many records were written."""
        with self._flush_lock:
            batch = []
            while self._buffer:
                batch.append(self._buffer.popleft())
            if not batch:
                return 0
            pending = [item for item in batch if isinstance(item, Pending)]
            self.without_probabilities += fill_probabilities(pending)
            ids = iter(event_ids(len(pending)))
            lines = self._lines
            # (endpoint, variant, hour) -> [(whole-second time, JSON line, (indexed id, rows))]
            groups: dict[tuple, list[tuple]] = {}
            stamp: tuple[int, str, datetime, datetime] | None = None
            for item in batch:
                try:
                    if isinstance(item, Pending):
                        second = int(item.ts)
                        if stamp is None or stamp[0] != second:  # one strftime per second
                            when = datetime.fromtimestamp(second, UTC)
                            stamp = (second, inference_time(second), when, _hour(when))
                        event_id = next(ids)
                        line = lines.line(item, event_id, stamp[1])
                        if line is None:
                            line = _encode(item.record(stamp[1], event_id))
                        key = (item.endpoint, item.variant, stamp[3])
                        when = stamp[2]
                        ident = (id_key(str(item.inference_id)), _rows_of(item))
                    else:
                        rec = item() if callable(item) else item
                        meta = rec.get("modelloop") or {}
                        when = _parse_time(rec["eventMetadata"]["inferenceTime"])
                        key = (meta.get("endpoint", "-"), meta.get("variant", "-"), _hour(when))
                        ident = record_ids([rec])[0]
                        line = _encode(rec)
                except Exception as exc:  # a record that cannot be built is counted, not lost
                    self._failed(1, exc)
                    continue
                group = groups.get(key)
                if group is None:
                    group = groups[key] = []
                group.append((when, line, ident))
            files, count = [], 0
            for (endpoint, variant, hour), items in groups.items():
                body = b"".join(line for _, line, _ in items)
                try:
                    blob = self.artifacts.put_bytes(body)
                except Exception as exc:
                    self._failed(len(items), exc)
                    continue
                times = [w for w, _, _ in items]
                files.append({"endpoint": endpoint, "variant": variant, "hour": hour,
                              "digest": blob.digest, "records": len(items),
                              "first_time": min(times), "last_time": max(times),
                              "ids": list(dict.fromkeys(i for _, _, i in items))})
                count += len(items)
            try:
                self.store.add_capture_files(files)
            except Exception as exc:
                self._failed(count, exc)
                return 0
            self.written += count
            return count

    def _failed(self, n: int, exc: Exception) -> None:
        self.failed += n
        log.warning("could not write %d capture records: %s", n, exc)

    def _run(self) -> None:
        while not self._closed.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            if self._closed.is_set():
                break
            try:
                self.flush()
            except Exception as exc:  # never let the writer thread die
                log.warning("capture flush failed: %s", exc)

    def close(self) -> None:
        """Stop the background thread and write what is left."""
        self._closed.set()
        self._wake.set()
        self._thread.join(timeout=30)
        self.flush()

    def stats(self) -> dict:
        return {"written": self.written, "dropped": self.dropped, "failed": self.failed,
                "pending": self.pending, "without_probabilities": self.without_probabilities}


def _rows_of(p: Pending) -> int:
    """Rows of a capture, as its record's ``modelloop.rows`` counts them."""
    if p.keep_input:
        return len(p.x)
    return len(p.predictions) if p.predictions is not None else 0


def _encode(rec: dict) -> bytes:
    """One JSON line of a record."""
    import orjson

    try:
        return orjson.dumps(rec, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE)
    except TypeError:
        return orjson.dumps(to_jsonable(rec), option=orjson.OPT_APPEND_NEWLINE)


def read_capture(store, artifacts, endpoint: str, *, variant: str | None = None,
                 since: datetime | None = None, until: datetime | None = None) -> list[dict]:
    """Capture records of an endpoint (optionally one variant, a time window), oldest first."""
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    if until is not None and until.tzinfo is None:
        until = until.replace(tzinfo=UTC)
    # inferenceTime has whole seconds: widen the index query by one second on each side.
    files = store.list_capture_files(
        endpoint, variant=variant,
        since=None if since is None else since - timedelta(seconds=1),
        until=None if until is None else until + timedelta(seconds=1),
    )
    out = []
    for f in files:
        for line in artifacts.read_bytes(f["digest"]).decode().splitlines():
            if not line:
                continue
            rec = json.loads(line)
            when = _parse_time(rec["eventMetadata"]["inferenceTime"])
            if (since is not None and when < since.replace(microsecond=0)) or (
                until is not None and when > until
            ):
                continue
            out.append((when, rec))
    out.sort(key=lambda item: item[0])  # stable: equal times keep file order
    return [rec for _, rec in out]


def id_key(inference_id: str) -> str:
    """How an inference id is indexed: itself, or a digest of it when longer than an id column."""
    if len(inference_id) <= 128:
        return inference_id
    return "sha256:" + sha256_bytes(inference_id)


def record_ids(records) -> list[tuple[str, int]]:
    """(indexed id, rows) of each record, once per pair."""
    out = {}
    for rec in records:
        ident = str(rec["eventMetadata"].get("inferenceId"))
        rows = rec.get("modelloop", {}).get("rows")
        if rows is None:  # a record of an older modelloop: count as capture_frame does
            cd = rec.get("captureData", {})
            part = cd.get("endpointInput") or cd.get("endpointOutput")
            doc = json.loads(part["data"]) if part else {}
            rows = len(doc.get("data") or doc.get("predictions") or [])
        out[(id_key(ident), int(rows))] = None
    return list(out)


def known_inference_ids(store, artifacts, endpoint: str, ids) -> set[str]:
    """Which of ``ids`` name a captured prediction of ``endpoint``, as :func:`capture_frame`
    names them (a request's id, or ``ID:i`` for row i of a multi-row request).

    One indexed lookup; capture files are read only if some were written before the index
    existed, and then once (they are indexed on the way)."""
    ids = [str(i) for i in ids]
    for f in store.unindexed_capture_files(endpoint):
        recs = [json.loads(line) for line in artifacts.read_bytes(f["digest"]).decode().splitlines()
                if line]
        store.index_capture_file(f["id"], endpoint, record_ids(recs))
    bases = {}
    for i in ids:
        base, sep, row = i.rpartition(":")
        if sep and row.isdigit():
            bases[i] = (id_key(base), int(row))
    found = store.find_capture_ids(endpoint, [id_key(i) for i in ids]
                                   + [b for b, _ in bases.values()])
    known = set()
    for i in ids:
        if 1 in found.get(id_key(i), ()):
            known.add(i)
        elif i in bases:
            base, row = bases[i]
            if any(n > 1 and row < n for n in found.get(base, ())):
                known.add(i)
    return known


def capture_frame(records: list[dict]):
    """Records as a DataFrame: ids, time, endpoint, variant, one column per feature, prediction,
    and ``proba_<class>`` columns when the model gave probabilities. One row per input row."""
    import pandas as pd

    rows = []
    for rec in records:
        cd = rec.get("captureData", {})
        meta = rec.get("eventMetadata", {})
        ml = rec.get("modelloop", {})
        inp = json.loads(cd["endpointInput"]["data"]) if "endpointInput" in cd else None
        outp = json.loads(cd["endpointOutput"]["data"]) if "endpointOutput" in cd else None
        n = len(inp["data"]) if inp else len((outp or {}).get("predictions") or [])
        preds = (outp or {}).get("predictions")
        probas = (outp or {}).get("probabilities")
        classes = (outp or {}).get("classes")
        for i in range(n):
            row = {
                "inference_id": meta.get("inferenceId") if n == 1 else
                f"{meta.get('inferenceId')}:{i}",
                "event_id": meta.get("eventId"),
                "inference_time": meta.get("inferenceTime"),
                "endpoint": ml.get("endpoint"),
                "variant": ml.get("variant"),
            }
            if inp:
                row.update(zip(inp["columns"], inp["data"][i], strict=False))
            if preds is not None:
                row["prediction"] = preds[i]
            if probas is not None:
                names = classes or list(range(len(probas[i])))
                for c, p in zip(names, probas[i], strict=False):
                    row[f"proba_{c}"] = p
            rows.append(row)
    frame = pd.DataFrame(rows)
    if "inference_time" in frame:
        frame["inference_time"] = pd.to_datetime(frame["inference_time"], utc=True)
    return frame
