"""Two-sample Kolmogorov-Smirnov test."""

from __future__ import annotations

import numpy as np

from modelloop.quality.drift.base import NUMERIC, DriftStatistic, Measure
from modelloop.quality.drift.comparison import NumericComparison
from modelloop.quality.drift.linf import linf_distance


def ks_pvalue(d: float, n: int, m: int) -> float:
    """Asymptotic two-sided KS p-value, as scipy.stats.ks_2samp(method="asymp") computes it."""
    from scipy.stats import kstwo

    en = n * m / (n + m)
    return float(kstwo.sf(d, np.round(en)))


class KolmogorovSmirnov(DriftStatistic):
    """Two-sample KS test; drift when its p-value is below 0.05.

    SciPy's ``ks_2samp`` on the raw values when both samples were kept exactly; otherwise the CDF
    distance at the reference's cell edges (at most one cell's mass below the raw one) with SciPy's
    asymptotic ``kstwo`` p-value.
    """

    name = "ks"
    kinds = frozenset({NUMERIC})
    threshold = 0.05
    is_test = True

    def compute(self, cmp: NumericComparison) -> Measure:
        if cmp.exact_values is not None:
            from scipy.stats import ks_2samp

            res = ks_2samp(cmp.ref.values, cmp.exact_values)
            return Measure(float(res.statistic), float(res.pvalue))
        d = linf_distance(cmp)
        return Measure(d, ks_pvalue(d, cmp.n, cmp.m))
