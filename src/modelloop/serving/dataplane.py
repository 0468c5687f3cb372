"""The protocol-agnostic data plane: route → validate once on arrays → predict → capture → count.

A server process holds one :class:`DataPlane`. It builds an :class:`EndpointRuntime` per endpoint
from the endpoint's spec and swaps it in as a whole when the stored revision changes; requests
already running keep the runtime (and models) they started with, so a swap fails no request. Loaded
models are shared across runtimes by package hash, so changing a weight reloads nothing.

Validation happens once per request on the whole array: when every signature column is numeric
the rows become one float64 array (one conversion, one shape check, one integrality check), and
scikit-learn models that accept it get that array directly — none of the per-column pandas casting
that dominates MLflow's scoring time. Other signatures take the signature's DataFrame path.

Prediction goes through a per-variant :class:`Batcher`: a fast model (under half a millisecond
per call) is called inline on the event loop; a slower one runs on the variant's own thread, and
requests that arrive meanwhile are gathered into the next call (adaptive micro-batching).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import os
import random
import socket
import threading
import time
import uuid
import warnings
from bisect import bisect_right
from concurrent.futures import ThreadPoolExecutor

from modelloop.errors import InvalidInput, ModelloopError, NotFound
from modelloop.telemetry import capture as _capture
from modelloop.telemetry.metrics import VariantStats

log = logging.getLogger(__name__)

NUMERIC = {"integer", "long", "float", "double", "boolean"}
INLINE_BELOW_MS = 0.5  # models faster than this run on the event loop, no thread hop
#: Most rows one request may carry unless the endpoint's ``max_request_rows`` option says
#: otherwise; checked before anything is allocated per row.
MAX_REQUEST_ROWS = 100_000


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


class RowLimit(ModelloopError):
    """More rows in one request than the endpoint takes (HTTP 413)."""

    status = 413

    def __init__(self, rows: int, limit: int):
        super().__init__(f"the request has {rows} rows, over the limit of {limit} rows per request",
                         hint="send fewer rows per request, or raise the endpoint's "
                              "max_request_rows option")


class ModelFailed(ModelloopError):
    """The model raised while predicting (SageMaker's ModelError, HTTP 424)."""

    status = 424


class TimedOut(ModelloopError):
    status = 424


class PayloadTooLarge(ModelloopError):
    status = 413


class Result:
    __slots__ = ("variant", "model", "predictions", "probabilities", "classes", "model_ms",
                 "inference_id")

    def __init__(self, variant, model, predictions, probabilities, classes, model_ms,
                 inference_id):
        self.variant = variant
        self.model = model
        self.predictions = predictions
        self.probabilities = probabilities
        self.classes = classes
        self.model_ms = model_ms
        self.inference_id = inference_id

    def body(self) -> dict:
        out = {"predictions": self.predictions}
        if self.probabilities is not None:
            out["probabilities"] = self.probabilities
            out["classes"] = self.classes
        return out


# -- one loaded variant --------------------------------------------------------------------------
class VariantRuntime:
    """A variant's model, its validation plan and its batcher."""

    def __init__(self, spec: dict, packaged, options: dict, executor: ThreadPoolExecutor):
        self.name = spec["name"]
        self.model_ref = spec["model"]
        self.role = spec["role"]
        self.weight = spec["weight"]
        self.sample = spec["sample"]
        self.packaged = packaged
        sig = packaged.signature
        self.columns = sig.names
        self.index = {n: i for i, n in enumerate(self.columns)}
        self.numeric = all(c.type in NUMERIC for c in sig.columns)
        self.int_cols = [i for i, c in enumerate(sig.columns) if c.type in ("integer", "long")]
        self.has_proba = bool(packaged.task in ("binary", "multiclass") and packaged.has_proba)
        classes = packaged.classes_ if self.has_proba else None
        self.classes = None if classes is None else classes.tolist()
        self.direct = self.numeric and _accepts_arrays(packaged)
        self._labels = classes if self.direct and _labels_are_argmax(packaged) else None
        self.max_rows = int(options.get("max_request_rows", MAX_REQUEST_ROWS))
        self.label_type = _label_type(packaged, classes)
        self.outputs = [{"name": "predict", "datatype": self.label_type, "shape": [-1]}]
        if self.has_proba:
            self.outputs.append({"name": "predict_proba", "datatype": "FP64",
                                 "shape": [-1, len(self.classes or ()) or -1]})
        self.batcher = Batcher(self, options, executor)

    # validation: once per request, on the whole array
    def prepare(self, payload: Payload):
        import numpy as np

        rows = payload.rows
        cols = payload.columns
        if payload.header is None and cols is None and self._is_header(rows):
            cols, rows = rows[0], rows[1:]  # a CSV header: the first row names the columns
            if not rows:
                raise InvalidInput("the CSV body has a header but no rows")
        if len(rows) > self.max_rows:
            raise RowLimit(len(rows), self.max_rows)
        if cols is not None:
            cols = [str(c) for c in cols]
            if cols != self.columns:
                self._check_columns(cols)
        if isinstance(rows, list):
            self._check_rows(rows, cols)
        if not self.numeric:
            return self._prepare_frame(cols, rows)
        try:
            arr = np.asarray(rows, dtype=np.float64)
        except (ValueError, TypeError):
            self._explain_bad_values(cols, rows)
            raise
        if arr.ndim == 1 and len(self.columns) == 1:
            arr = arr.reshape(-1, 1)
        width = len(cols) if cols is not None else len(self.columns)
        if arr.ndim != 2 or arr.shape[1] != width or arr.shape[0] == 0:
            raise InvalidInput(
                f"input has shape {list(arr.shape)}; the model takes rows of "
                f"{len(self.columns)} values",
                hint=f"columns in order: {', '.join(self.columns[:20])}"
                + (" …" if len(self.columns) > 20 else ""),
            )
        if cols is not None and cols != self.columns:
            arr = self._reorder(arr, cols)
        if self.int_cols:
            part = arr[:, self.int_cols]
            bad = np.isfinite(part) & (part != np.floor(part))
            if bad.any():
                r, c = np.argwhere(bad)[0]
                spec = self.packaged.signature.columns[self.int_cols[c]]
                raise InvalidInput(
                    f"column {spec.name!r} must be {spec.type} (whole numbers), got "
                    f"{part[r, c]!r}",
                    hint=f"send whole numbers in column {spec.name!r}",
                )
        return arr

    def _is_header(self, rows) -> bool:
        """Whether the first CSV row is the model's column names (each once, any order)."""
        if not isinstance(rows, list) or not rows or not isinstance(rows[0], list):
            return False
        first = rows[0]
        return (len(set(first)) == len(first)
                and all(isinstance(c, str) and c in self.index for c in first))

    def _check_rows(self, rows: list, cols: list | None) -> None:
        """Every row a list of one value per column: a short row is never padded, a long one
        never cut. One fast pass; the slow one only on the error path, to name the row."""
        width = len(cols) if cols is not None else len(self.columns)
        if all(type(r) is list and len(r) == width for r in rows):
            return
        takes = f"the model takes {width} values" if cols is None else \
            f"{width} columns were named"
        names = ", ".join(self.columns[:20]) + (" …" if len(self.columns) > 20 else "")
        for i, r in enumerate(rows):
            if not isinstance(r, list | tuple):
                raise InvalidInput(f"row {i} is not a list of values",
                                   hint="send each row as a list, or use dataframe_records")
            if len(r) != width:
                raise InvalidInput(f"row {i} has {len(r)} values; {takes}",
                                   hint=f"columns in order: {names}")

    def _check_columns(self, cols: list[str]) -> None:
        present = set(cols)
        if len(present) != len(cols):
            dupe = next(c for c in cols if cols.count(c) > 1)
            raise InvalidInput(f"input names column {_short(dupe)} twice",
                               hint="send each column once")
        for c in self.packaged.signature.columns:
            if c.name not in present and c.required:
                raise InvalidInput(f"input is missing required column {c.name!r}",
                                   hint=f"the model takes: {', '.join(self.columns)}")
        for name in cols:
            if name not in self.index:
                raise InvalidInput(f"input has column {_short(name)}, which the model does not "
                                   "take",
                                   hint=f"the model takes: {', '.join(self.columns)}")

    def _reorder(self, arr, cols):
        import numpy as np

        out = np.full((arr.shape[0], len(self.columns)), np.nan)
        for j, name in enumerate(cols):
            out[:, self.index[name]] = arr[:, j]
        return out

    def _explain_bad_values(self, cols, rows) -> None:
        """Only on the error path: find the column whose value is not a number."""
        names = cols or self.columns
        for r, row in enumerate(rows if isinstance(rows, list) else []):
            if not isinstance(row, list | tuple):
                raise InvalidInput(f"row {r} is not a list of values",
                                   hint="send each row as a list, or use dataframe_records")
            if len(row) != len(names):
                raise InvalidInput(
                    f"row {r} has {len(row)} values; the model takes {len(self.columns)}",
                    hint=f"columns in order: {', '.join(self.columns[:20])}",
                )
            for name, value in zip(names, row, strict=False):
                try:
                    float(value if value is not None else "nan")
                except (TypeError, ValueError):
                    spec = self.packaged.signature[name]
                    raise InvalidInput(
                        f"column {name!r} must be {spec.type}, got {_short(value)}",
                        hint=f"send numbers in column {name!r}",
                    ) from None
        raise InvalidInput("rows have different lengths or hold nested values",
                           hint=f"send rows of {len(self.columns)} plain values")

    def _prepare_frame(self, cols, rows):
        import pandas as pd

        names = cols or self.columns
        try:
            frame = pd.DataFrame(list(rows) if not hasattr(rows, "shape") else rows,
                                 columns=names)
        except ValueError:
            raise InvalidInput(f"rows must have {len(names)} values",
                               hint=f"columns: {', '.join(names)}") from None
        return self.packaged.signature.validate(frame)

    # prediction on an already validated batch
    def predict_batch(self, X, want_proba: bool):
        import numpy as np

        if self.direct and want_proba and self._labels is not None:
            proba = self.packaged.model.predict_proba(X)  # one model call gives both
            preds = self._labels[np.argmax(proba, axis=1)]
        elif self.direct:
            preds = self.packaged.model.predict(X)
            proba = self.packaged.model.predict_proba(X) if want_proba else None
        else:
            preds = self.packaged.predict(X, validate=False)
            proba = self.packaged.predict_proba(X, validate=False) if want_proba else None
        preds = np.asarray(preds)
        if proba is not None:
            proba = np.asarray(proba, dtype=float)
        return preds, proba


#: OIP datatypes of a variant's labels, by numpy kind of its classes.
_LABEL_TYPES = {"i": "INT64", "u": "INT64", "b": "BOOL", "f": "FP64"}
_SIGNATURE_TYPES = {"boolean": "BOOL", "integer": "INT64", "long": "INT64", "float": "FP64",
                    "double": "FP64"}


def _label_type(packaged, classes) -> str:
    """The v2 datatype of what ``predict`` answers: the model metadata announces it and every
    response is encoded in it, so the two cannot disagree."""
    import numpy as np

    if packaged.task == "regression":
        return "FP64"
    if classes is None:
        classes = packaged.classes_
    if classes is not None:
        return _LABEL_TYPES.get(np.asarray(classes).dtype.kind, "BYTES")
    out = packaged.output_signature
    if out is not None and len(out.columns) == 1:
        return _SIGNATURE_TYPES.get(out.columns[0].type, "BYTES")
    return "BYTES"


def _short(value, limit: int = 60) -> str:
    """``repr`` cut to ``limit`` characters: an error names the value without echoing a
    megabyte back."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _accepts_arrays(packaged) -> bool:
    """Whether a scikit-learn model gives the same answers on a bare array as on a DataFrame
    (it does unless a step selects columns by name); probed once at load."""
    if packaged.flavor != "sklearn":
        return False
    import numpy as np
    import pandas as pd

    n = len(packaged.signature.names)
    X = np.linspace(0.0, 1.0, 3 * n).reshape(3, n)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a = packaged.model.predict(X)
            b = packaged.predict(pd.DataFrame(X, columns=packaged.signature.names),
                                 validate=False)
        return bool(np.array_equal(np.asarray(a), np.asarray(b)))
    except Exception:
        return False


#: Classifiers whose ``predict`` is by definition the class of highest probability, so that one
#: ``predict_proba`` call answers both (capture and probability requests then cost one call).
ARGMAX_CLASSIFIERS = frozenset({
    "LogisticRegression", "RandomForestClassifier", "ExtraTreesClassifier",
    "DecisionTreeClassifier", "HistGradientBoostingClassifier", "GradientBoostingClassifier",
    "KNeighborsClassifier",
})


def _labels_are_argmax(packaged) -> bool:
    """A known argmax classifier whose labels from probabilities match ``predict`` on a probe."""
    import numpy as np

    model = packaged.model
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    if type(final).__name__ not in ARGMAX_CLASSIFIERS or packaged.classes_ is None:
        return False
    n = len(packaged.signature.names)
    X = np.random.default_rng(0).normal(size=(64, n))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            derived = np.asarray(packaged.classes_)[np.argmax(model.predict_proba(X), axis=1)]
            return bool(np.array_equal(derived, np.asarray(model.predict(X))))
    except Exception:
        return False


# -- micro-batching -----------------------------------------------------------------------------
class Batcher:
    """Gathers concurrent requests to one variant into one predict call.

    While a call runs (on the variant's thread), new requests queue; when it ends, everything
    queued (up to ``max_batch_rows``) goes into the next call and the results are split back.
    Models faster than ``INLINE_BELOW_MS`` are called inline: a thread hop would cost more.
    Hand-written because the serving libraries that batch (Ray Serve, BentoML, MLServer) are
    whole servers, not a component to embed in this data plane.
    """

    def __init__(self, variant: VariantRuntime, options: dict, executor: ThreadPoolExecutor):
        self.variant = variant
        self.max_rows = int(options.get("max_batch_rows", 256))
        self.max_wait = float(options.get("max_wait_ms", 0.0)) / 1000.0
        self.executor = executor
        self.queue: list = []
        self.running = False
        self.ewma_ms = 1.0  # starts on the thread until measured fast
        self.calls = 0

    async def predict(self, X, want_proba: bool, timeout: float):
        if not self.running and not self.queue and self.ewma_ms < INLINE_BELOW_MS:
            t0 = time.perf_counter()
            try:
                out = self.variant.predict_batch(X, want_proba)
            except Exception as exc:
                raise ModelFailed(f"{type(exc).__name__}: {exc}") from None
            self._measure(time.perf_counter() - t0)
            return out
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self.queue.append((X, want_proba, fut))
        if not self.running:
            self.running = True
            loop.create_task(self._drain())
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout)
        except TimeoutError:
            raise TimedOut(
                f"the model did not answer within {timeout:g} s",
                hint="raise the endpoint's timeout_seconds option or send fewer rows",
            ) from None

    def _measure(self, seconds: float) -> None:
        self.calls += 1
        self.ewma_ms = 0.8 * self.ewma_ms + 0.2 * seconds * 1000.0

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self.queue:
                if self.max_wait and len(self.queue) < self.max_rows:
                    await asyncio.sleep(self.max_wait)
                batch, rows = [], 0
                while self.queue and (not batch or rows + len(self.queue[0][0]) <= self.max_rows):
                    item = self.queue.pop(0)
                    batch.append(item)
                    rows += len(item[0])
                await loop.run_in_executor(self.executor, self._run, batch, loop)
        finally:
            self.running = False

    def _run(self, batch, loop) -> None:
        """On the variant's thread: one predict for the batch, results split back."""
        want = any(item[1] for item in batch)
        t0 = time.perf_counter()
        try:
            if len(batch) == 1:
                results = [self.variant.predict_batch(batch[0][0], want)]
            else:
                X = _concat([item[0] for item in batch])
                preds, proba = self.variant.predict_batch(X, want)
                results, start = [], 0
                for item in batch:
                    n = len(item[0])
                    results.append((preds[start:start + n],
                                    None if proba is None else proba[start:start + n]))
                    start += n
        except Exception as exc:
            if len(batch) > 1:  # one bad request must not fail its neighbours: retry singly
                for item in batch:
                    self._run([item], loop)
                return
            err = ModelFailed(f"{type(exc).__name__}: {exc}")
            loop.call_soon_threadsafe(_settle, batch[0][2], None, err)
            return
        self._measure(time.perf_counter() - t0)
        for item, res in zip(batch, results, strict=True):
            loop.call_soon_threadsafe(_settle, item[2], res, None)


def _settle(fut, result, error) -> None:
    if fut.done():
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(result)


def _concat(parts):
    import numpy as np

    if hasattr(parts[0], "iloc"):
        import pandas as pd

        return pd.concat(parts, ignore_index=True)
    return np.concatenate(parts)


# -- one endpoint ---------------------------------------------------------------------------------
class EndpointRuntime:
    """An endpoint at one revision: its variants and how to route among them."""

    def __init__(self, record: dict, variants: dict[str, VariantRuntime]):
        self.name = record["name"]
        self.revision = record["revision"]
        self.spec = record["spec"]
        self.options = self.spec["options"]
        self.capture = self.spec["capture"]
        self.variants = variants
        self.primaries = [v for v in variants.values() if v.role == "primary" and v.weight > 0]
        self.shadows = [v for v in variants.values() if v.role == "shadow"]
        total = sum(v.weight for v in self.primaries)
        acc, self.cumulative = 0.0, []
        for v in self.primaries:
            acc += v.weight / total
            self.cumulative.append(acc)
        self.max_payload = int(self.options["max_payload_mb"] * 1024 * 1024)
        self.max_rows = int(self.options.get("max_request_rows", MAX_REQUEST_ROWS))
        self.timeout = float(self.options["timeout_seconds"])

    def choose(self, target: str | None = None, routing_key: str | None = None) -> VariantRuntime:
        if target:
            v = self.variants.get(target)
            if v is None or v.role != "primary":
                names = [p.name for p in self.variants.values() if p.role == "primary"]
                raise InvalidInput(
                    f"endpoint {self.name!r} has no variant {target!r}",
                    hint=f"its variants: {', '.join(names)}",
                )
            return v
        if not self.primaries:
            raise NotFound(f"endpoint {self.name!r} has no variant taking traffic",
                           hint="give a primary variant a positive weight")
        if len(self.primaries) == 1:
            return self.primaries[0]
        if routing_key:
            return _rendezvous(self.primaries, routing_key)
        i = bisect_right(self.cumulative, random.random())
        return self.primaries[min(i, len(self.primaries) - 1)]


def _rendezvous(variants: list[VariantRuntime], key: str) -> VariantRuntime:
    """Weighted rendezvous (highest random weight) hashing: a key keeps its variant as long as
    that variant stays, and moves only as much as weights change. Hand-written: it is five lines,
    and the hashing libraries on PyPI implement unweighted rings."""
    best, best_score = variants[0], -math.inf
    for v in variants:
        h = int.from_bytes(hashlib.blake2b(f"{v.name}\0{key}".encode(), digest_size=8).digest())
        u = (h + 0.5) / 2**64
        score = -v.weight / math.log(u)
        if score > best_score:
            best, best_score = v, score
    return best


# -- the data plane -------------------------------------------------------------------------------
class DataPlane:
    """All endpoints this server process serves, kept in step with the metadata store."""

    def __init__(self, ws, *, poll_seconds: float = 0.5, drive_rollouts: bool = True,
                 metrics_seconds: float = 10.0):
        self.ws = ws
        self.store = ws.store
        self.poll_seconds = poll_seconds
        self.drive_rollouts = drive_rollouts
        self.metrics_seconds = metrics_seconds
        self._series_sent: dict[tuple[str, str], dict] = {}  # snapshot at the last series write
        self.server_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.runtimes: dict[str, EndpointRuntime] = {}
        self.stats: dict[tuple[str, str], VariantStats] = {}
        self._models: dict[str, object] = {}  # package hash -> PackagedModel
        self._variants: dict[tuple, VariantRuntime] = {}
        self._executors: dict[tuple[str, str], ThreadPoolExecutor] = {}
        self._errors: dict[str, str] = {}  # endpoint -> why it could not be loaded
        self.capture = _capture.CaptureWriter(ws.store, ws.artifacts)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._shadow_tasks: set = set()
        warnings.filterwarnings("ignore", message="X does not have valid feature names")

    # -- lifecycle
    def start(self) -> None:
        self.refresh()
        self._thread = threading.Thread(target=self._loop, name="dataplane-poll", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)
        self.flush_stats()
        try:
            self.write_series()
        except Exception as exc:  # the store may be gone at shutdown; say so, stop anyway
            log.warning("could not write endpoint metric series: %s", exc)
        self.capture.close()
        for ex in self._executors.values():
            ex.shutdown(wait=False)

    def _loop(self) -> None:
        from modelloop.serving.endpoints import Endpoints

        endpoints = Endpoints(self.ws)
        last_stats = 0.0
        last_series = time.monotonic()
        while not self._stop.wait(self.poll_seconds):
            try:
                self.refresh()
                if self.drive_rollouts:
                    endpoints.advance(owner=f"server:{self.server_id}")
                if time.monotonic() - last_stats >= 1.0:
                    self.flush_stats()
                    last_stats = time.monotonic()
                if time.monotonic() - last_series >= self.metrics_seconds:
                    last_series = time.monotonic()
                    self.write_series()
            except Exception as exc:  # keep serving what we have; say why
                log.warning("endpoint refresh failed: %s", exc)

    # -- keeping in step with the store
    def refresh(self) -> None:
        """Load endpoints whose revision changed and swap them in; drop deleted ones."""
        revisions = self.store.endpoint_revisions()
        for name in list(self.runtimes):
            if name not in revisions:
                self.runtimes.pop(name, None)
        for name, rev in revisions.items():
            current = self.runtimes.get(name)
            if current is not None and current.revision == rev:
                continue
            record = self.store.get_endpoint(name)
            if record is None:
                continue
            try:
                runtime = self._build(record)
            except Exception as exc:
                self._errors[name] = str(exc)
                log.warning("cannot load endpoint %s revision %s: %s", name,
                            record["revision"], exc)
                continue
            self._errors.pop(name, None)
            self.runtimes[name] = runtime  # one assignment: the atomic swap

    def _build(self, record: dict) -> EndpointRuntime:
        from modelloop.serving.spec import check_spec

        check_spec(record["spec"])  # a record stored before its values were checked (NaN weight)
        variants = {}
        options = record["spec"]["options"]
        for spec in record["spec"]["variants"]:
            packaged = self._load(spec["model"])
            key = (record["name"], spec["name"], spec["model"], spec["role"], spec["weight"],
                   spec["sample"], tuple(sorted(options.items())))
            v = self._variants.get(key)
            if v is None:
                ex = self._executors.get((record["name"], spec["name"]))
                if ex is None:
                    ex = self._executors[(record["name"], spec["name"])] = ThreadPoolExecutor(
                        1, thread_name_prefix=f"predict-{spec['name']}")
                v = self._variants[key] = VariantRuntime(spec, packaged, options, ex)
            variants[spec["name"]] = v
        return EndpointRuntime(record, variants)

    def _load(self, ref: str):
        name, version = self.ws.models.resolve(ref)
        record = self.ws.store.get_model_version(name, version)
        model = self._models.get(record["package_hash"])
        if model is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = self._models[record["package_hash"]] = self.ws.models.load(ref)
        return model

    def flush_stats(self) -> None:
        rows = []
        for (ep, var), s in list(self.stats.items()):
            if s.dirty:
                s.dirty = False
                rows.append((ep, var, s.snapshot()))
        if rows:
            self.store.put_endpoint_stats(self.server_id, rows)

    def write_series(self) -> None:
        """Write each variant's interval figures as metric series (through ``ws.monitoring``,
        so alarms can watch error rates and latency)."""
        from datetime import UTC, datetime

        from modelloop.telemetry.metrics import interval_series

        now = datetime.now(UTC)
        points = []
        for key, s in list(self.stats.items()):
            snap = s.snapshot()
            values = interval_series(self._series_sent.get(key), snap)
            self._series_sent[key] = snap
            dims = {"endpoint": key[0], "variant": key[1]}
            points += [(name, dims, now, value) for name, value in values.items()]
        if points:
            self.ws.monitoring.put_metrics(points)

    # -- requests
    def runtime(self, name: str) -> EndpointRuntime:
        rt = self.runtimes.get(name)
        if rt is None:
            if name in self._errors:
                raise NotFound(f"endpoint {name!r} could not be loaded: {self._errors[name]}",
                               hint="fix the endpoint with 'modelloop endpoint update'")
            known = sorted(self.runtimes)
            raise NotFound(f"no endpoint named {name!r}",
                           hint=f"endpoints here: {', '.join(known)}" if known else
                           "create one with 'modelloop endpoint create NAME --model M@V'")
        return rt

    def _stats(self, endpoint: str, variant: str) -> VariantStats:
        s = self.stats.get((endpoint, variant))
        if s is None:
            s = self.stats[(endpoint, variant)] = VariantStats()
        return s

    async def infer(self, rt: EndpointRuntime, payload: Payload, *, target: str | None = None,
                    routing_key: str | None = None, inference_id: str | None = None,
                    want_proba: bool = False, t_start: float | None = None) -> Result:
        """Route, validate, predict, capture, count. Raises ModelloopError subclasses."""
        t0 = t_start or time.perf_counter()
        variant = rt.choose(target, routing_key)
        stats = self._stats(rt.name, variant.name)
        model_ms = 0.0
        status = 200
        try:
            if want_proba and not variant.has_proba:
                raise InvalidInput(f"variant {variant.name!r} ({variant.model_ref}) gives no "
                                   "class probabilities",
                                   hint="ask a classifier for probabilities; this model answers "
                                        "with predictions only")
            X = variant.prepare(payload)
            cap = rt.capture
            capturing = cap["enabled"] and (cap["sampling"] >= 100
                                            or random.random() * 100 < cap["sampling"])
            proba = want_proba or (capturing and cap["mode"] != "input" and variant.has_proba)
            tm = time.perf_counter()
            preds, probs = await variant.batcher.predict(X, proba and variant.has_proba,
                                                         rt.timeout)
            model_ms = (time.perf_counter() - tm) * 1000.0
            result = Result(variant.name, variant.model_ref, preds.tolist(),
                            None if probs is None or not want_proba else probs.tolist(),
                            variant.classes, model_ms, inference_id or str(uuid.uuid4()))
            if capturing:
                self._capture(rt, variant, X, preds, probs, result.inference_id, shadow=False)
            if rt.shadows:
                self._mirror(rt, X, result.inference_id)
            return result
        except ModelloopError as exc:
            status = exc.status
            raise
        except Exception:
            status = 500
            raise
        finally:
            stats.observe(status, model_ms, (time.perf_counter() - t0) * 1000.0,
                          len(X) if status == 200 else 0)

    def _capture(self, rt, variant, X, preds, probs, inference_id, *, shadow: bool) -> None:
        """Queue the record as a function: the writer thread builds and encodes it later (the
        arrays are not touched after the response), so capture costs the request little."""
        mode, ts, event_id = rt.capture["mode"], time.time(), str(uuid.uuid4())

        def build() -> dict:
            rows = None
            if mode != "output":
                rows = X.to_numpy() if hasattr(X, "to_numpy") else X
            return _capture.make_record(
                endpoint=rt.name, variant=variant.name, model=variant.model_ref, shadow=shadow,
                event_id=event_id, inference_id=inference_id, ts=ts,
                columns=variant.columns, rows=rows,
                predictions=None if mode == "input" else preds,
                probabilities=None if mode == "input" or probs is None else probs,
                classes=variant.classes,
            )

        self.capture.write(build)

    def _mirror(self, rt: EndpointRuntime, X, inference_id: str) -> None:
        """Send a copy to each shadow variant (sampled); never awaited by the request."""
        for shadow in rt.shadows:
            if shadow.sample < 100 and random.random() * 100 >= shadow.sample:
                continue
            task = asyncio.get_running_loop().create_task(
                self._shadow(rt, shadow, X, inference_id))
            self._shadow_tasks.add(task)
            task.add_done_callback(self._shadow_tasks.discard)

    async def _shadow(self, rt, shadow: VariantRuntime, X, inference_id: str) -> None:
        stats = self._stats(rt.name, shadow.name)
        t0 = time.perf_counter()
        status = 200
        try:
            # the shadow takes the primary's validated input (same signature expected)
            preds, probs = await shadow.batcher.predict(X, shadow.has_proba, rt.timeout)
            self._capture(rt, shadow, X, preds, probs, inference_id, shadow=True)
        except ModelloopError as exc:
            status = exc.status
        except Exception:
            status = 500
        finally:
            ms = (time.perf_counter() - t0) * 1000.0
            stats.observe(status, ms, ms)

    def ready(self) -> bool:
        return True
