"""A bias analysis of one table: facet groups, label and predictions in, Clarify's metrics out.

:func:`analyse` does the work on a DataFrame (the service reads the dataset version and runs the
model); :class:`BiasReport` holds the values and writes Clarify's analysis JSON
(``pre_training_bias_metrics`` / ``post_training_bias_metrics``, each ``{"label", "facets": {col:
[{"value_or_threshold", "metrics": [{"name", "description", "value"[, "error"]}]}]},
"label_value_or_threshold"}``), with infinities written as ``"Infinity"`` as Clarify writes them.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from modelloop.errors import BiasSpecError
from modelloop.explain import metrics as m
from modelloop.explain.groups import Selector, binary_label, column_of, facet_groups

STAGES = ("pre_training", "post_training")


@dataclass
class GroupResult:
    """The metrics of one sensitive group: name -> value, and name -> why it has none."""

    value_or_threshold: str
    n_group: int
    n_rest: int
    values: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


@dataclass
class BiasReport:
    dataset: str | None
    model: str | None
    facet: str
    label: str
    label_value_or_threshold: str
    group: str | None
    pre_training: list[GroupResult] = field(default_factory=list)
    post_training: list[GroupResult] = field(default_factory=list)
    rows: int = 0
    seconds: float = 0.0

    def value(self, metric: str, facet_value: str | None = None) -> float | None:
        """One metric's value (None when it could not be computed); ``facet_value`` picks the group
        of a one-vs-rest facet (default: the only one)."""
        name = m.canonical(metric)
        results = self.post_training if name in m.POST_TRAINING else self.pre_training
        for g in results:
            if facet_value is None or g.value_or_threshold == str(facet_value):
                if facet_value is None and len(results) > 1:
                    raise BiasSpecError(
                        f"facet {self.facet!r} has {len(results)} groups; say which", field="facet",
                        column=self.facet,
                        hint="values: " + ", ".join(r.value_or_threshold for r in results))
                return g.values.get(name)
        return None

    def to_clarify(self) -> dict:
        """Clarify's analysis JSON (``analysis.json``) for the stages computed."""
        out: dict = {"version": "1.0"}
        for stage in STAGES:
            results = getattr(self, stage)
            if not results:
                continue
            names = m.PRE_TRAINING if stage == "pre_training" else m.POST_TRAINING
            out[f"{stage}_bias_metrics"] = {
                "label": self.label,
                "facets": {self.facet: [_facet_json(g, names) for g in results]},
                "label_value_or_threshold": self.label_value_or_threshold,
            }
        return out

    def to_dict(self) -> dict:
        """The analysis JSON plus what was analysed (dataset, model, rows, seconds)."""
        return {"dataset": self.dataset, "model": self.model, "facet": self.facet,
                "label": self.label, "group": self.group, "rows": self.rows,
                "seconds": round(self.seconds, 4),
                "groups": [{"value_or_threshold": g.value_or_threshold, "n_group": g.n_group,
                            "n_rest": g.n_rest} for g in self.pre_training or self.post_training],
                "analysis": self.to_clarify()}  # fmt: skip


def jsonable(v: float | None):
    if v is None:
        return None
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return None if math.isnan(v) else float(v)


def _facet_json(g: GroupResult, names: dict[str, str]) -> dict:
    rows = []
    for name, description in names.items():
        if name in g.values:
            rows.append({"name": name, "description": description, "value": jsonable(g.values[name])})
        elif name in g.errors:
            rows.append({"name": name, "description": description, "value": None,
                         "error": g.errors[name]})  # fmt: skip
    return {"value_or_threshold": g.value_or_threshold, "metrics": rows}


def _methods(methods, stage: str) -> list[str]:
    names = m.PRE_TRAINING if stage == "pre_training" else m.POST_TRAINING
    if methods is None or methods == "all" or list(methods) == ["all"]:
        return list(names)
    chosen = []
    for x in methods:
        try:
            name = m.canonical(x)
        except KeyError as exc:
            raise BiasSpecError(str(exc.args[0]), field="metric") from None
        if name in names:
            chosen.append(name)
    return sorted(set(chosen))


def _group_codes(frame: pd.DataFrame, group: str | None) -> np.ndarray | None:
    if group is None:
        return None
    series = column_of(frame, group, field="group")
    codes, _ = pd.factorize(series, sort=True)
    if (codes < 0).any():
        raise BiasSpecError(f"group column {group!r} has missing values", field="group",
                            column=group)  # fmt: skip
    return codes


def _features(frame: pd.DataFrame, exclude: list[str], columns: list[str] | None):
    """FT's features: the given columns, else every column but the facet, label and prediction
    (as smclarify takes the frame without them); all must be numeric."""
    cols = list(columns) if columns is not None else [c for c in frame.columns if c not in exclude]
    for c in cols:
        column_of(frame, c, field="feature")
    bad = [c for c in cols if frame[c].dtype.kind not in "iufb"]
    if bad:
        return m.MetricUnavailable("FlipTest does not support non-numeric columns: "
                                   + ", ".join(map(str, bad)))  # fmt: skip
    return frame[cols].to_numpy(dtype=np.float64)


def analyse(frame: pd.DataFrame, facet: str | Selector, label: str | Selector, *,
            predicted: str | np.ndarray | pd.Series | None = None, group: str | None = None,
            methods=None, stages=None, ft_columns: list[str] | None = None,
            dataset: str | None = None, model: str | None = None) -> BiasReport:  # fmt: skip
    """Clarify's bias metrics of ``frame`` for ``facet`` and ``label`` (``"col=v1,v2"``,
    ``"col>t"``, ``"col"``, or a :class:`Selector`). Post-training metrics need ``predicted``: a
    column of ``frame`` or an array of predictions, binarised by the label's rule. ``group`` names
    the column CDDL and CDDPL condition on. ``stages`` defaults to both when there are
    predictions, else pre-training."""
    started = time.perf_counter()
    facet_sel = facet if isinstance(facet, Selector) else Selector.parse(facet, field="facet")
    label_sel = label if isinstance(label, Selector) else Selector.parse(label, field="label")
    groups = facet_groups(frame, facet_sel)
    label_series = column_of(frame, label_sel.column, field="label")
    pred_series, pred_column = None, None
    if predicted is not None:
        if isinstance(predicted, str):
            pred_column = predicted
            pred_series = column_of(frame, predicted, field="predicted")
        else:
            pred_series = pd.Series(np.asarray(predicted), name="predicted_label")
            if len(pred_series) != len(frame):
                raise BiasSpecError(f"{len(pred_series)} predictions for {len(frame)} rows",
                                    field="predicted")  # fmt: skip
    top = None
    if label_sel.threshold is not None and pred_series is not None:
        top = float(np.nanmax(np.concatenate([label_series.to_numpy(dtype=float),
                                              pred_series.to_numpy(dtype=float)])))  # fmt: skip
    outcome = binary_label(label_series, label_sel, top=top)
    if not outcome.positive.any():
        raise BiasSpecError(f"no row of label {label_sel.text!r} is positive", field="label",
                            column=label_sel.column)  # fmt: skip
    pred = None
    if pred_series is not None:
        rule = Selector(pred_column or "predicted_label", label_sel.values, label_sel.threshold)
        if not label_sel.values and label_sel.threshold is None:
            rule = Selector(rule.column)
        pred = binary_label(pred_series, rule, field="predicted", top=top).positive
    stages = stages or (STAGES if pred is not None else ("pre_training",))
    if "post_training" in stages and pred is None:
        raise BiasSpecError("post-training metrics need predictions", field="predicted",
                            hint="give a model (--model M@V) or a column of predictions")  # fmt: skip
    codes = _group_codes(frame, group)
    report = BiasReport(dataset, model, facet_sel.column, label_sel.column,
                        outcome.value_or_threshold, group, rows=len(frame))  # fmt: skip
    label_b = np.ascontiguousarray(outcome.positive, dtype=bool)
    pred_b = None if pred is None else np.ascontiguousarray(pred, dtype=bool)
    features = None
    for stage in stages:
        names = _methods(methods, stage)
        use_pred = pred_b if stage == "post_training" else None
        for g in groups:
            d = np.ascontiguousarray(g.mask, dtype=bool)
            cells = m.Cells.count(d, label_b, use_pred)
            per_group = None if codes is None else m.group_cells(codes, d, label_b, use_pred)
            result = GroupResult(g.value_or_threshold, cells.n(1), cells.n(0))
            for name in names:
                try:
                    if name == "FT":
                        if features is None:
                            exclude = [facet_sel.column, label_sel.column, pred_column]
                            features = _features(frame, exclude, ft_columns)
                        if isinstance(features, Exception):
                            raise features
                        value = m.flip_test(features, d, pred_b)
                    else:
                        value = m.COUNTED[name](cells, per_group)
                    result.values[name] = float(value)
                except m.MetricUnavailable as exc:
                    result.errors[name] = str(exc)
            getattr(report, stage).append(result)
    report.seconds = time.perf_counter() - started
    return report
