"""Chi-square test of homogeneity."""

from __future__ import annotations

import numpy as np

from modelloop.quality.drift.base import DriftStatistic, Measure
from modelloop.quality.drift.comparison import Comparison

#: Chi-square pools categories expected fewer times than this (Cochran's rule of thumb).
MIN_EXPECTED = 5


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


class ChiSquare(DriftStatistic):
    """Chi-square test of homogeneity (2 x k table) over the bins; drift when p < 0.05.

    Evidently uses a goodness-of-fit test against the reference proportions (and a z-test for two
    values); the two-sample test equals the z-test for two values and does not treat a small
    reference as exact.
    """

    name = "chisquare"
    threshold = 0.05
    is_test = True
    by_value = True

    def compute(self, cmp: Comparison) -> Measure:
        return Measure(*chisquare(*cmp.counts()))
