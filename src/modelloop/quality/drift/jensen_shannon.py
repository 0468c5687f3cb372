"""Jensen-Shannon distance."""

from __future__ import annotations

import numpy as np

from modelloop.quality.drift.base import DriftStatistic, Measure
from modelloop.quality.drift.comparison import Comparison


def jensenshannon(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon distance (natural log), exactly scipy.spatial.distance.jensenshannon."""
    from scipy.spatial.distance import jensenshannon as js

    return float(js(np.asarray(p, float), np.asarray(q, float)))


class JensenShannon(DriftStatistic):
    """Jensen-Shannon distance (natural log; SciPy's definition); drift at 0.1 or more."""

    name = "jensenshannon"
    threshold = 0.1
    summary = True
    by_value = True

    def compute(self, cmp: Comparison) -> Measure:
        return Measure(jensenshannon(*cmp.proportions()))
