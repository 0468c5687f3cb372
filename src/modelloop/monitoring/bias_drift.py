"""Bias drift: Clarify's post-training bias metrics on captured traffic joined with late labels.

An endpoint monitor whose config has ``bias`` computes, on each run's labelled rows, the metrics
it names for a facet (``sex=female``, ``age>40``, or a column: one vs rest) — the facet must be
one of the served model's input columns, since only inputs are captured — and writes each as a
metric series ``bias.<METRIC>`` with dimensions ``monitor`` and ``facet`` (``sex=female``), so an
alarm (``modelloop alarms create … --metric bias.DI --dim facet=sex=female --threshold 0.8
--comparison "<"``) raises on it like on any series. With ``baseline`` values (the metrics at
training time, e.g. from ``modelloop bias … --json``), a metric farther from fairness than its
baseline by more than ``tolerance`` is a violation, SageMaker's rule for bias drift
(``abs(current) > abs(baseline)``, fairness being 1 for DI and 0 for the differences).

Config: ``{"facet": …, "label": "approved=1" (the rule applied to the late labels and the
predictions), "group": column or None, "metrics": [names] (default DI, DPPL, AD, RD),
"baseline": {name: value}, "tolerance": 0.0}``.
"""

from __future__ import annotations

import math

from modelloop.errors import InvalidInput
from modelloop.explain import metrics as m
from modelloop.explain.bias import analyse
from modelloop.explain.groups import Selector

DEFAULT_METRICS = ("AD", "DI", "DPPL", "RD")
KEYS = ("facet", "label", "group", "metrics", "baseline", "tolerance")


def check_config(cfg: dict) -> dict:
    """The bias section of a monitor's config, validated (names canonical)."""
    if not isinstance(cfg, dict) or not cfg.get("facet") or not cfg.get("label"):
        raise InvalidInput("a bias monitor needs a facet and a label",
                           hint='e.g. config {"bias": {"facet": "sex=female", "label": "1"}}')  # fmt: skip
    unknown = [k for k in cfg if k not in KEYS]
    if unknown:
        raise InvalidInput(f"bias monitor config has unknown key {unknown[0]!r}",
                           hint=f"use {', '.join(KEYS)}")  # fmt: skip
    Selector.parse(cfg["facet"], field="facet")
    Selector.parse(_label_rule(cfg["label"]), field="label")
    try:
        names = [m.canonical(x) for x in cfg.get("metrics") or DEFAULT_METRICS]
        baseline = {m.canonical(k): float(v) for k, v in (cfg.get("baseline") or {}).items()}
    except KeyError as exc:
        raise InvalidInput(f"bias monitor: {exc.args[0]}") from None
    pre = [x for x in names if x not in m.POST_TRAINING]
    if pre:
        raise InvalidInput(f"bias monitor: {pre[0]} is a pre-training metric, not the model's",
                           hint="watch post-training metrics: DI, DPPL, AD, RD, …")  # fmt: skip
    return {**cfg, "metrics": names, "baseline": baseline, "tolerance": float(cfg.get("tolerance", 0.0))}


def _label_rule(label: str) -> str:
    """The label rule on the ``label`` column of the joined frame: ``approved=1`` and ``=1``
    both mean "the label equals 1"; ``>0.5`` a threshold."""
    text = str(label)
    for sep in ("=", ">"):
        if sep in text:
            return "label" + sep + text.split(sep, 1)[1]
    return "label=" + text


def bias_drift(labelled, cfg: dict, monitor: str, end, *, min_labels: int) -> tuple[dict, list]:
    """(report section, metric points) of one run; no points under ``min_labels`` labels."""
    cfg = check_config(cfg)
    section: dict = {"facet": cfg["facet"], "label": cfg["label"], "n_labelled": len(labelled),
                     "baseline": cfg["baseline"], "groups": {}, "violations": []}  # fmt: skip
    if len(labelled) < min_labels:
        section["enough_labels"] = False
        return section, []
    section["enough_labels"] = True
    report = analyse(labelled, cfg["facet"], _label_rule(cfg["label"]), predicted="prediction",
                     group=cfg.get("group"), methods=cfg["metrics"], stages=("post_training",))  # fmt: skip
    column = Selector.parse(cfg["facet"], field="facet").column
    points = []
    for g in report.post_training:
        facet = f"{column}={g.value_or_threshold}"
        section["groups"][facet] = {"n_group": g.n_group, "n_rest": g.n_rest,
                                    "values": g.values, "errors": g.errors}  # fmt: skip
        for name, value in g.values.items():
            if math.isfinite(value):
                points.append((f"bias.{name}", {"monitor": monitor, "facet": facet}, end, value))
            base = cfg["baseline"].get(name)
            if base is None:
                continue
            fair = 1.0 if name == "DI" else 0.0
            if abs(value - fair) > abs(base - fair) + cfg["tolerance"]:
                section["violations"].append(
                    {"metric": name, "facet": facet, "value": value, "baseline": base,
                     "description": f"{name} for {facet} is {value:.4g}, farther from {fair:g} "
                                    f"than the baseline's {base:.4g}"})  # fmt: skip
    return section, points
