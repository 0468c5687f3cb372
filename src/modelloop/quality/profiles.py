"""Column profiles: the statistics a baseline keeps of one numeric or categorical column.

Numeric columns keep a histogram on a *dyadic grid*: cells of width ``2**exponent`` aligned on
multiples of the width, with the smallest exponent for which the column's range fits in
:data:`GRID_CELLS` cells. Because the grid depends only on the range, two partitions' grids
coarsen onto the union's grid exactly (a cell index shifted right by the exponent difference), so
merging is exact and the drift statistics of :mod:`modelloop.quality.drift` are computed in one
pass over new data against precomputed cells. A mergeable quantile sketch with this exactness
does not exist in the libraries we depend on (KLL sketches in datasketches are approximate and
order-dependent), hence this small hand-written histogram. Small columns (at most
:data:`EXACT_LIMIT` values) also keep their exact sorted values, so tests on small references are
SciPy's exact ones.
"""

from __future__ import annotations

import base64
import math
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelloop.quality._columns import CATEGORICAL, NUMERIC

#: Maximum number of histogram cells per numeric column (128 KiB of counts at most).
GRID_CELLS = 16384
#: Columns with at most this many values also keep the exact values (exact KS / Wasserstein).
EXACT_LIMIT = 1000
#: Numeric columns with at most this many distinct values keep their value counts (Evidently
#: treats numeric columns with <= 5 distinct values as categorical).
DOMAIN_LIMIT = 8


def grid_exponent(lo: float, hi: float) -> int:
    """Smallest cell-width exponent whose aligned grid covers [lo, hi] in GRID_CELLS cells.

    Monotone in the range (a wider range never gets a finer grid): that is what makes merging
    exact. The lower bound from the magnitude keeps cell indices well inside int64.
    """
    m = max(abs(lo), abs(hi))
    e = -1000 if m == 0 else math.frexp(m)[1] - 60
    if hi > lo:
        e = max(e, math.ceil(math.log2((hi - lo) / (GRID_CELLS - 2))))
    while math.floor(math.ldexp(hi, -e)) - math.floor(math.ldexp(lo, -e)) + 1 > GRID_CELLS:
        e += 1
    return e


def cell_index(x: np.ndarray, exponent: int) -> np.ndarray:
    """Cell index ``floor(x / 2**exponent)`` (exact: the scaling is by a power of two)."""
    return np.floor(x * math.ldexp(1.0, -exponent)).astype(np.int64)


def _rebin(
    counts: np.ndarray, offset: int, exponent: int, new_exponent: int, new_offset: int, n_cells: int
) -> np.ndarray:
    """Move counts from one aligned grid onto a coarser (or equal) one covering it."""
    out = np.zeros(n_cells, dtype=np.int64)
    if len(counts):
        idx = (offset + np.arange(len(counts), dtype=np.int64)) >> (new_exponent - exponent)
        np.add.at(out, idx - new_offset, counts)
    return out


def _pack(counts: np.ndarray) -> str:
    return base64.b64encode(zlib.compress(counts.astype("<i8").tobytes(), 6)).decode()


def _unpack(text: str) -> np.ndarray:
    return np.frombuffer(zlib.decompress(base64.b64decode(text)), dtype="<i8").astype(np.int64)


@dataclass
class NumericProfile:
    """Statistics of one numeric column (see the module docstring for the grid)."""

    n: int = 0  #: present (finite) values
    missing: int = 0  #: nulls, NaN and infinities
    sum: float = 0.0
    mean: float = 0.0
    m2: float = 0.0  #: sum of squared deviations from the mean
    min: float = math.inf
    max: float = -math.inf
    integral: bool = True  #: every value is a whole number (SageMaker "Integral")
    exponent: int | None = None  #: cell width is 2**exponent
    offset: int = 0  #: index of the first cell
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    values: np.ndarray | None = field(
        default_factory=lambda: np.zeros(0)
    )  #: sorted, if n <= EXACT_LIMIT
    domain: dict[float, int] | None = field(default_factory=dict)  #: value counts, if few distinct

    kind = NUMERIC

    @property
    def std(self) -> float:
        """Population standard deviation (ddof=0, as numpy, Evidently and Deequ)."""
        return math.sqrt(self.m2 / self.n) if self.n else 0.0

    @property
    def width(self) -> float:
        return math.ldexp(1.0, self.exponent) if self.exponent is not None else 0.0

    def update(self, x: np.ndarray, missing: int = 0, integer_typed: bool = False) -> None:
        """Add one batch of finite float64 values (and a count of missing ones)."""
        self.missing += missing
        if x.size == 0:
            return
        bn = int(x.size)
        bsum = float(x.sum())
        bmean = bsum / bn
        bm2 = float(np.square(x - bmean).sum())
        other = NumericProfile(
            n=bn, sum=bsum, mean=bmean, m2=bm2, min=float(x.min()), max=float(x.max())
        )
        other.integral = integer_typed or bool(np.array_equal(x, np.floor(x)))
        e = grid_exponent(other.min, other.max)
        idx = cell_index(x, e)
        other.exponent, other.offset = e, int(idx.min())
        other.counts = np.bincount(idx - other.offset, minlength=int(idx.max()) - other.offset + 1)
        other.values = np.sort(x) if bn <= EXACT_LIMIT else None
        if np.count_nonzero(other.counts) > DOMAIN_LIMIT:
            other.domain = None
        else:
            u, c = np.unique(x, return_counts=True)
            other.domain = (
                dict(zip(u.tolist(), c.tolist(), strict=True)) if len(u) <= DOMAIN_LIMIT else None
            )
        merged = self.merge(other)
        self.__dict__.update(merged.__dict__)

    def merge(self, other: NumericProfile) -> NumericProfile:
        """The profile of both columns' values together (Chan's update for mean and variance)."""
        if other.n == 0 or self.n == 0:
            src = self if other.n == 0 else other
            out = NumericProfile(**{k: getattr(src, k) for k in src.__dataclass_fields__})
            out.missing = self.missing + other.missing
            return out
        n = self.n + other.n
        delta = other.mean - self.mean
        lo, hi = min(self.min, other.min), max(self.max, other.max)
        e = grid_exponent(lo, hi)
        first = math.floor(math.ldexp(lo, -e))
        n_cells = math.floor(math.ldexp(hi, -e)) - first + 1
        counts = _rebin(self.counts, self.offset, self.exponent, e, first, n_cells)
        counts += _rebin(other.counts, other.offset, other.exponent, e, first, n_cells)
        values = None
        if self.values is not None and other.values is not None and n <= EXACT_LIMIT:
            values = np.sort(np.concatenate([self.values, other.values]))
        domain = None
        if self.domain is not None and other.domain is not None:
            domain = dict(self.domain)
            for v, c in other.domain.items():
                domain[v] = domain.get(v, 0) + c
            if len(domain) > DOMAIN_LIMIT:
                domain = None
        return NumericProfile(
            n=n,
            missing=self.missing + other.missing,
            sum=self.sum + other.sum,
            mean=self.mean + delta * other.n / n,
            m2=self.m2 + other.m2 + delta * delta * self.n * other.n / n,
            min=lo,
            max=hi,
            integral=self.integral and other.integral,
            exponent=e,
            offset=first,
            counts=counts,
            values=values,
            domain=dict(sorted(domain.items())) if domain is not None else None,
        )

    def quantiles(self, probs: np.ndarray) -> np.ndarray:
        """Quantiles, exact from the values when kept, else interpolated within grid cells."""
        probs = np.asarray(probs, dtype=float)
        if self.n == 0:
            return np.full(probs.shape, np.nan)
        if self.values is not None:
            return np.quantile(self.values, probs)
        cum = np.cumsum(self.counts)
        target = probs * self.n
        cell = np.minimum(np.searchsorted(cum, target, side="left"), len(cum) - 1)
        before = np.where(cell > 0, cum[cell - 1], 0)
        frac = np.clip((target - before) / np.maximum(self.counts[cell], 1), 0, 1)
        q = (self.offset + cell + frac) * self.width
        return np.clip(q, self.min, self.max)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": NUMERIC,
            "n": self.n,
            "missing": self.missing,
            "sum": self.sum,
            "mean": self.mean,
            "m2": self.m2,
            "min": self.min if self.n else None,
            "max": self.max if self.n else None,
            "integral": self.integral,
            "exponent": self.exponent,
            "offset": self.offset,
            "counts": _pack(self.counts),
            "values": self.values.tolist() if self.values is not None else None,
            "domain": [[v, c] for v, c in self.domain.items()] if self.domain is not None else None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NumericProfile:
        return cls(
            n=int(d["n"]),
            missing=int(d["missing"]),
            sum=float(d["sum"]),
            mean=float(d["mean"]),
            m2=float(d["m2"]),
            min=math.inf if d["min"] is None else float(d["min"]),
            max=-math.inf if d["max"] is None else float(d["max"]),
            integral=bool(d["integral"]),
            exponent=d["exponent"],
            offset=int(d["offset"]),
            counts=_unpack(d["counts"]),
            values=np.asarray(d["values"], dtype=float) if d["values"] is not None else None,
            domain={float(v): int(c) for v, c in d["domain"]} if d["domain"] is not None else None,
        )


@dataclass
class CategoricalProfile:
    """Statistics of one categorical column: the frequency of every category (as a string)."""

    n: int = 0
    missing: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    #: number of distinct values, kept alone when the counts are dropped (identifiers)
    distinct: int | None = None

    kind = CATEGORICAL

    @property
    def n_distinct(self) -> int:
        return self.distinct if self.distinct is not None else len(self.counts)

    def drop_counts(self) -> None:
        """Keep only how many distinct values there were (an identifier's values are noise)."""
        self.distinct, self.counts = self.n_distinct, {}

    def update(self, keys: list[str], counts: np.ndarray, missing: int = 0) -> None:
        self.missing += missing
        for k, c in zip(keys, counts.tolist(), strict=True):
            self.counts[k] = self.counts.get(k, 0) + c
            self.n += c

    def merge(self, other: CategoricalProfile) -> CategoricalProfile:
        counts = dict(self.counts)
        for k, c in other.counts.items():
            counts[k] = counts.get(k, 0) + c
        out = CategoricalProfile(self.n + other.n, self.missing + other.missing, counts)
        if self.distinct is not None or other.distinct is not None:
            out.distinct = self.n_distinct + other.n_distinct  # identifiers: disjoint values
            out.counts = {}
        return out

    def to_dict(self) -> dict[str, Any]:
        ordered = [[k, c] for k, c in sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))]
        out = {"kind": CATEGORICAL, "n": self.n, "missing": self.missing, "counts": ordered}
        if self.distinct is not None:
            out["distinct"] = self.distinct
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CategoricalProfile:
        distinct = d.get("distinct")
        return cls(int(d["n"]), int(d["missing"]), {str(k): int(c) for k, c in d["counts"]},
                   None if distinct is None else int(distinct))  # fmt: skip


Profile = NumericProfile | CategoricalProfile


def profile_from_dict(p: dict[str, Any]) -> Profile:
    return (NumericProfile if p["kind"] == NUMERIC else CategoricalProfile).from_dict(p)
