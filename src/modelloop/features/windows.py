"""Windowed aggregates of events at query points, vectorized: the one computation behind the
offline point-in-time join, the backfill and the online store, so the three agree by construction.

Events are sorted once by (entity code, event time, arrival order): a stable sort by time
(quick on rows that arrive in time order), then a stable radix sort by entity code. Every
(entity, time) pair is mapped to one int64 key, ``code * (U + 1) + rank`` where ``rank`` is the
number of distinct event times at or before the time, so the bounds of every query's window are two ``searchsorted`` calls
into the sorted keys, exactly, with no float rounding of timestamps. Aggregates over the slices
``[lo, hi)`` are ``ufunc.reduceat`` over interleaved bounds (queries ordered by ``lo``, so the
unwanted in-between slices cost at most one pass), which sums each slice left to right: the
online store, computing on the same slices of the same rows, gets the same bits.

Written with NumPy, which is already a dependency, rather than DuckDB or Polars:
``benchmarks/features.py`` measures this join against pandas ``merge_asof`` and DuckDB side by
side on the same rows (its figures are in the README). ``count_distinct`` is exact (a set per
window, a Python loop): it is the slow one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from modelloop.features.spec import Feature

NAN = float("nan")


@dataclass
class Events:
    """Events sorted by (code, time, arrival), with the per-row inputs the features aggregate,
    and their sort keys (``code * (U + 1) + rank``, ``uniq`` the U distinct times)."""

    codes: np.ndarray  # int64
    times: np.ndarray  # int64 ns
    values: dict  # input name -> array (float64, or object for last/count_distinct of text)
    uniq: np.ndarray = None
    keys: np.ndarray = None

    @classmethod
    def build(cls, codes, times, values: dict) -> Events:
        """``codes``/``times``/``values`` in arrival order (ties in time keep that order)."""
        codes = np.asarray(codes, dtype=np.int64)
        times = np.asarray(times, dtype=np.int64)
        by_time = np.argsort(times, kind="stable")
        sorted_times = times[by_time]
        new = np.ones(len(times), dtype=bool)
        new[1:] = sorted_times[1:] != sorted_times[:-1]
        rank = np.empty(len(times), dtype=np.int64)
        rank[by_time] = np.cumsum(new)  # dense: how many distinct times are <= each time
        uniq = sorted_times[new]
        order = by_time[_stable_order(codes[by_time])]  # by code, then time, then arrival
        codes, times = codes[order], times[order]
        keys = codes * np.int64(len(uniq) + 1) + rank[order]
        values = {k: np.asarray(v)[order] for k, v in values.items()}
        return cls(codes, times, values, uniq, keys)

    def __len__(self) -> int:
        return len(self.times)


def _stable_order(codes: np.ndarray) -> np.ndarray:
    """A stable argsort of entity codes: NumPy sorts 16-bit integers by radix, in linear time,
    so codes below 2**32 are sorted as two 16-bit digits (low, then high) instead of by the
    comparison sort int64 gets."""
    if not len(codes) or codes.min() < 0 or codes.max() >= 2**32:
        return np.argsort(codes, kind="stable")
    if codes.max() < 2**16:
        return np.argsort(codes.astype(np.uint16), kind="stable")
    low = np.argsort((codes & 0xFFFF).astype(np.uint16), kind="stable")
    return low[np.argsort((codes[low] >> 16).astype(np.uint16), kind="stable")]


class _Index:
    """Positions in the sorted events of (code, time) bounds."""

    def __init__(self, events: Events):
        self.uniq = events.uniq
        self.width = np.int64(len(self.uniq) + 1)
        self.keys = events.keys
        self._memo: dict = {}

    def count_before(self, codes: np.ndarray, times: np.ndarray | None, inclusive: bool) -> np.ndarray:
        """For each query, the number of events with a smaller code, or the same code and a time
        before ``time`` (at or before, when ``inclusive``); ``times`` None: the start of the code."""
        key = (id(times), inclusive)  # the memo holds ``times``, so its id is not reused
        if key in self._memo:  # the window's end (the query's time) is shared by every window
            return self._memo[key][1]
        out = self._count_before(codes, times, inclusive)
        self._memo[key] = (times, out)
        return out

    def _count_before(self, codes, times, inclusive: bool) -> np.ndarray:
        if times is None:
            rank = np.zeros(len(codes), dtype=np.int64)
        else:  # needles in ascending order let searchsorted narrow its range as it goes
            by_time = np.argsort(times, kind="stable")
            rank = np.empty(len(times), dtype=np.int64)
            rank[by_time] = np.searchsorted(self.uniq, times[by_time],
                                            side="right" if inclusive else "left")
        qkeys = np.where(codes < 0, -1, codes * self.width + rank)
        return np.searchsorted(self.keys, qkeys, side="right")


def bounds(feature: Feature, index: _Index, codes, times) -> tuple[np.ndarray, np.ndarray]:
    """``[lo, hi)`` slices of the sorted events in each query's window (spec.py's semantics)."""
    w = feature.window_ns
    if w is None:
        return index.count_before(codes, None, True), index.count_before(codes, times, True)
    if feature.window_type == "hopping":
        end = np.floor_divide(times, feature.hop_ns) * feature.hop_ns
        return index.count_before(codes, end - w, False), index.count_before(codes, end, False)
    start = np.floor_divide(times, w) * w if feature.window_type == "tumbling" else times - w
    return index.count_before(codes, start, False), index.count_before(codes, times, True)


def _range_reduce(ufunc, arr: np.ndarray, lo, hi, order, empty) -> np.ndarray:
    out = np.full(len(lo), empty, dtype=arr.dtype if arr.dtype != bool else float)
    if not len(arr) or not len(lo):
        return out
    ext = np.append(arr, arr[:1])  # reduceat needs every index < len; hi may equal len(arr)
    idx = np.empty(2 * len(lo), dtype=np.int64)
    idx[0::2], idx[1::2] = lo[order], hi[order]
    res = ufunc.reduceat(ext, idx)[0::2]
    out[order] = res
    out[hi <= lo] = empty
    return out


def _numeric(values) -> np.ndarray:
    arr = np.asarray(values)
    return arr.astype(np.float64) if arr.dtype != np.float64 else arr


def aggregate(feature: Feature, events: Events, lo, hi, order) -> np.ndarray:
    agg = feature.aggregate
    n = hi - lo
    if agg == "count" and feature.input is None:
        return n.astype(np.int64)
    raw = events.values[feature.input]
    if agg == "last":
        out = np.full(len(lo), None if raw.dtype == object else NAN,
                      dtype=object if raw.dtype == object else np.float64)
        has = n > 0
        out[has] = raw[hi[has] - 1]
        return out
    if agg == "count_distinct":
        return np.array([len({v for v in raw[a:b] if v is not None and v == v})
                         for a, b in zip(lo, hi, strict=True)], dtype=np.int64)  # fmt: skip
    if raw.dtype == object:
        present = np.array([v is not None and v == v for v in raw], dtype=bool)
    else:
        present = ~np.isnan(_numeric(raw))
    cum = np.concatenate([[0], np.cumsum(present, dtype=np.int64)])
    count = cum[hi] - cum[lo]
    if agg == "count":
        return count
    arr = _numeric(raw)
    if agg in ("sum", "mean"):
        total = _range_reduce(np.add, np.where(present, arr, 0.0), lo, hi, order, 0.0)
        if agg == "sum":
            return total
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, total / np.maximum(count, 1), NAN)
    fill = np.inf if agg == "min" else -np.inf
    res = _range_reduce(np.minimum if agg == "min" else np.maximum,
                        np.where(present, arr, fill), lo, hi, order, fill)
    return np.where(count > 0, res, NAN)


def compute(features, events: Events, codes, times) -> dict[str, np.ndarray]:
    """Each feature at each query (``codes[i]`` at ``times[i]``, ns); code -1: no events.
    Queries are answered in (code, time) order, which makes every ``searchsorted`` walk the
    sorted keys forwards, and the answers put back in the callers' order."""
    codes = np.asarray(codes, dtype=np.int64)
    times = np.asarray(times, dtype=np.int64)
    qorder = np.lexsort((times, codes))
    codes, times = codes[qorder], times[qorder]
    index = _Index(events)
    out, windows = {}, {}
    for f in features:
        window = (f.window, f.window_type, f.hop)
        if window not in windows:  # features over the same window share its bounds
            lo, hi = bounds(f, index, codes, times)
            windows[window] = lo, hi, np.argsort(lo, kind="stable")
        lo, hi, order = windows[window]
        res = aggregate(f, events, lo, hi, order)
        back = np.empty_like(res)
        back[qorder] = res
        out[f.name] = back
    return out
