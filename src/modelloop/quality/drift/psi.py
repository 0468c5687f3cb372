"""Population stability index."""

from __future__ import annotations

import numpy as np

from modelloop.quality.drift.base import DriftStatistic, Measure
from modelloop.quality.drift.comparison import Comparison

PSI_EPS = 1e-4


def psi(p: np.ndarray, q: np.ndarray, eps: float = PSI_EPS) -> float:
    """Population stability index sum((q - p) ln(q / p)) of two proportion vectors.

    Empty bins are floored at ``eps`` (the usual convention), which keeps the value finite.
    """
    p, q = np.clip(np.asarray(p, float), eps, None), np.clip(np.asarray(q, float), eps, None)
    return float(np.sum((q - p) * np.log(q / p)))


class PopulationStability(DriftStatistic):
    """PSI over categories, or over 10 reference-quantile bins of numbers; drift at 0.25."""

    name = "psi"
    threshold = 0.25
    summary = True
    by_value = True

    def compute(self, cmp: Comparison) -> Measure:
        return Measure(psi(*cmp.proportions()))
