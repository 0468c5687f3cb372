"""Scoring one chunk: read its rows, predict, and serialise its output and failed rows.

This is the code every executor runs (the job's own process, a pool of worker processes, Ray
tasks), so it takes plain data — the chunk, the transform's layout, the model package folder —
and returns bytes: the same chunk always gives the same bytes, wherever it runs.

Rows that fail scoring are found by bisection: the chunk is predicted whole, and only when that
fails are its halves tried, down to single rows, whose errors become the reasons in the error
file. Predictions of the models we serve do not depend on the other rows of the batch, so the
good rows get exactly the values a prediction of the whole input would give them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from modelloop.common.jsonable import to_jsonable
from modelloop.errors import InvalidInput
from modelloop.registry.arrays import NO_FEATURE_NAMES, accepts_arrays

_MODELS: dict[str, object] = {}  # package folder -> loaded model, once per process
PACKAGE_ENV = "MODELLOOP_TRANSFORM_PACKAGE"  # the model a fork server preloads (batch/warm.py)


@dataclass
class ChunkResult:
    chunk: int
    rows: int
    error_rows: int
    input_bytes: int
    part: bytes
    errors: bytes | None


class TooManyErrors(InvalidInput):
    """A chunk has so many failing rows that the cause is surely not a few bad values."""


def load_model(package_dir: str):
    model = _MODELS.get(package_dir)
    if model is None:
        from modelloop.registry.package import load_package

        # the folder comes from Registry.package_dir, which refuses code nobody trusted
        model = _MODELS[package_dir] = load_package(package_dir, verify=True, trust_pickle=True)
    return model


def score_chunk(package_dir: str, index: int, chunk: dict, layout: dict) -> ChunkResult:
    """Score chunk ``index``; returns its output part and error rows in the output format."""
    import pyarrow as pa

    from modelloop.batch.sources import read_chunk

    model = load_model(package_dir)
    artifacts = None
    if "digest" in chunk:
        from modelloop.artifacts import ArtifactStore

        artifacts = ArtifactStore(layout["artifacts_url"], layout.get("artifacts_options"))
    direct = _direct(package_dir, model, layout)
    tables, errors, offset = [], [], 0
    for batch in read_chunk(chunk, layout, artifacts):
        out = _score_arrays(model.model, batch, layout) if direct else None
        if out is not None:
            tables.append(out)
            offset += batch.num_rows
            continue
        frame = batch.to_pandas()
        out, bad = _score_frame(model, frame, layout)
        tables.append(out)
        for pos, reason in bad:
            errors.append(_error_record(layout, chunk, index, offset + pos, frame.iloc[pos], reason))
        if len(errors) > layout["max_errors_per_chunk"]:
            raise TooManyErrors(
                f"chunk {index} of the input has more than {layout['max_errors_per_chunk']} rows "
                f"that fail scoring; the first: {errors[0]['reason']}",
                hint="fix the input (or the model), or raise --max-errors-per-chunk",
            )
        offset += len(frame)
    table = pa.concat_tables(tables) if tables else _empty(layout)
    return ChunkResult(
        chunk=index,
        rows=table.num_rows,
        error_rows=len(errors),
        input_bytes=int(chunk.get("input_bytes", 0)),
        part=encode(table, layout["output_format"]),
        errors=b"".join(_json_line(e) for e in errors) if errors else None,
    )


# -- predicting ----------------------------------------------------------------------------------
_DIRECT: dict[tuple, bool] = {}  # (package folder, fed columns) -> called on arrays, per process


def _direct(package_dir: str, model, layout: dict) -> bool:
    """Whether this model scores a batch as a float64 array straight from Arrow (no DataFrame):
    a scikit-learn model without a fast-path plan that answers the same on arrays
    (:func:`~modelloop.registry.arrays.accepts_arrays`), fed every column of its signature, all
    ``double``: the DataFrame path would check and reorder those columns and nothing else."""
    key = (package_dir, tuple(layout["feed_columns"]))
    found = _DIRECT.get(key)
    if found is None:
        sig = model.signature
        found = _DIRECT[key] = bool(
            getattr(model, "plan", None) is None and model.flavor == "sklearn"
            and list(layout["feed_columns"]) == sig.names
            and all(c.type == "double" for c in sig.columns) and accepts_arrays(model))
    return found


def _score_arrays(estimator, batch, layout: dict):
    """The output table of a record batch scored as one float64 array, or None when the batch
    needs the DataFrame path: a fed column that is not float64 or holds a missing value, or a
    model that fails on the batch (the DataFrame path then finds and names the bad rows).

    The array is laid out as pandas hands a frame of float64 columns to scikit-learn (column
    after column, Fortran order), so the model does the very same arithmetic."""
    import warnings

    import numpy as np
    import pyarrow as pa

    names = layout["feed_columns"]
    X = np.empty((batch.num_rows, len(names)), dtype=np.float64, order="F")
    for j, name in enumerate(names):
        col = batch.column(name)
        if col.type != pa.float64() or col.null_count:
            return None
        X[:, j] = col.to_numpy(zero_copy_only=False)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=NO_FEATURE_NAMES)
            pred = estimator.predict(X)
            probs = estimator.predict_proba(X) if layout["proba"] else None
    except Exception:
        return None
    frame = batch.select(layout["pass_columns"]).to_pandas() if layout["pass_columns"] else None
    return _table(frame, np.asarray(pred), None if probs is None else np.asarray(probs), layout)


def _predict(model, features, proba: bool):
    if getattr(model, "plan", None) is not None:  # the fast path: the same function on arrays
        return model.plan.predict(model.prepare(features), proba)
    pred = model.predict(features)
    probs = model.predict_proba(features) if proba else None
    return pred, probs


def _score_frame(model, frame, layout: dict):
    """(output table of the rows that scored, [(position, reason) of those that did not])."""
    import numpy as np

    features = frame[layout["feed_columns"]]
    good: list[tuple[np.ndarray, object, object]] = []
    bad: list[tuple[int, str]] = []
    limit = layout["max_errors_per_chunk"]

    def attempt(lo: int, hi: int) -> None:
        if len(bad) > limit:
            return
        part = features.iloc[lo:hi]
        try:
            pred, probs = _predict(model, part, layout["proba"])
        except Exception as exc:  # any failure of the model on these rows: narrow it down
            if hi - lo == 1:
                bad.append((lo, _reason(exc)))
                return
            mid = (lo + hi) // 2
            attempt(lo, mid)
            attempt(mid, hi)
            return
        good.append((np.arange(lo, hi), pred, probs))

    if len(frame):
        attempt(0, len(frame))
    return _output_table(frame, good, layout), bad


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc)
    lines = text.strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def _output_table(frame, good, layout: dict):
    """Pass-through columns, the prediction and the probabilities, in the output's order."""
    import numpy as np

    if good:
        rows = np.concatenate([g[0] for g in good])
        pred = np.concatenate([np.asarray(g[1]) for g in good])
        probs = np.concatenate([np.asarray(g[2]) for g in good]) if layout["proba"] else None
    else:
        rows = np.arange(0)
        pred = np.asarray(layout.get("empty_prediction", []), dtype=layout["prediction_dtype"])
        probs = np.zeros((0, len(layout["classes"] or []))) if layout["proba"] else None
    kept = frame.take(rows) if len(rows) != len(frame) else frame
    return _table(kept, pred, probs, layout)


def _table(kept, pred, probs, layout: dict):
    """The output table of the rows ``kept`` (a frame of at least the pass-through columns)."""
    import numpy as np
    import pyarrow as pa

    columns: dict[str, object] = {}
    for name in layout["pass_columns"]:
        columns[name] = pa.Array.from_pandas(kept[name])
    if pred.ndim > 1 and pred.shape[1] == 1:
        pred = pred[:, 0]
    columns[layout["prediction_column"]] = pa.array(pred)
    if probs is not None:
        for i, name in enumerate(layout["proba_columns"]):
            columns[name] = pa.array(np.ascontiguousarray(probs[:, i]))
    table = pa.table(columns)
    return table.select(layout["output_columns"])


def _empty(layout: dict):
    import pyarrow as pa

    return pa.table({c: pa.nulls(0) for c in layout["output_columns"]})


# -- errors --------------------------------------------------------------------------------------
def _error_record(layout: dict, chunk: dict, index: int, row: int, values, reason: str) -> dict:
    if "digest" in chunk:
        source = f"{layout['dataset']} part {chunk['part']}"
    else:
        source = layout["files"][chunk["file"]]["path"]
    record = to_jsonable(dict(values))
    return {"source": source, "chunk": index, "row_in_chunk": row, "reason": reason,
            "record": record}


def _json_line(record: dict) -> bytes:
    return json.dumps(record, default=str, allow_nan=False).encode() + b"\n"


# -- output formats ------------------------------------------------------------------------------
def encode(table, fmt: str) -> bytes:
    """A chunk's output rows as bytes: CSV or TSV without header, JSON Lines, or a Parquet file."""
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    if fmt in ("csv", "tsv"):
        import pyarrow.csv as csv

        csv.write_csv(table, sink, write_options=csv.WriteOptions(
            include_header=False, delimiter="\t" if fmt == "tsv" else ","))
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, sink)
    else:
        return _jsonl(table)
    return sink.getvalue().to_pybytes()


def _jsonl(table) -> bytes:
    """JSON Lines; orjson writes floats round-trip exact and fast (pandas' to_json rounds them)."""
    import orjson

    rows = table.to_pylist()
    opts = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE
    return b"".join(orjson.dumps(r, default=str, option=opts) for r in rows)


def csv_header(columns: list[str], fmt: str = "csv") -> bytes:
    import pyarrow as pa
    import pyarrow.csv as csv

    sink = pa.BufferOutputStream()
    csv.write_csv(pa.table({c: pa.array([], pa.string()) for c in columns}), sink,
                  write_options=csv.WriteOptions(delimiter="\t" if fmt == "tsv" else ","))
    return sink.getvalue().to_pybytes()
