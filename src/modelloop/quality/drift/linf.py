"""L-infinity distance, SageMaker Model Monitor's (and Deequ's) ``Simple`` and ``Robust``."""

from __future__ import annotations

import math

import numpy as np

from modelloop.quality.drift.base import DriftStatistic, Measure
from modelloop.quality.drift.comparison import Comparison

#: c(alpha) of SageMaker's robust L-infinity distance (alpha about 0.003).
LINF_ROBUST_C = 1.8


def linf_distance(cmp: Comparison) -> float:
    """max |CDF_ref - CDF_cur| of numbers (at the reference's cell edges), max |p - q| of
    categories."""
    if cmp.kind == "categorical":
        p, q = cmp.proportions()
        return float(np.abs(p - q).max())
    low = int(cmp.cur.counts[0])
    return float(max(np.abs(cmp.cdf_difference).max(), low / cmp.m))


def linf_robust(d: float, n: int, m: int, c: float = LINF_ROBUST_C) -> float:
    """SageMaker's robust L-infinity: the KS distance less its critical value at c(alpha)."""
    return max(0.0, d - c * math.sqrt((n + m) / (n * m)))


class Linf(DriftStatistic):
    """SageMaker's ``Simple`` comparison: the L-infinity distance; drift at 0.1 or more."""

    name = "linf"
    threshold = 0.1
    summary = True

    def compute(self, cmp: Comparison) -> Measure:
        return Measure(linf_distance(cmp))


class LinfRobust(DriftStatistic):
    """SageMaker's ``Robust`` comparison: max(0, linf - 1.8 sqrt((n+m)/(n m))); drift at 0.1."""

    name = "linf_robust"
    threshold = 0.1
    summary = True

    def compute(self, cmp: Comparison) -> Measure:
        return Measure(linf_robust(linf_distance(cmp), cmp.n, cmp.m))
