"""A brute-force reference for feature values: for each query row, loop over the source rows of
its key and aggregate those inside the window (spec.py's semantics), in plain Python."""

from __future__ import annotations

import math

NS = {"s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9, "d": 86400 * 10**9}


def ns(text):
    return None if text is None else int(text[:-1]) * NS[text[-1]]


def in_window(feature, e, t):
    w = ns(feature.get("window"))
    kind = feature.get("window_type", "sliding")
    if w is None:
        return e <= t
    if kind == "tumbling":
        return (t // w) * w <= e <= t
    if kind == "hopping":
        h = ns(feature["hop"])
        b = (t // h) * h
        return b - w <= e < b
    return t - w <= e <= t


def value(feature, rows, t):
    """rows: (time_ns, {column: value}) of one key, in arrival order."""
    inside = [r for (e, r) in sorted(rows, key=lambda x: x[0]) if in_window(feature, e, t)]
    agg, col = feature.get("aggregate", "last"), feature.get("column")
    if agg == "count" and col is None:
        return len(inside)
    vals = [r[col] for r in inside]
    present = [v for v in vals if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if agg == "last":
        return vals[-1] if vals else None
    if agg == "count":
        return len(present)
    if agg == "count_distinct":
        return len(set(present))
    if agg == "sum":
        return float(sum(present))
    if not present:
        return None
    if agg == "mean":
        return sum(present) / len(present)
    return float(min(present) if agg == "min" else max(present))


def same(a, b, tol=1e-9):
    """Equal, None equal to NaN, floats within a relative 1e-9 (sums taken in another order)."""
    def missing(x):
        return x is None or (isinstance(x, float) and math.isnan(x))
    if missing(a) or missing(b):
        return missing(a) and missing(b)
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return math.isclose(float(a), float(b), rel_tol=tol, abs_tol=tol)
