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

Every column has a *role* (:mod:`modelloop.quality.roles`): feature, target, identifier, time or
ignored. Identifiers keep only their counts (their values are not a distribution), and checks
compare only features and the target. Baselines written before roles existed get the default
roles when read.
"""

from __future__ import annotations

import base64
import copy
import math
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelloop.errors import InvalidInput, SchemaMismatch
from modelloop.quality import roles as R
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
#: Fewer values than this say nothing about a distribution: no domain is suggested from them, and
#: checks report such columns (and smaller current data) as "not enough data", not as drift.
MIN_ROWS = 30
FORMAT = "modelloop.baseline/1"
#: Key of modelloop's additions to SageMaker's files (roles, exact profiles, the original
#: monitoring config), so that an exported baseline imports back exactly; SageMaker ignores it.
EXTENSION = "modelloop"


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


@dataclass
class Baseline:
    """Per-column profiles of a dataset, plus the constraints suggested from them.

    ``roles`` maps every column (profiled or skipped) to its role; columns it leaves out get the
    default role (:meth:`role`). ``constraints`` holds constraints that override the suggested
    ones (e.g. read from a SageMaker constraints.json); ``monitoring_config`` keeps a SageMaker
    ``monitoring_config`` read with the baseline, which :func:`modelloop.quality.checks.check`
    then uses by default.
    """

    n_rows: int
    columns: dict[str, Profile]
    skipped: list[str] = field(default_factory=list)  #: columns of types we do not profile
    constraints: dict[str, dict[str, Any]] = field(default_factory=dict)
    monitoring_config: dict[str, Any] | None = None
    roles: dict[str, str] = field(default_factory=dict)

    # -- building ---------------------------------------------------------------------------------
    @classmethod
    def from_batches(
        cls,
        data: Any,
        *,
        categorical: Iterable[str] = (),
        target: str | None = None,
        roles: dict[str, str] | None = None,
    ) -> Baseline:
        """Profile data in one pass: a DataFrame, a pyarrow Table, or an iterable of batches.

        ``categorical`` names numeric columns to treat as categories (codes, ids, small ints);
        ``target`` names the label column; ``roles`` sets other roles explicitly (e.g. a time
        column kept as text, or a column to ignore). Other roles are inferred: datetimes are
        ``time``, identifier-like text is ``identifier``, the rest are features.
        """
        forced = set(categorical)
        given = check_roles(dict(roles or {}))
        if target is not None:
            given[target] = "target"
        columns: dict[str, Profile] = {}
        skipped: list[str] = []
        temporal: set[str] = set()
        n_rows = 0
        for batch in iter_batches(data):
            if not columns and not skipped:
                unknown = sorted(set(given) - set(batch.names))
                if unknown:
                    raise InvalidInput(
                        f"roles name columns not in the data: {', '.join(unknown)}",
                        hint=f"the columns are: {', '.join(batch.names)}",
                    )
                for name in batch.names:
                    kind = CATEGORICAL if name in forced else batch.kind(name)
                    if kind == NUMERIC:
                        columns[name] = NumericProfile()
                    elif kind == CATEGORICAL:
                        columns[name] = CategoricalProfile()
                    else:
                        skipped.append(name)
                        if batch.is_temporal(name):
                            temporal.add(name)
            n_rows += batch.n_rows
            for name, prof in columns.items():
                if isinstance(prof, NumericProfile):
                    x, unparsed = batch.numbers(name)
                    prof.update(x, batch.n_rows - x.size - unparsed, batch.is_integer_typed(name))
                    prof.missing += unparsed
                else:
                    keys, counts = batch.value_counts(name)
                    prof.update(keys, counts, batch.missing(name))
        out = cls(n_rows=n_rows, columns=columns, skipped=skipped)
        for name in [*columns, *skipped]:
            if name in given:
                out.roles[name] = given[name]
            elif name in temporal:
                out.roles[name] = "time"
            else:
                out.roles[name] = out.role(name) if name not in forced else "feature"
        for name, prof in columns.items():
            if out.roles[name] == "identifier" and isinstance(prof, CategoricalProfile):
                prof.drop_counts()
        return out

    from_frame = from_batches

    def merge(self, other: Baseline) -> Baseline:
        """The baseline of both partitions together; both must have the same schema."""
        if self.schema != other.schema:
            raise SchemaMismatch(
                f"cannot merge baselines of different schemas: {self.schema} and {other.schema}",
                hint="merge only baselines of partitions of the same dataset",
            )
        columns = {name: prof.merge(other.columns[name]) for name, prof in self.columns.items()}
        return Baseline(self.n_rows + other.n_rows, columns, list(self.skipped),
                        roles=dict(self.roles))  # fmt: skip

    # -- reading ----------------------------------------------------------------------------------
    @property
    def schema(self) -> dict[str, str]:
        """Column name -> ``numeric`` | ``categorical``."""
        return {name: prof.kind for name, prof in self.columns.items()}

    def role(self, name: str) -> str:
        """The column's role: recorded, or else the default (for baselines older than roles and
        baselines from SageMaker files): identifier-like text is an identifier, columns of types
        we do not profile are ignored, everything else is a feature."""
        if name in self.roles:
            return self.roles[name]
        prof = self.columns.get(name)
        if prof is None:
            return "ignored"
        if isinstance(prof, CategoricalProfile) and R.is_identifier(prof.n_distinct, prof.n):
            return "identifier"
        return "feature"

    def with_roles(self, roles: dict[str, str]) -> Baseline:
        """A copy with some roles changed (e.g. excluded columns set to ``ignored``)."""
        check_roles(roles)
        merged = {name: self.role(name) for name in [*self.columns, *self.skipped]} | roles
        return Baseline(self.n_rows, self.columns, self.skipped, self.constraints,
                        self.monitoring_config, merged)  # fmt: skip

    def constraint(self, name: str) -> dict[str, Any]:
        """The constraints for one column: completeness, is_non_negative or domains.

        A domain is suggested only from enough values (:data:`MIN_ROWS`) that repeat: from a
        handful of rows, or from an identifier, any new value would look like a violation.
        """
        prof = self.columns[name]
        total = prof.n + prof.missing
        suggested: dict[str, Any] = {"completeness": prof.n / total if total else 1.0}
        if isinstance(prof, NumericProfile):
            suggested["is_non_negative"] = bool(prof.n == 0 or prof.min >= 0)
        elif (
            prof.n >= MIN_ROWS
            and prof.distinct is None
            and len(prof.counts) <= DOMAIN_SUGGEST_LIMIT
            and len(prof.counts) <= max(prof.n // 2, 1)
        ):
            suggested["domains"] = sorted(prof.counts)
        return {**suggested, **self.constraints.get(name, {})}

    # -- native JSON ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "n_rows": self.n_rows,
            "columns": {name: prof.to_dict() for name, prof in self.columns.items()},
            "skipped": list(self.skipped),
            "roles": {name: self.role(name) for name in [*self.columns, *self.skipped]},
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
                columns[name] = _profile_from_dict(p)
            return cls(
                int(d["n_rows"]),
                columns,
                list(d.get("skipped", [])),
                dict(d.get("constraints") or {}),
                d.get("monitoring_config"),
                check_roles(dict(d.get("roles") or {})),  # absent before roles: defaults
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

        Each feature also carries a ``modelloop`` key with its role and exact profile, columns of
        types we do not profile are listed with ``inferred_type`` ``Unknown``, and
        constraints.json's ``modelloop`` key keeps the baseline's own monitoring config: read
        back with :meth:`from_sagemaker`, the baseline checks exactly as the original did.
        """
        from modelloop.quality.checks import CheckConfig

        features, cfeatures = [], []
        for name, prof in self.columns.items():
            con = self.constraint(name)
            common = {"num_present": prof.n, "num_missing": prof.missing}
            ext = {EXTENSION: {"role": self.role(name), "profile": prof.to_dict()}}
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
                        **ext,
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
                            "distinct_count": float(prof.n_distinct),
                            "distribution": {"categorical": {"buckets": buckets}},
                        },
                        **ext,
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
        for name in self.skipped:
            features.append(
                {"name": name, "inferred_type": "Unknown", EXTENSION: {"role": self.role(name)}}
            )
        statistics = {"version": 0.0, "dataset": {"item_count": self.n_rows}, "features": features}
        cfg = (
            config
            if config is not None
            else CheckConfig.from_sagemaker(self.monitoring_config or {})
        )
        monitoring_config = cfg.to_sagemaker()
        constraints = {
            "version": 0.0,
            "features": cfeatures,
            "monitoring_config": monitoring_config,
        }
        if config is None:
            # the config this baseline really checks with (None: modelloop's defaults), used on
            # import unless someone edited monitoring_config since
            constraints[EXTENSION] = {
                "monitoring_config": self.monitoring_config,
                "exported_monitoring_config": copy.deepcopy(monitoring_config),
            }
        return statistics, constraints

    @classmethod
    def from_sagemaker(
        cls, statistics: dict[str, Any], constraints: dict[str, Any] | None = None
    ) -> Baseline:
        """Read SageMaker ``statistics.json`` (and optionally ``constraints.json``) dicts.

        Files written by :meth:`to_sagemaker` come back exactly (their ``modelloop`` keys);
        files from SageMaker get the default roles and profiles rebuilt from the KLL sketches.
        """
        try:
            n_rows = int(statistics["dataset"]["item_count"])
            feats = statistics["features"]
        except (KeyError, TypeError) as exc:
            raise InvalidInput(
                f"statistics.json lacks {exc}",
                hint="pass the parsed statistics.json: {'version', 'dataset': {'item_count'}, 'features': [...]}",
            ) from exc
        columns: dict[str, Profile] = {}
        skipped: list[str] = []
        roles: dict[str, str] = {}
        for f in feats:
            name = f.get("name") if isinstance(f, dict) else None
            try:
                ext = f.get(EXTENSION) or {}
                if "role" in ext:
                    roles[name] = str(ext["role"])
                if "profile" in ext:
                    columns[name] = _profile_from_dict(ext["profile"])
                elif "numerical_statistics" in f:
                    columns[name] = _numeric_from_sagemaker(f)
                elif "string_statistics" in f:
                    s = f["string_statistics"]
                    buckets = s.get("distribution", {}).get("categorical", {}).get("buckets", [])
                    counts = {str(b["value"]): int(b["count"]) for b in buckets}
                    columns[name] = CategoricalProfile(
                        int(s["common"]["num_present"]), int(s["common"]["num_missing"]), counts
                    )
                    distinct = s.get("distinct_count")
                    if distinct is not None and not counts:
                        columns[name].distinct = int(distinct)  # an identifier's buckets dropped
                elif f.get("inferred_type") == "Unknown":
                    skipped.append(name)
                else:
                    raise KeyError("numerical_statistics or string_statistics")
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
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
            ext = constraints.get(EXTENSION) or {}
            if "exported_monitoring_config" in ext and ext["exported_monitoring_config"] == config:
                config = ext.get("monitoring_config")
        return cls(n_rows, columns, skipped, overrides, config, check_roles(roles))


def check_roles(roles: dict[str, str]) -> dict[str, str]:
    """``roles`` itself, once every role is one of :data:`modelloop.quality.roles.ROLES`."""
    for name, role in roles.items():
        if role not in R.ROLES:
            raise InvalidInput(
                f"column {name!r} has unknown role {role!r}", hint=f"use one of {', '.join(R.ROLES)}"
            )
    return roles


def _profile_from_dict(p: dict[str, Any]) -> Profile:
    return (NumericProfile if p["kind"] == NUMERIC else CategoricalProfile).from_dict(p)


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
