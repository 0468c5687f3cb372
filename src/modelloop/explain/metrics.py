"""SageMaker Clarify's bias metrics on boolean arrays, with smclarify's names and definitions.

Every metric but the flip test is a function of a handful of counts: facet x label x predicted
label (8 cells, one ``bincount``) and, for the conditional ones, the same per group. smclarify
counts each cell again per metric by indexing a pandas Series (``len(feature[mask])``) and builds
its label distributions with a Python ``reduce_by_key``; here the counts are taken once, so a
million rows cost milliseconds. The edge cases follow smclarify exactly (``divide``: 0/0 is 0,
x/0 is infinity; two infinite rates give a difference of 0; the label distributions keep only
the outcomes present in both groups) because ``tests/explain/test_smclarify_equality.py`` holds
every value to smclarify's within 1e-9.

The flip test (FT) needs neighbours, not counts: it fits scikit-learn's ``KNeighborsClassifier``
(the one smclarify uses, with its settings) on the rest's features and predictions and predicts
the sensitive group's, on NumPy arrays instead of smclarify's per-row Python lists.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

INF = math.inf

#: Clarify's metric names, each with the description its analysis JSON carries (sorted as
#: smclarify's ``bias_report`` sorts them: by name).
PRE_TRAINING: dict[str, str] = {
    "CDDL": "Conditional Demographic Disparity in Labels (CDDL)",
    "CI": "Class Imbalance (CI)",
    "DPL": "Difference in Positive Proportions in Labels (DPL)",
    "JS": "Jensen-Shannon Divergence (JS)",
    "KL": "Kullback-Liebler Divergence (KL)",
    "KS": "Kolmogorov-Smirnov Distance (KS)",
    "LP": "L-p Norm (LP)",
    "TVD": "Total Variation Distance (TVD)",
}
POST_TRAINING: dict[str, str] = {
    "AD": "Accuracy Difference (AD)",
    "CDDPL": "Conditional Demographic Disparity in Predicted Labels (CDDPL)",
    "DAR": "Difference in Acceptance Rates (DAR)",
    "DCA": "Difference in Conditional Acceptance (DCA)",
    "DCR": "Difference in Conditional Rejection (DCR)",
    "DI": "Disparate Impact (DI)",
    "DPPL": "Difference in Positive Proportions in Predicted Labels (DPPL)",
    "DRR": "Difference in Rejection Rates (DRR)",
    "FT": "Flip Test (FT)",
    "GE": "Generalized Entropy (GE)",
    "RD": "Recall Difference (RD)",
    "SD": "Specificity Difference (SD)",
    "TE": "Treatment Equality (TE)",
}
#: Other spellings users meet in Clarify's documentation (DCAcc) and in prose (Lp).
ALIASES = {"DCACC": "DCA", "LP": "LP"}


class MetricUnavailable(ValueError):
    """A metric cannot be computed on this data (an empty cell, no group column, a non-numeric
    feature for FT); the report carries its message as Clarify's ``error`` does."""


def canonical(name: str) -> str:
    """A metric's Clarify name from any case or alias (``dcacc`` → ``DCA``)."""
    up = str(name).upper()
    up = ALIASES.get(up, up)
    if up not in PRE_TRAINING and up not in POST_TRAINING:
        known = ", ".join([*PRE_TRAINING, *POST_TRAINING])
        raise KeyError(f"unknown bias metric {name!r} (known: {known})")
    return up


def _divide(a: float, b: float) -> float:
    if b == 0:
        return 0.0 if a == 0 else (INF if a > 0 else -INF)
    return a / b


def _diff(x: float, y: float) -> float:
    """``x - y``, 0 when both are infinite (smclarify's rule for rates of two empty cells)."""
    return 0.0 if x == y == INF else x - y


@dataclass(frozen=True)
class Cells:
    """Counts of facet (d: sensitive, a: the rest) x label x prediction. ``c[f, y, p]``."""

    c: np.ndarray  # shape (2, 2, 2) int64

    @classmethod
    def count(cls, facet: np.ndarray, label: np.ndarray, pred: np.ndarray | None) -> Cells:
        code = facet.view(np.uint8) * 4 + label.view(np.uint8) * 2
        if pred is not None:
            code = code + pred.view(np.uint8)
        return cls(np.bincount(code, minlength=8).reshape(2, 2, 2))

    def n(self, f: int) -> int:
        return int(self.c[f].sum())


def _require_both(cells: Cells) -> tuple[int, int]:
    na, nd = cells.n(0), cells.n(1)
    if nd == 0:
        raise MetricUnavailable("Facet set is empty")
    if na == 0:
        raise MetricUnavailable("Negated facet set is empty")
    return na, nd


# -- pre-training -----------------------------------------------------------------------------


def _label_pdfs(cells: Cells) -> tuple[np.ndarray, np.ndarray]:
    """The label's distribution in the rest (Pa) and the group (Pd), over the outcomes present
    in both (smclarify's ``pdfs_aligned_nonzero``: not renormalised after dropping)."""
    by = cells.c.sum(axis=2)  # [f, y]
    na, nd = by[0].sum(), by[1].sum()
    keep = (by[0] > 0) & (by[1] > 0)
    if not keep.any() or na == 0 or nd == 0:
        raise MetricUnavailable("No instance of common facet found, dataset may be too small")
    return by[0][keep] / na, by[1][keep] / nd


def _dpl(cells: Cells, axis: int) -> float:
    na, nd = _require_both(cells)
    pos = cells.c.sum(axis=axis)[:, 1]  # label (axis=2 summed) or prediction (axis=1 summed)
    return pos[0] / na - pos[1] / nd


def ci(cells: Cells, _g=None) -> float:
    na, nd = _require_both(cells)
    return float(na - nd) / (na + nd)


def dpl(cells: Cells, _g=None) -> float:
    return _dpl(cells, 2)


def kl(cells: Cells, _g=None) -> float:
    pa, pd_ = _label_pdfs(cells)
    return float(np.sum(pa * np.log(pa / pd_)))


def js(cells: Cells, _g=None) -> float:
    pa, pd_ = _label_pdfs(cells)
    p = 0.5 * (pa + pd_)
    return float(0.5 * (np.sum(pa * np.log(pa / p)) + np.sum(pd_ * np.log(pd_ / p))))


def lp(cells: Cells, _g=None) -> float:
    pa, pd_ = _label_pdfs(cells)
    return float(np.linalg.norm(pa - pd_, 2))


def tvd(cells: Cells, _g=None) -> float:
    pa, pd_ = _label_pdfs(cells)
    return 0.5 * float(np.linalg.norm(pa - pd_, 1))


def ks(cells: Cells, _g=None) -> float:
    pa, pd_ = _label_pdfs(cells)
    return float(np.linalg.norm(pa - pd_, np.inf))


def _cdd(per_group: np.ndarray | None, axis: int) -> float:
    """Conditional demographic disparity from per-group cells ``[group, f, y, p]``: the
    group-size-weighted mean over groups of (the group's share of the rejected) − (its share of
    the accepted), by label (axis 3 summed) or prediction (axis 2 summed)."""
    if per_group is None or len(per_group) == 0:
        raise MetricUnavailable("Group variable is empty or not provided")
    by = per_group.sum(axis=axis)  # [group, f, outcome]
    if by[:, :, 1].sum() == 0:
        raise MetricUnavailable("No positive labels in set")
    if by[:, :, 0].sum() == 0:
        raise MetricUnavailable("No negative labels in set")
    counts = by.sum(axis=(1, 2)).astype(float)
    acc, rej = by[:, :, 1].sum(axis=1), by[:, :, 0].sum(axis=1)
    a = np.where(acc != 0, by[:, 1, 1] / np.where(acc == 0, 1, acc), 0.0)
    d = np.where(rej != 0, by[:, 1, 0] / np.where(rej == 0, 1, rej), 0.0)
    return _divide(float(np.sum(counts * (d - a))), float(np.sum(counts)))


def cddl(cells: Cells, per_group=None) -> float:
    return _cdd(per_group, 3)


# -- post-training ----------------------------------------------------------------------------


def _quadrants(cells: Cells, f: int) -> tuple[int, int, int, int]:
    """TP, TN, FP, FN of one side of the facet."""
    c = cells.c[f]
    return int(c[1, 1]), int(c[0, 0]), int(c[0, 1]), int(c[1, 0])


def dppl(cells: Cells, _g=None) -> float:
    return _dpl(cells, 1)


def di(cells: Cells, _g=None) -> float:
    na, nd = _require_both(cells)
    pred = cells.c.sum(axis=1)[:, 1]
    return _divide(pred[1] / nd, pred[0] / na)


def _dco(cells: Cells) -> tuple[float, float]:
    _require_both(cells)
    lab, pred = cells.c.sum(axis=2), cells.c.sum(axis=1)  # [f, y], [f, p]
    rr_a, rr_d = _divide(lab[0, 0], pred[0, 0]), _divide(lab[1, 0], pred[1, 0])
    ca, cd = _divide(lab[0, 1], pred[0, 1]), _divide(lab[1, 1], pred[1, 1])
    return _diff(ca, cd), _diff(rr_d, rr_a)


def dca(cells: Cells, _g=None) -> float:
    return _dco(cells)[0]


def dcr(cells: Cells, _g=None) -> float:
    return _dco(cells)[1]


def _rate_differences(cells: Cells, accepted, rejected) -> tuple[float, float]:
    """(rest − group) of a rate among the accepted, (group − rest) of one among the rejected;
    each rate a function of one side's (TP, TN, FP, FN)."""
    _require_both(cells)
    qa, qd = _quadrants(cells, 0), _quadrants(cells, 1)
    return _diff(accepted(*qa), accepted(*qd)), _diff(rejected(*qd), rejected(*qa))


def _dlr(cells: Cells) -> tuple[float, float]:
    """Acceptance rate TP / predicted positive, rejection rate TN / predicted negative."""
    return _rate_differences(cells, lambda tp, tn, fp, fn: _divide(tp, tp + fp),
                             lambda tp, tn, fp, fn: _divide(tn, tn + fn))  # fmt: skip


def dar(cells: Cells, _g=None) -> float:
    return _dlr(cells)[0]


def drr(cells: Cells, _g=None) -> float:
    return _dlr(cells)[1]


def _dla(cells: Cells) -> tuple[float, float]:
    """Recall TP / positive, specificity TN / negative."""
    return _rate_differences(cells, lambda tp, tn, fp, fn: _divide(tp, tp + fn),
                             lambda tp, tn, fp, fn: _divide(tn, tn + fp))  # fmt: skip


def rd(cells: Cells, _g=None) -> float:
    return _dla(cells)[0]


def sd(cells: Cells, _g=None) -> float:
    return _dla(cells)[1]


def ad(cells: Cells, _g=None) -> float:
    _require_both(cells)
    (tpa, tna, fpa, fna), (tpd, tnd, fpd, fnd) = _quadrants(cells, 0), _quadrants(cells, 1)
    acc_a = _divide(tpa + tna, tpa + tna + fpa + fna)
    acc_d = _divide(tpd + tnd, tpd + tnd + fpd + fnd)
    return _diff(acc_a, acc_d)


def te(cells: Cells, _g=None) -> float:
    _require_both(cells)
    (_, _, fpa, fna), (_, _, fpd, fnd) = _quadrants(cells, 0), _quadrants(cells, 1)
    return _diff(_divide(fnd, fpd), _divide(fna, fpa))


def cddpl(cells: Cells, per_group=None) -> float:
    return _cdd(per_group, 2)


def ge(cells: Cells, _g=None) -> float:
    """Generalized entropy (alpha 2) of the benefit ``prediction - label + 1`` over all rows."""
    c = cells.c.sum(axis=0)  # [y, p]
    n = int(c.sum())
    if n == 0:
        raise MetricUnavailable("dataset must be non-empty")
    n0, n2 = int(c[1, 0]), int(c[0, 1])  # benefit 0 (false negatives) and 2 (false positives)
    n1 = n - n0 - n2
    mean = (n1 + 2 * n2) / n
    if mean == 0:
        raise MetricUnavailable("All predicted labels are false negatives. There should be at "
                                "least one prediction that is not false negative.")  # fmt: skip
    return (n0 * (0.0 / mean) ** 2 + n1 * (1.0 / mean) ** 2 + n2 * (2.0 / mean) ** 2 - n) / (2 * n)


#: metric name -> function of (cells, per-group cells or None).
COUNTED: dict[str, Callable] = {
    "CDDL": cddl, "CI": ci, "DPL": dpl, "JS": js, "KL": kl, "KS": ks, "LP": lp, "TVD": tvd,
    "AD": ad, "CDDPL": cddpl, "DAR": dar, "DCA": dca, "DCR": dcr, "DI": di, "DPPL": dppl,
    "DRR": drr, "GE": ge, "RD": rd, "SD": sd, "TE": te,
}  # fmt: skip


def group_cells(groups: np.ndarray, facet: np.ndarray, label: np.ndarray,
                pred: np.ndarray | None) -> np.ndarray:  # fmt: skip
    """Cells per group: ``[group, f, y, p]`` for group codes 0..G-1 (one ``bincount``)."""
    code = facet.view(np.uint8) * 4 + label.view(np.uint8) * 2
    if pred is not None:
        code = code + pred.view(np.uint8)
    n_groups = int(groups.max()) + 1 if len(groups) else 0
    flat = np.bincount(groups.astype(np.int64) * 8 + code, minlength=8 * n_groups)
    return flat.reshape(n_groups, 2, 2, 2)


# -- flip test --------------------------------------------------------------------------------

#: smclarify's FT settings: 5 neighbours, 1 when the rest has at most 9 rows.
FT_NEIGHBORS, FT_MIN_NEIGHBORS, FT_SMALL = 5, 1, 9


def flip_test(features: np.ndarray, facet: np.ndarray, pred: np.ndarray) -> float:
    """FT: a k-NN fitted on the rest's features and predictions says what each member of the
    group would have got as one of the rest; (flips to negative − flips to positive) / group size,
    with smclarify's sign (its ``FlipSet_pos`` counts model-positive, neighbours-negative rows)."""
    from sklearn.neighbors import KNeighborsClassifier

    nd, na = int(facet.sum()), int((~facet).sum())
    if nd == 0:
        raise MetricUnavailable("Facet set is empty")
    if na == 0:
        raise MetricUnavailable("Negated Facet set is empty")
    k = FT_NEIGHBORS if na > FT_SMALL else FT_MIN_NEIGHBORS
    knn = KNeighborsClassifier(n_neighbors=k, weights="uniform", algorithm="auto", leaf_size=30,
                               p=2, metric="minkowski")  # fmt: skip
    knn.fit(features[~facet], pred[~facet])
    as_rest = knn.predict(features[facet]).astype(bool)
    model = pred[facet]
    return _divide(int(np.count_nonzero(model & ~as_rest)) - int(np.count_nonzero(~model & as_rest)),
                   nd)  # fmt: skip
