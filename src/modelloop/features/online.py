"""Online values, maintained incrementally: a micro-batch of rows updates only the entities it
touches, from their retained rows, and lookups by key read one record per key.

State per entity: its rows inside the longest window (plus its newest row when a ``last`` runs
over all history). A micro-batch merges its rows into the touched entities' state, drops what no
window can reach any more, and recomputes their values at the new watermark with the same
computation as the offline join (``windows.compute`` on the same rows, hence the same values).
Each record also says until when its values stay true without new rows (the first time a row
leaves a sliding window, the next tumbling or hopping boundary); a lookup at a time inside that
span returns the stored values, one past it computes them from the stored state at that time.
Nothing is recomputed from history per request.

Lateness: the watermark is the newest event time applied. A row older than the watermark minus
``allowed_lateness`` (the watermark as of its arrival, rows of the same batch included) is too
late: it is counted and not applied, since the windows it belongs to have been served already.
A row inside the allowed lateness updates the windows it falls in. The offline store has no
arrival order and uses every row, so online equals offline exactly when no row came too late.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pyarrow as pa

from modelloop.features.offline import row_inputs
from modelloop.features.online_store import OnlineStore
from modelloop.features.spec import FeatureSet
from modelloop.features.windows import Events, _Index, bounds, compute

FOREVER = 2**62


def key_text(value) -> str:
    """An entity key as the online store spells it: ``42``, ``42.0`` and ``"42"`` alike."""
    if type(value) is str:
        return value
    if type(value) is int:
        return str(value)
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, bytes):
        return value.decode()
    return str(value.item() if isinstance(value, np.generic) else value)


def key_texts(keys: np.ndarray) -> np.ndarray:
    """:func:`key_text` of every key, vectorized for integer keys (the common case)."""
    keys = np.asarray(keys)
    if keys.dtype.kind in "iu":
        return keys.astype(str).astype(object)
    if keys.dtype.kind == "f" and np.all(np.isfinite(keys)) and np.all(keys == np.floor(keys)):
        return keys.astype(np.int64).astype(str).astype(object)
    return np.array([key_text(k) for k in keys], dtype=object)


def _plain(v):
    if v is None:
        return None
    if isinstance(v, float | np.floating):
        return None if math.isnan(v) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    return v


def _column(values: list):
    """A decoded state column: float64 when every value is a number (or null), else object."""
    if any(type(v) is str for v in values):  # never read "12" as 12.0
        return np.array(values, dtype=object)
    return np.array(values, dtype=np.float64)  # None reads as NaN


def prepare_rows(fs: FeatureSet, rows) -> tuple[np.ndarray, np.ndarray, dict, list[dict]]:
    """(keys, times ns, inputs, rejected) from a DataFrame, an Arrow table or a list of dicts;
    a row without a key or a readable event time is rejected with its reason."""
    if isinstance(rows, pa.Table):
        frame = rows.to_pandas()
    elif isinstance(rows, pd.DataFrame):
        frame = rows
    else:
        frame = pd.DataFrame(list(rows))
    for col in (fs.entity, fs.event_time):
        if col not in frame.columns:
            frame = frame.assign(**{col: None})
    frame = frame.reset_index(drop=True)
    times = pd.to_datetime(frame[fs.event_time], utc=True, errors="coerce", format="ISO8601")
    no_key = frame[fs.entity].isna().to_numpy()
    no_time = frame[fs.event_time].isna().to_numpy()
    bad_time = times.isna().to_numpy() & ~no_time
    rejected = [{"row": int(i), "reason": reason}
                for mask, reason in ((no_key, f"missing entity key {fs.entity!r}"),
                                     (no_time, f"missing event time {fs.event_time!r}"),
                                     (bad_time, f"unparseable event time {fs.event_time!r}"))
                for i in np.flatnonzero(mask)]  # fmt: skip
    ok = ~(no_key | no_time | bad_time)
    frame = frame[ok]
    times = times[ok].dt.tz_convert(None).dt.as_unit("ns").to_numpy().view(np.int64)
    missing = [c for c in fs.columns() if c not in frame.columns]
    if missing:
        from modelloop.errors import InvalidInput

        raise InvalidInput(f"rows for feature set {fs.name!r} lack column(s) {', '.join(missing)}")
    inputs = fs.columns()[2:] + [c for c in fs.columns()[:1] if any(  # what features read
        f.expression and c in f.expression for f in fs.features)]
    table = pa.Table.from_pandas(frame[inputs], preserve_index=False)
    return frame[fs.entity].to_numpy(), times, row_inputs(fs, table), rejected


def _decode(states: dict[str, str], inputs: list[str]):
    keys, times, cols = [], [], {n: [] for n in inputs}
    parsed = json.loads("[" + ",".join(states.values()) + "]") if states else []
    for key, s in zip(states, parsed, strict=True):
        keys += [key] * len(s["t"])
        times += s["t"]
        for n in inputs:
            cols[n] += s["v"][n]
    return (np.array(keys, dtype=object), np.array(times, dtype=np.int64),
            {n: _column(v) for n, v in cols.items()})  # fmt: skip


def _inputs(fs: FeatureSet) -> list[str]:
    return list(dict.fromkeys(f.input for f in fs.features if f.input is not None))


def _valid_until(fs: FeatureSet, events: Events, codes, at: int) -> np.ndarray:
    index = _Index(events)
    times = np.full(len(codes), at, dtype=np.int64)
    until = np.full(len(codes), FOREVER, dtype=np.int64)
    for f in fs.features:
        if f.window is None:
            continue
        if f.window_type == "sliding":
            lo, hi = bounds(f, index, codes, times)
            first = events.times[np.minimum(lo, max(len(events) - 1, 0))] if len(events) else times
            until = np.minimum(until, np.where(hi > lo, first + f.window_ns, FOREVER))
        else:
            step = f.window_ns if f.window_type == "tumbling" else f.hop_ns
            until = np.minimum(until, (at // step) * step + step - 1)
    return until


def apply_rows(fs: FeatureSet, online: OnlineStore, rows, *, checkpoint="__keep__",
               expect_checkpoint="__read__", honour_lateness: bool = True,
               meta_extra: dict | None = None) -> dict:  # fmt: skip
    """Apply one micro-batch to the online store: one transaction, conditional on the stored
    checkpoint being ``expect_checkpoint`` (by default whatever it was when read), which then
    becomes ``checkpoint`` (by default it stays)."""
    meta = online.meta(fs.name)
    if expect_checkpoint == "__read__":
        expect_checkpoint = meta.get("checkpoint")
    if checkpoint == "__keep__":
        checkpoint = meta.get("checkpoint")
    keys, times, inputs, rejected = prepare_rows(fs, rows)
    watermark = meta.get("watermark")
    too_late = np.zeros(len(times), dtype=bool)
    if honour_lateness and len(times):
        seen = np.maximum.accumulate(times)
        before = np.concatenate([times[:1], seen[:-1]])  # the first row is not late to itself
        if watermark is not None:
            before = np.maximum(before, watermark)
        too_late = times < before - fs.lateness_ns
    ok = ~too_late
    keys, times = keys[ok], times[ok]
    inputs = {n: v[ok] for n, v in inputs.items()}
    if len(times):
        watermark = int(max(times.max(), watermark if watermark is not None else times.max()))
    texts = key_texts(keys)
    touched = list(dict.fromkeys(texts.tolist()))
    names = _inputs(fs)
    old_keys, old_times, old_inputs = _decode(online.states(fs.name, touched), names)
    all_keys = np.concatenate([old_keys, texts])
    all_times = np.concatenate([old_times, times])
    all_inputs = {n: _concat(old_inputs[n], inputs[n]) for n in names}
    records = []
    if touched:
        keep = _retained(fs, all_keys, all_times, watermark)
        all_keys, all_times = all_keys[keep], all_times[keep]
        all_inputs = {n: v[keep] for n, v in all_inputs.items()}
        codes, uniques = pd.factorize(all_keys)
        events = Events.build(codes, all_times, all_inputs)
        q = pd.Index(uniques).get_indexer(touched).astype(np.int64)
        at = np.full(len(q), watermark, dtype=np.int64)
        values = compute(fs.features, events, q, at)
        until = _valid_until(fs, events, q, watermark)
        starts = np.searchsorted(events.codes, q, side="left")
        ends = np.searchsorted(events.codes, q, side="right")
        # NaN is written as JSON's NaN (Python's json reads it back): one tolist per column,
        # then one dumps per key of plain lists, no per-value conversion
        times_l = events.times.tolist()
        inputs_l = {n: events.values[n].tolist() for n in names}
        feats = [f.name for f in fs.features]
        values_l = [values[n].tolist() for n in feats]
        until_l = until.tolist()
        dumps = json.dumps
        for i, key in enumerate(touched):
            a, b = starts[i], ends[i]
            state = dumps({"t": times_l[a:b], "v": {n: inputs_l[n][a:b] for n in names}})
            vals = dumps(dict(zip(feats, [v[i] for v in values_l], strict=True)))
            records.append((key, vals, watermark, until_l[i], state))
    new_meta = {**meta, "watermark": watermark, "checkpoint": checkpoint,
                "applied": meta.get("applied", 0) + int(ok.sum()),
                "too_late": meta.get("too_late", 0) + int(too_late.sum()),
                "rejected": meta.get("rejected", 0) + len(rejected), **(meta_extra or {})}  # fmt: skip
    online.write(fs.name, records, new_meta, expect_checkpoint)
    return {"applied": int(ok.sum()), "too_late": int(too_late.sum()), "rejected": rejected,
            "entities": len(touched), "watermark": watermark}


def _concat(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.dtype == object or b.dtype == object:
        return np.concatenate([a.astype(object), b.astype(object)])
    return np.concatenate([a.astype(np.float64), b.astype(np.float64)])


def _retained(fs: FeatureSet, keys, times, watermark: int) -> np.ndarray:
    """Rows some window can still reach at the watermark or later."""
    finite = [f.span_ns for f in fs.features if f.span_ns is not None]
    keep = times >= watermark - max(finite) if finite else np.zeros(len(times), dtype=bool)
    if any(f.span_ns is None for f in fs.features):  # a 'last' over all history: the newest row
        order = np.lexsort((np.arange(len(times)), times, keys.astype(str)))
        k = keys.astype(str)[order]
        newest = np.ones(len(order), dtype=bool)
        newest[:-1] = k[1:] != k[:-1]
        keep[order[newest]] = True
    return keep


def lookup(fs: FeatureSet, online: OnlineStore, keys: list, at: int) -> list[dict]:
    """Each key's features at time ``at`` (ns): the stored values when still true then, else
    computed from the stored state; a key never seen gets empty aggregates."""
    texts = [key_text(k) for k in keys]
    uniq = list(dict.fromkeys(texts))
    stored = online.values(fs.name, uniq)
    out: dict[str, dict] = {}
    stale, fresh, texts_fresh = [], [], []
    for k in uniq:
        rec = stored.get(k)
        if rec is not None and rec[1] <= at <= rec[2]:
            fresh.append(k)
            texts_fresh.append(rec[0])
        elif rec is not None and at < rec[1]:
            from modelloop.errors import InvalidInput

            raise InvalidInput(
                f"the online store of {fs.name!r} holds key {k!r} as of "
                f"{pd.Timestamp(rec[1], tz='UTC').isoformat()}, after the time asked for "
                f"({pd.Timestamp(at, tz='UTC').isoformat()}): rows it no longer keeps may count",
                hint="ask the offline store for past times (features history)")
        else:
            stale.append(k)
    if fresh:  # one parse for all the stored values
        out.update(zip(fresh, json.loads("[" + ",".join(texts_fresh) + "]"), strict=True))
    if stale:
        names = _inputs(fs)
        skeys, stimes, sinputs = _decode(online.states(fs.name, stale), names)
        codes, uniques = pd.factorize(skeys)
        events = Events.build(codes, stimes, sinputs)
        q = pd.Index(uniques).get_indexer(stale).astype(np.int64)
        values = compute(fs.features, events, q, np.full(len(q), at, dtype=np.int64))
        for i, k in enumerate(stale):
            out[k] = {f.name: _plain(values[f.name][i]) for f in fs.features}
    return [dict(out[k]) for k in texts]
