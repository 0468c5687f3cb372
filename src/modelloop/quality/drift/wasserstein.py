"""Wasserstein-1 distance over the reference's standard deviation (Evidently's normed one)."""

from __future__ import annotations

from modelloop.quality.drift.base import NUMERIC, DriftStatistic, Measure
from modelloop.quality.drift.comparison import NumericComparison


class Wasserstein(DriftStatistic):
    """W1(reference, current) / max(reference std, 0.001); drift at 0.1 or more.

    SciPy's ``wasserstein_distance`` on the raw values when both samples were kept exactly;
    otherwise exactly SciPy's value on the grid (cell midpoints, with current values outside the
    reference range kept through their count and sum), within about one cell width of the raw one.
    """

    name = "wasserstein"
    kinds = frozenset({NUMERIC})
    threshold = 0.1
    summary = True

    def compute(self, cmp: NumericComparison) -> Measure:
        ref, cur = cmp.ref, cmp.cur
        scale = max(ref.std, 0.001)
        if cmp.exact_values is not None:
            from scipy.stats import wasserstein_distance

            return Measure(float(wasserstein_distance(ref.values, cmp.exact_values)) / scale)
        w, m = ref.width, cmp.m
        low, high = int(cur.counts[0]), int(cur.counts[-1])
        mids0 = (cur.first + 0.5) * w
        mids_last = (cur.first + cur.n_cells - 0.5) * w
        wass = w * float(abs(cmp.cdf_difference[:-1]).sum())
        wass += (low * mids0 - cur.low_sum) / m + (cur.high_sum - high * mids_last) / m
        return Measure(wass / scale)
