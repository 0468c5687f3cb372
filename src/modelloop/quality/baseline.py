"""Baselines: per-column statistics of a dataset version, the reference for checks and drift.

A :class:`Baseline` is built in one streaming pass (``Baseline.from_batches``), merges with the
baseline of another partition (``a.merge(b)`` equals the baseline of the union: counts, extremes,
histograms and domains exactly, mean and standard deviation up to float rounding), and serialises
to plain JSON, natively (``to_dict``) or in SageMaker Model Monitor's ``statistics.json`` /
``constraints.json`` layout (``to_sagemaker`` / ``from_sagemaker``).

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
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelloop.errors import InvalidInput, SchemaMismatch
from modelloop.quality._columns import CATEGORICAL, NUMERIC, iter_batches

#: Maximum number of histogram cells per numeric column (128 KiB of counts at most).
GRID_CELLS = 16384
#: Columns with at most this many values also keep the exact values (exact KS / Wasserstein).
EXACT_LIMIT = 1000
#: Numeric columns with at most this many distinct values keep their value counts (Evidently
#: treats numeric columns with <= 5 distinct values as categorical).
DOMAIN_LIMIT = 8
#: Categorical columns with at most this many categories get a suggested domain constraint.
DOMAIN_SUGGEST_LIMIT = 1000
#: Number of quantile points written as the KLL sketch in SageMaker's statistics.json.
SKETCH_POINTS = 1024
FORMAT = "modelloop.baseline/1"


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

    kind = CATEGORICAL

    def update(self, keys: list[str], counts: np.ndarray, missing: int = 0) -> None:
        self.missing += missing
        for k, c in zip(keys, counts.tolist(), strict=True):
            self.counts[k] = self.counts.get(k, 0) + c
            self.n += c

    def merge(self, other: CategoricalProfile) -> CategoricalProfile:
        counts = dict(self.counts)
        for k, c in other.counts.items():
            counts[k] = counts.get(k, 0) + c
        return CategoricalProfile(self.n + other.n, self.missing + other.missing, counts)

    def to_dict(self) -> dict[str, Any]:
        ordered = sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return {"kind": CATEGORICAL, "n": self.n, "missing": self.missing, "counts": ordered}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CategoricalProfile:
        return cls(int(d["n"]), int(d["missing"]), {str(k): int(c) for k, c in d["counts"]})


Profile = NumericProfile | CategoricalProfile


@dataclass
class Baseline:
    """Per-column profiles of a dataset, plus the constraints suggested from them.

    ``constraints`` holds constraints that override the suggested ones (e.g. read from a
    SageMaker constraints.json); ``monitoring_config`` keeps a SageMaker ``monitoring_config`` read
    with the baseline, which :func:`modelloop.quality.checks.check` then uses by default.
    """

    n_rows: int
    columns: dict[str, Profile]
    skipped: list[str] = field(default_factory=list)  #: columns of types we do not profile
    constraints: dict[str, dict[str, Any]] = field(default_factory=dict)
    monitoring_config: dict[str, Any] | None = None

    # -- building ---------------------------------------------------------------------------------
    @classmethod
    def from_batches(cls, data: Any, *, categorical: Iterable[str] = ()) -> Baseline:
        """Profile data in one pass: a DataFrame, a pyarrow Table, or an iterable of batches.

        ``categorical`` names numeric columns to treat as categories (codes, ids, small ints).
        """
        forced = set(categorical)
        columns: dict[str, Profile] = {}
        skipped: list[str] = []
        n_rows = 0
        for batch in iter_batches(data):
            if not columns and not skipped:
                for name in batch.names:
                    kind = CATEGORICAL if name in forced else batch.kind(name)
                    if kind == NUMERIC:
                        columns[name] = NumericProfile()
                    elif kind == CATEGORICAL:
                        columns[name] = CategoricalProfile()
                    else:
                        skipped.append(name)
            n_rows += batch.n_rows
            for name, prof in columns.items():
                if isinstance(prof, NumericProfile):
                    x, unparsed = batch.numbers(name)
                    prof.update(x, batch.n_rows - x.size - unparsed, batch.is_integer_typed(name))
                    prof.missing += unparsed
                else:
                    keys, counts = batch.value_counts(name)
                    prof.update(keys, counts, batch.missing(name))
        return cls(n_rows=n_rows, columns=columns, skipped=skipped)

    from_frame = from_batches

    def merge(self, other: Baseline) -> Baseline:
        """The baseline of both partitions together; both must have the same schema."""
        if self.schema != other.schema:
            raise SchemaMismatch(
                f"cannot merge baselines of different schemas: {self.schema} and {other.schema}",
                hint="merge only baselines of partitions of the same dataset",
            )
        columns = {name: prof.merge(other.columns[name]) for name, prof in self.columns.items()}
        return Baseline(self.n_rows + other.n_rows, columns, list(self.skipped))

    # -- reading ----------------------------------------------------------------------------------
    @property
    def schema(self) -> dict[str, str]:
        """Column name -> ``numeric`` | ``categorical``."""
        return {name: prof.kind for name, prof in self.columns.items()}

    def constraint(self, name: str) -> dict[str, Any]:
        """The constraints for one column: completeness, is_non_negative or domains."""
        prof = self.columns[name]
        total = prof.n + prof.missing
        suggested: dict[str, Any] = {"completeness": prof.n / total if total else 1.0}
        if isinstance(prof, NumericProfile):
            suggested["is_non_negative"] = bool(prof.n == 0 or prof.min >= 0)
        elif len(prof.counts) <= DOMAIN_SUGGEST_LIMIT and len(prof.counts) <= max(prof.n // 2, 1):
            suggested["domains"] = sorted(prof.counts)
        return {**suggested, **self.constraints.get(name, {})}

    # -- native JSON ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "n_rows": self.n_rows,
            "columns": {name: prof.to_dict() for name, prof in self.columns.items()},
            "skipped": list(self.skipped),
            "constraints": self.constraints,
            "monitoring_config": self.monitoring_config,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Baseline:
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            found = d.get("format") if isinstance(d, dict) else type(d).__name__
            raise InvalidInput(
                f"not a modelloop baseline (format {found!r}, expected {FORMAT!r})",
                hint="pass the dict written by Baseline.to_dict(), or use Baseline.from_sagemaker",
            )
        try:
            columns: dict[str, Profile] = {}
            for name, p in d["columns"].items():
                cls_ = NumericProfile if p["kind"] == NUMERIC else CategoricalProfile
                columns[name] = cls_.from_dict(p)
            return cls(
                int(d["n_rows"]),
                columns,
                list(d.get("skipped", [])),
                dict(d.get("constraints") or {}),
                d.get("monitoring_config"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(
                f"baseline JSON is damaged: {exc!r}", hint="re-create the baseline"
            ) from exc

    # -- SageMaker Model Monitor layout -----------------------------------------------------------
    def to_sagemaker(self, config: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(statistics.json, constraints.json)`` dicts in SageMaker Model Monitor's layout.

        The numeric distribution is written as SageMaker does: 10 equal-width buckets and a KLL
        sketch, whose data here is the exact values (small columns) or 1,024 quantile points.
        ``config`` (a CheckConfig) fills ``monitoring_config``; SageMaker's defaults otherwise.
        """
        from modelloop.quality.checks import CheckConfig

        features, cfeatures = [], []
        for name, prof in self.columns.items():
            con = self.constraint(name)
            common = {"num_present": prof.n, "num_missing": prof.missing}
            if isinstance(prof, NumericProfile):
                itype = "Integral" if prof.integral else "Fractional"
                features.append(
                    {
                        "name": name,
                        "inferred_type": itype,
                        "numerical_statistics": {
                            "common": common,
                            "mean": prof.mean,
                            "sum": prof.sum,
                            "std_dev": prof.std,
                            "min": prof.min if prof.n else 0.0,
                            "max": prof.max if prof.n else 0.0,
                            "distribution": {"kll": _kll(prof)},
                        },
                    }
                )
                cfeatures.append(
                    {
                        "name": name,
                        "inferred_type": itype,
                        "completeness": con["completeness"],
                        "num_constraints": {"is_non_negative": con["is_non_negative"]},
                    }
                )
            else:
                buckets = [{"value": k, "count": c} for k, c in prof.to_dict()["counts"]]
                features.append(
                    {
                        "name": name,
                        "inferred_type": "String",
                        "string_statistics": {
                            "common": common,
                            "distinct_count": float(len(prof.counts)),
                            "distribution": {"categorical": {"buckets": buckets}},
                        },
                    }
                )
                cf: dict[str, Any] = {
                    "name": name,
                    "inferred_type": "String",
                    "completeness": con["completeness"],
                }
                if "domains" in con:
                    cf["string_constraints"] = {"domains": list(con["domains"])}
                cfeatures.append(cf)
        statistics = {"version": 0.0, "dataset": {"item_count": self.n_rows}, "features": features}
        cfg = (
            config
            if config is not None
            else CheckConfig.from_sagemaker(self.monitoring_config or {})
        )
        constraints = {
            "version": 0.0,
            "features": cfeatures,
            "monitoring_config": cfg.to_sagemaker(),
        }
        return statistics, constraints

    @classmethod
    def from_sagemaker(
        cls, statistics: dict[str, Any], constraints: dict[str, Any] | None = None
    ) -> Baseline:
        """Read SageMaker ``statistics.json`` (and optionally ``constraints.json``) dicts."""
        try:
            n_rows = int(statistics["dataset"]["item_count"])
            feats = statistics["features"]
        except (KeyError, TypeError) as exc:
            raise InvalidInput(
                f"statistics.json lacks {exc}",
                hint="pass the parsed statistics.json: {'version', 'dataset': {'item_count'}, 'features': [...]}",
            ) from exc
        columns: dict[str, Profile] = {}
        for f in feats:
            name = f.get("name")
            try:
                if "numerical_statistics" in f:
                    columns[name] = _numeric_from_sagemaker(f)
                elif "string_statistics" in f:
                    s = f["string_statistics"]
                    buckets = s.get("distribution", {}).get("categorical", {}).get("buckets", [])
                    counts = {str(b["value"]): int(b["count"]) for b in buckets}
                    columns[name] = CategoricalProfile(
                        int(s["common"]["num_present"]), int(s["common"]["num_missing"]), counts
                    )
                else:
                    raise KeyError("numerical_statistics or string_statistics")
            except (KeyError, TypeError, ValueError) as exc:
                raise InvalidInput(
                    f"statistics.json feature {name!r} lacks or mangles {exc}",
                    hint="each feature needs numerical_statistics or string_statistics with common counts",
                ) from exc
        overrides: dict[str, dict[str, Any]] = {}
        config = None
        if constraints:
            for f in constraints.get("features", []):
                o: dict[str, Any] = {}
                if "completeness" in f:
                    o["completeness"] = float(f["completeness"])
                if "is_non_negative" in f.get("num_constraints", {}):
                    o["is_non_negative"] = bool(f["num_constraints"]["is_non_negative"])
                if "domains" in f.get("string_constraints", {}):
                    o["domains"] = [str(v) for v in f["string_constraints"]["domains"]]
                if f.get("name") in columns:
                    overrides[f["name"]] = o
            config = constraints.get("monitoring_config")
        return cls(n_rows, columns, [], overrides, config)


def _kll(prof: NumericProfile) -> dict[str, Any]:
    """SageMaker's ``distribution.kll``: 10 equal-width buckets and the sketch's items."""
    if prof.n == 0:
        return {"buckets": [], "sketch": {"parameters": {"c": 0.64, "k": 2048.0}, "data": [[]]}}
    edges = np.linspace(prof.min, prof.max, 11)
    if prof.values is not None:
        counts = np.histogram(prof.values, bins=edges)[0]
        items = prof.values
    else:
        mids = (prof.offset + np.arange(len(prof.counts)) + 0.5) * prof.width
        counts = np.histogram(np.clip(mids, prof.min, prof.max), bins=edges, weights=prof.counts)[0]
        items = prof.quantiles((np.arange(SKETCH_POINTS) + 0.5) / SKETCH_POINTS)
    buckets = [
        {
            "lower_bound": float(edges[i]),
            "upper_bound": float(edges[i + 1]),
            "count": float(counts[i]),
        }
        for i in range(10)
    ]
    return {
        "buckets": buckets,
        "sketch": {"parameters": {"c": 0.64, "k": 2048.0}, "data": [[float(v) for v in items]]},
    }


def _numeric_from_sagemaker(f: dict[str, Any]) -> NumericProfile:
    s = f["numerical_statistics"]
    n, missing = int(s["common"]["num_present"]), int(s["common"]["num_missing"])
    prof = NumericProfile(n=n, missing=missing)
    if n == 0:
        return prof
    prof.sum, prof.mean = float(s["sum"]), float(s["mean"])
    prof.m2 = float(s["std_dev"]) ** 2 * n
    prof.min, prof.max = float(s["min"]), float(s["max"])
    prof.integral = f.get("inferred_type") == "Integral"
    kll = s.get("distribution", {}).get("kll", {})
    levels = kll.get("sketch", {}).get("data") or []
    # A KLL sketch's items at level h stand for 2**h values each.
    items = (
        np.concatenate([np.asarray(lv, dtype=float) for lv in levels]) if levels else np.zeros(0)
    )
    weights = (
        np.concatenate([np.full(len(lv), 2.0**h) for h, lv in enumerate(levels)])
        if levels
        else np.zeros(0)
    )
    if items.size == 0:  # no sketch: spread each bucket's count evenly over its range
        pts = [np.linspace(b["lower_bound"], b["upper_bound"], 64) for b in kll.get("buckets", [])]
        wts = [np.full(64, float(b["count"]) / 64) for b in kll.get("buckets", [])]
        items = np.concatenate(pts) if pts else np.array([prof.mean])
        weights = np.concatenate(wts) if wts else np.ones(1)
    exact = len(levels) == 1 and items.size == n and n <= EXACT_LIMIT
    prof.values = np.sort(items) if exact else None
    if exact:
        u, c = np.unique(items, return_counts=True)
        prof.domain = (
            dict(zip(u.tolist(), c.tolist(), strict=True)) if len(u) <= DOMAIN_LIMIT else None
        )
    else:
        prof.domain = None
    e = grid_exponent(prof.min, prof.max)
    idx = cell_index(np.clip(items, prof.min, prof.max), e)
    first = math.floor(math.ldexp(prof.min, -e))
    n_cells = math.floor(math.ldexp(prof.max, -e)) - first + 1
    mass = np.bincount(idx - first, weights=weights, minlength=n_cells)
    mass = mass * (n / mass.sum()) if mass.sum() > 0 else mass
    # rounding the running total keeps the sum at n without shifting mass to either end
    counts = np.diff(np.round(np.cumsum(mass)), prepend=0.0).astype(np.int64)
    prof.exponent, prof.offset, prof.counts = e, first, counts
    return prof
