"""Multiple-testing corrections of the p-values of several columns."""

from __future__ import annotations

import numpy as np

CORRECTIONS = ("fdr_bh", "bonferroni", "holm", "none")


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
