"""A baseline column next to the current one: what every statistic reads, computed once.

A :class:`NumericComparison` holds a numeric column's reference cells and the current counts on
them (:class:`~modelloop.quality.drift.current.CurrentNumeric`); a :class:`CategoricalComparison`
two columns' category counts. Both give ``counts()`` and ``proportions()`` over common bins
(categories; for numbers the reference's deciles, or the values themselves when both samples have
few), so a statistic on binned distributions is written once for both kinds.

:func:`compare_numeric` / :func:`compare_categorical` run one statistic and report, beside it,
every registered ``summary`` statistic on the same comparison (the drift table's columns).
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from modelloop.quality.drift.base import CATEGORICAL, NUMERIC, STATISTICS, DriftStatistic, get

if TYPE_CHECKING:  # pragma: no cover
    from modelloop.quality.drift.current import CurrentNumeric
    from modelloop.quality.profiles import CategoricalProfile, NumericProfile

#: Numeric columns with many distinct values are binned at this many reference quantiles.
PSI_BINS = 10

Bins = tuple[np.ndarray, np.ndarray]


class NumericComparison:
    """A numeric column's reference cells and the current counts on the same grid."""

    kind = NUMERIC

    def __init__(
        self, ref: NumericProfile, cur: CurrentNumeric, *, by_value: bool = False,
        exact: bool = True,
    ) -> None:  # fmt: skip
        self.ref, self.cur = ref, cur
        self.n, self.m = ref.n, cur.n
        self._by_value = by_value
        self._exact = exact

    @cached_property
    def exact_values(self) -> np.ndarray | None:
        """The current values when both samples were kept exactly (small enough), else None."""
        if not self._exact or self.ref.values is None:
            return None
        x = self.cur.exact_values()
        return x if x is not None and x.size else None

    @cached_property
    def cdf_difference(self) -> np.ndarray:
        """Reference CDF less current CDF at each reference cell's upper edge."""
        f_ref = np.cumsum(self.ref.counts) / self.n
        f_cur = (int(self.cur.counts[0]) + np.cumsum(self.cur.counts[1:-1])) / self.m
        return f_ref - f_cur

    @cached_property
    def deciles(self) -> Bins:
        return decile_bins(self.ref, self.cur)[1:]

    @cached_property
    def values(self) -> Bins | None:
        """Counts by value over both samples' values, if both have few distinct values."""
        return _few_values(self.ref, self.cur)

    def _binned_by_value(self) -> bool:
        return self._by_value and self.values is not None

    def proportions(self) -> Bins:
        if self._binned_by_value():
            a, b = self.values
            return a / a.sum(), b / b.sum()
        return self.deciles

    def counts(self) -> Bins:
        if self._binned_by_value():
            return self.values
        p, q = self.deciles
        return p * self.n, np.round(q * self.m)


class CategoricalComparison:
    """Two category counts over the union of their categories (sorted)."""

    kind = CATEGORICAL

    def __init__(self, ref: CategoricalProfile, cur: CategoricalProfile) -> None:
        self.ref, self.cur = ref, cur
        self.n, self.m = ref.n, cur.n
        keys = sorted(set(ref.counts) | set(cur.counts))
        self._a = np.array([ref.counts.get(k, 0) for k in keys], float)
        self._b = np.array([cur.counts.get(k, 0) for k in keys], float)

    def counts(self) -> Bins:
        return self._a, self._b

    def proportions(self) -> Bins:
        return self._a / self._a.sum(), self._b / self._b.sum()


Comparison = NumericComparison | CategoricalComparison


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


def _few_values(ref: NumericProfile, cur: CurrentNumeric) -> Bins | None:
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


def compare(cmp: Comparison, stat: DriftStatistic) -> tuple[float, float | None, dict[str, float]]:
    """(value, p-value or None, summary statistics and this one) of one column."""
    if cmp.kind not in stat.kinds:
        raise ValueError(f"method {stat.name!r} does not apply to {cmp.kind} columns")
    stats = summary(cmp)
    value, p = stat.compute(cmp)
    stats[stat.name] = value
    return value, p, stats


def compare_numeric(
    ref: NumericProfile, cur: CurrentNumeric, method: str
) -> tuple[float, float | None, dict[str, float]]:
    """(value, p-value or None, statistics) of one numeric column for ``method``."""
    stat = get(method)
    return compare(NumericComparison(ref, cur, by_value=stat.by_value), stat)


def compare_categorical(
    ref: CategoricalProfile, cur: CategoricalProfile, method: str
) -> tuple[float, float | None, dict[str, float]]:
    """(value, p-value or None, statistics) of one categorical column for ``method``."""
    return compare(CategoricalComparison(ref, cur), get(method))


def numeric_statistics(ref: NumericProfile, cur: CurrentNumeric) -> dict[str, float]:
    """The summary statistics of a numeric column on the grid alone (no exact values)."""
    return summary(NumericComparison(ref, cur, exact=False))


def summary(cmp: Comparison) -> dict[str, float]:
    """Every registered summary statistic that applies to the column."""
    stats = (s for s in STATISTICS.values() if s.summary and cmp.kind in s.kinds)
    return {s.name: s.compute(cmp).value for s in stats}
