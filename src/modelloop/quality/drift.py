"""Drift statistics, computed from a baseline's precomputed cells and one pass over new data.

Methods (``method`` in :class:`~modelloop.quality.checks.CheckConfig`), and when each one flags:

==============  ============================================================  ==================
method          what                                                          drift when
==============  ============================================================  ==================
wasserstein     Wasserstein-1 distance / max(reference std, 0.001)            value >= 0.1
jensenshannon   Jensen-Shannon distance (natural log; scipy's definition)     value >= 0.1
psi             population stability index over 10 reference-quantile bins    value >= 0.25
linf            max |CDF_ref - CDF_cur| (SageMaker/Deequ ``Simple``)           value >= 0.1
linf_robust     max(0, linf - 1.8 sqrt((n+m)/(n m))) (SageMaker ``Robust``)     value >= 0.1
ks              two-sample Kolmogorov-Smirnov test, p-value                    p < 0.05
chisquare       chi-square test of homogeneity (2 x k table), p-value          p < 0.05
==============  ============================================================  ==================

``auto`` (the default) mirrors Evidently 0.7's defaults (``_get_default_stattest`` in
``evidently/legacy/calculations/stattests/registry.py``), so verdicts agree with its DataDriftPreset:

* reference of more than 1,000 values: numeric with more than 5 distinct values (reference and
  current together) -> ``wasserstein``; categorical, or numeric with at most 5 distinct values ->
  ``jensenshannon`` over the values;
* reference of at most 1,000 values: numeric with more than 5 distinct values -> ``ks``; otherwise
  ``chisquare``. (Evidently uses a goodness-of-fit chi-square against the reference proportions, and
  a z-test for two values; we use the two-sample homogeneity test, which equals the z-test for two
  values and does not treat a small reference as exact.)

p-values from several columns are corrected for multiple testing (Benjamini-Hochberg by default;
``bonferroni``, ``holm`` or ``none``), so that on data without drift the chance of any false alarm
stays near the chosen level instead of growing with the number of columns.

Exactness: with at most 1,000 reference values (kept exactly by the baseline) and at most
:data:`CURRENT_EXACT_LIMIT` current values, ``ks`` and ``wasserstein`` are SciPy's own
``ks_2samp`` / ``wasserstein_distance`` on the raw values. Otherwise they are computed on the
reference's grid of up to 16,384 cells, with values mapped to cell midpoints and current values
outside the reference range kept exactly (through their count and sum): the Wasserstein distance is
exactly SciPy's on that representation and within about one cell width of the raw value, and the KS
statistic is the CDF distance at cell edges (at most one cell's mass below the raw one; the p-value
then uses SciPy's asymptotic ``kstwo`` distribution like ``ks_2samp(method="asymp")``).
Jensen-Shannon on categories is exact. Numeric ``psi``/``jensenshannon``/``chisquare`` on many
distinct values use 10 bins at reference deciles (cell boundaries), a convention, not Evidently's
Sturges bins over both samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from modelloop.quality.baseline import CategoricalProfile, NumericProfile

METHODS = ("wasserstein", "jensenshannon", "psi", "linf", "linf_robust", "ks", "chisquare")
#: Methods whose value is a p-value (drift when below the threshold); the others are distances.
TESTS = frozenset({"ks", "chisquare"})
DEFAULT_THRESHOLDS = {
    "wasserstein": 0.1,
    "jensenshannon": 0.1,
    "psi": 0.25,
    "linf": 0.1,
    "linf_robust": 0.1,
    "ks": 0.05,
    "chisquare": 0.05,
}
#: Reference sizes at or below this use statistical tests by default (Evidently's rule).
SMALL_REFERENCE = 1000
#: Numeric columns with at most this many distinct values are compared as categories.
FEW_VALUES = 5
#: Current columns with at most this many values are kept exactly for exact KS / Wasserstein.
CURRENT_EXACT_LIMIT = 100_000
#: c(alpha) of SageMaker's robust L-infinity distance (alpha about 0.003).
LINF_ROBUST_C = 1.8
PSI_BINS = 10
#: Chi-square pools categories expected fewer times than this (Cochran's rule of thumb).
MIN_EXPECTED = 5
PSI_EPS = 1e-4
CORRECTIONS = ("fdr_bh", "bonferroni", "holm", "none")


# -- the statistics on two distributions ----------------------------------------------------------
def psi(p: np.ndarray, q: np.ndarray, eps: float = PSI_EPS) -> float:
    """Population stability index sum((q - p) ln(q / p)) of two proportion vectors.

    Empty bins are floored at ``eps`` (the usual convention), which keeps the value finite.
    """
    p, q = np.clip(np.asarray(p, float), eps, None), np.clip(np.asarray(q, float), eps, None)
    return float(np.sum((q - p) * np.log(q / p)))


def jensenshannon(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon distance (natural log), exactly scipy.spatial.distance.jensenshannon."""
    from scipy.spatial.distance import jensenshannon as js

    return float(js(np.asarray(p, float), np.asarray(q, float)))


def linf_robust(d: float, n: int, m: int, c: float = LINF_ROBUST_C) -> float:
    """SageMaker's robust L-infinity: the KS distance less its critical value at c(alpha)."""
    return max(0.0, d - c * math.sqrt((n + m) / (n * m)))


def ks_pvalue(d: float, n: int, m: int) -> float:
    """Asymptotic two-sided KS p-value, as scipy.stats.ks_2samp(method="asymp") computes it."""
    from scipy.stats import kstwo

    en = n * m / (n + m)
    return float(kstwo.sf(d, np.round(en)))


def chisquare(ref_counts: np.ndarray, cur_counts: np.ndarray) -> tuple[float, float]:
    """Chi-square test of homogeneity on a 2 x k table (no continuity correction): (stat, p).

    Categories expected fewer than :data:`MIN_EXPECTED` times in either sample are pooled into one
    (Cochran's rule): the test's chi-square approximation fails on them, and a new category seen
    twice would otherwise make any sample "drift".
    """
    from scipy.stats import chi2_contingency

    table = np.vstack([ref_counts, cur_counts]).astype(float)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] > 2 and (table.sum(axis=1) > 0).all():
        expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
        rare = (expected < MIN_EXPECTED).any(axis=0)
        if rare.any():
            table = np.column_stack([table[:, ~rare], table[:, rare].sum(axis=1)])
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0
    res = chi2_contingency(table, correction=False)
    return float(res.statistic), float(res.pvalue)


def adjust_pvalues(pvalues: list[float], method: str = "fdr_bh") -> list[float]:
    """p-values corrected for testing several columns at once."""
    if not pvalues or method == "none":
        return list(pvalues)
    p = np.asarray(pvalues, dtype=float)
    k = len(p)
    if method == "bonferroni":
        return np.minimum(p * k, 1.0).tolist()
    if method == "holm":
        order = np.argsort(p)
        adj = np.maximum.accumulate(p[order] * (k - np.arange(k)))
        out = np.empty(k)
        out[order] = np.minimum(adj, 1.0)
        return out.tolist()
    if method == "fdr_bh":
        from scipy.stats import false_discovery_control

        return false_discovery_control(p, method="bh").tolist()
    raise ValueError(f"unknown correction {method!r}")


def default_method(kind: str, n_reference: int, n_distinct: float) -> str:
    """Evidently's default method for a column (see the module docstring)."""
    few = kind == "categorical" or n_distinct <= FEW_VALUES
    if n_reference <= SMALL_REFERENCE:
        return "chisquare" if few else "ks"
    return "jensenshannon" if few else "wasserstein"


# -- one pass over current data on the reference's grid -------------------------------------------
@dataclass
class CurrentNumeric:
    """Current values of one numeric column, counted on its reference's grid in one pass.

    Cells 1..L are the reference's cells; slot 0 and L+1 collect values below and above them,
    whose count and sum give their exact contribution to the Wasserstein distance.
    """

    exponent: int
    first: int
    n_cells: int
    counts: np.ndarray
    n: int = 0
    missing: int = 0
    unparsed: int = 0  #: strings that are not numbers
    non_integral: int = 0  #: fractional values where the reference was whole numbers
    negatives: int = 0
    sum: float = 0.0
    low_sum: float = 0.0
    high_sum: float = 0.0
    min: float = math.inf
    max: float = -math.inf
    values: list[np.ndarray] | None = field(default_factory=list)
    domain: dict[float, int] | None = field(default_factory=dict)

    @classmethod
    def on(cls, ref: NumericProfile) -> CurrentNumeric:
        return cls(
            ref.exponent, ref.offset, len(ref.counts), np.zeros(len(ref.counts) + 2, np.int64)
        )

    def update(self, x: np.ndarray, missing: int, unparsed: int, check_integral: bool) -> None:
        self.missing += missing
        self.unparsed += unparsed
        if x.size == 0:
            return
        w = math.ldexp(1.0, self.exponent)
        t = x * (1.0 / w)
        np.floor(t, out=t)
        t -= self.first
        np.clip(t, -1, self.n_cells, out=t)
        idx = t.astype(np.intp)
        idx += 1
        cnt = np.bincount(idx, minlength=self.n_cells + 2)
        if cnt[0]:
            self.low_sum += float(x[x < self.first * w].sum())
        if cnt[-1]:
            self.high_sum += float(x[x >= (self.first + self.n_cells) * w].sum())
        self.counts += cnt
        self.n += int(x.size)
        self.sum += float(x.sum())
        lo, hi = float(x.min()), float(x.max())
        self.min, self.max = min(self.min, lo), max(self.max, hi)
        if lo < 0:
            self.negatives += int(np.count_nonzero(x < 0))
        if check_integral:
            self.non_integral += int(x.size - np.count_nonzero(x == np.floor(x)))
        if self.values is not None:
            self.values = self.values + [x.copy()] if self.n <= CURRENT_EXACT_LIMIT else None
        if self.domain is not None:
            if np.count_nonzero(cnt) > FEW_VALUES + 1:
                self.domain = None
            else:
                u, c = np.unique(x, return_counts=True)
                for v, k in zip(u.tolist(), c.tolist(), strict=True):
                    self.domain[v] = self.domain.get(v, 0) + k
                if len(self.domain) > FEW_VALUES + 1:
                    self.domain = None

    def exact_values(self) -> np.ndarray | None:
        if self.values is None:
            return None
        return np.concatenate(self.values) if self.values else np.zeros(0)


def numeric_statistics(ref: NumericProfile, cur: CurrentNumeric) -> dict[str, float]:
    """Every distance of the table above, from the reference cells and the current counts."""
    n, m = ref.n, cur.n
    w = ref.width
    f_ref = np.cumsum(ref.counts) / n
    cells = cur.counts[1:-1]
    low, high = int(cur.counts[0]), int(cur.counts[-1])
    f_cur = (low + np.cumsum(cells)) / m
    diff = f_ref - f_cur
    linf = float(max(np.abs(diff).max(), low / m))
    mids0 = (cur.first + 0.5) * w
    mids_last = (cur.first + cur.n_cells - 0.5) * w
    wass = w * float(np.abs(diff[:-1]).sum())
    wass += (low * mids0 - cur.low_sum) / m + (cur.high_sum - high * mids_last) / m
    groups, p, q = decile_bins(ref, cur)
    return {
        "wasserstein": wass / max(ref.std, 0.001),
        "linf": linf,
        "linf_robust": linf_robust(linf, n, m),
        "psi": psi(p, q),
        "jensenshannon": jensenshannon(p, q),
    }


def decile_bins(
    ref: NumericProfile, cur: CurrentNumeric
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reference and current proportions in PSI_BINS bins at the reference's deciles.

    A cell goes to the bin holding the reference CDF at its middle; values below (above) the
    reference range go to the first (last) bin.
    """
    mid_cdf = (np.cumsum(ref.counts) - ref.counts / 2) / ref.n
    groups = np.minimum((mid_cdf * PSI_BINS).astype(np.intp), PSI_BINS - 1)
    p = np.bincount(groups, weights=ref.counts, minlength=PSI_BINS) / ref.n
    q = np.bincount(groups, weights=cur.counts[1:-1], minlength=PSI_BINS)
    q[0] += cur.counts[0]
    q[-1] += cur.counts[-1]
    return groups, p, q / cur.n


def compare_numeric(
    ref: NumericProfile, cur: CurrentNumeric, method: str
) -> tuple[float, float | None, dict[str, float]]:
    """(value, p-value or None, all statistics) of one numeric column for ``method``."""
    stats = numeric_statistics(ref, cur)
    exact = cur.exact_values() if ref.values is not None else None
    if exact is not None and exact.size:
        from scipy.stats import ks_2samp, wasserstein_distance

        stats["wasserstein"] = float(wasserstein_distance(ref.values, exact)) / max(ref.std, 0.001)
        if method == "ks":
            res = ks_2samp(ref.values, exact)
            stats["ks"] = float(res.statistic)
            return float(res.statistic), float(res.pvalue), stats
    if method == "ks":
        stats["ks"] = stats["linf"]
        return stats["linf"], ks_pvalue(stats["linf"], ref.n, cur.n), stats
    few = _few_values(ref, cur)
    if few is not None and method in ("jensenshannon", "chisquare", "psi"):
        a, b = few
        stats.update(
            jensenshannon=jensenshannon(a / a.sum(), b / b.sum()), psi=psi(a / a.sum(), b / b.sum())
        )
        if method == "chisquare":
            stats["chisquare"], p = chisquare(a, b)
            return stats["chisquare"], p, stats
        return stats[method], None, stats
    if method == "chisquare":
        _, p_ref, p_cur = decile_bins(ref, cur)
        stats["chisquare"], p = chisquare(p_ref * ref.n, np.round(p_cur * cur.n))
        return stats["chisquare"], p, stats
    return stats[method], None, stats


def _few_values(ref: NumericProfile, cur: CurrentNumeric) -> tuple[np.ndarray, np.ndarray] | None:
    """Counts by value over both samples' values, if both have few distinct values."""
    if ref.domain is None or cur.domain is None:
        return None
    keys = sorted(set(ref.domain) | set(cur.domain))
    a = np.array([ref.domain.get(k, 0) for k in keys], float)
    b = np.array([cur.domain.get(k, 0) for k in keys], float)
    return a, b


def distinct_values(ref: NumericProfile, cur: CurrentNumeric) -> float:
    """Distinct values in both samples together, or infinity when there are many."""
    few = _few_values(ref, cur)
    return math.inf if few is None else len(few[0])


def compare_categorical(
    ref: CategoricalProfile, cur: CategoricalProfile, method: str
) -> tuple[float, float | None, dict[str, float]]:
    """(value, p-value or None, all statistics) of one categorical column for ``method``."""
    keys = sorted(set(ref.counts) | set(cur.counts))
    a = np.array([ref.counts.get(k, 0) for k in keys], float)
    b = np.array([cur.counts.get(k, 0) for k in keys], float)
    p, q = a / a.sum(), b / b.sum()
    stats = {
        "jensenshannon": jensenshannon(p, q),
        "psi": psi(p, q),
        "linf": float(np.abs(p - q).max()),
    }
    stats["linf_robust"] = linf_robust(stats["linf"], ref.n, cur.n)
    if method == "chisquare":
        stats["chisquare"], pval = chisquare(a, b)
        return stats["chisquare"], pval, stats
    if method not in stats:
        raise ValueError(f"method {method!r} does not apply to categorical columns")
    return stats[method], None, stats
