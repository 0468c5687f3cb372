"""Bias conditions of the gate: a retrained model that became unfair is not promoted.

A loop's ``evaluate.bias`` names a facet and a label (as ``modelloop bias`` takes them) and
conditions on Clarify's post-training metrics of the candidate's predictions on the holdout rows:

- ``within: [lo, hi]`` — the candidate's value must lie in the range (``DI`` in [0.8, 1.25], the
  four-fifths rule);
- ``max_worsening: x`` — the candidate may be at most ``x`` farther from fairness than the
  champion on the same rows (fairness: 1 for DI, 0 for the differences), e.g. ``DPPL`` not worse
  by more than 0.05. Without a champion it does not apply.

A facet given by its column alone is checked for each of its values (one vs rest), unless the
condition names one (``facet_value``). Each failure is one line of the gate's reasons.
"""

from __future__ import annotations

import math

from modelloop.errors import InvalidInput
from modelloop.explain import metrics as m
from modelloop.explain.bias import analyse
from modelloop.explain.groups import Selector

CONDITION_KEYS = ("metric", "within", "max_worsening", "facet_value")


def fair_value(metric: str) -> float:
    return 1.0 if m.canonical(metric) == "DI" else 0.0


def check_bias_spec(spec: dict) -> dict:
    """Validate a gate's bias section (``facet``, ``label``, ``group``, ``conditions``)."""
    if not isinstance(spec, dict) or not spec.get("facet") or not spec.get("label"):
        raise InvalidInput("the bias gate needs a facet and a label",
                           hint="e.g. {facet: sex=female, label: approved=1, conditions: "
                                "[{metric: DI, within: [0.8, 1.25]}]}")  # fmt: skip
    Selector.parse(spec["facet"], field="facet")
    Selector.parse(spec["label"], field="label")
    conditions = []
    for i, cond in enumerate(spec.get("conditions") or []):
        where = f"bias condition {i + 1}"
        if not isinstance(cond, dict) or "metric" not in cond:
            raise InvalidInput(f"{where} names no metric", hint="e.g. {metric: DI, within: [0.8, 1.25]}")
        cond = {k: v for k, v in cond.items() if v is not None}
        unknown = [k for k in cond if k not in CONDITION_KEYS]
        if unknown:
            raise InvalidInput(f"{where} has unknown key {unknown[0]!r}",
                               hint=f"use {', '.join(CONDITION_KEYS)}")  # fmt: skip
        try:
            name = m.canonical(cond["metric"])
        except KeyError as exc:
            raise InvalidInput(f"{where}: {exc.args[0]}") from None
        if name not in m.POST_TRAINING:
            raise InvalidInput(f"{where}: {name} is a pre-training metric, the same for any model",
                               hint="gate on post-training metrics: DI, DPPL, AD, RD, …")  # fmt: skip
        if "within" not in cond and "max_worsening" not in cond:
            raise InvalidInput(f"{where} ({name}) sets no bound",
                               hint="give within: [lo, hi] or max_worsening: x")  # fmt: skip
        if "within" in cond:
            w = cond["within"]
            if (not isinstance(w, list | tuple) or len(w) != 2
                    or not all(isinstance(x, int | float) and math.isfinite(x) for x in w)
                    or w[0] > w[1]):  # fmt: skip
                raise InvalidInput(f"{where} ({name}): within must be [low, high], low <= high")
        if "max_worsening" in cond and not (isinstance(cond["max_worsening"], int | float)
                                            and cond["max_worsening"] >= 0):  # fmt: skip
            raise InvalidInput(f"{where} ({name}): max_worsening must be a number >= 0")
        conditions.append({**cond, "metric": name})
    if not conditions:
        raise InvalidInput("the bias gate has no conditions",
                           hint="e.g. conditions: [{metric: DI, within: [0.8, 1.25]}]")  # fmt: skip
    return {**spec, "conditions": conditions}


def _values(frame, spec: dict, predictions, metrics: list[str]) -> dict[str, dict[str, float]]:
    """group -> metric -> value (None when it cannot be computed)."""
    report = analyse(frame, spec["facet"], spec["label"], predicted=predictions,
                     group=spec.get("group"), methods=metrics, stages=("post_training",))  # fmt: skip
    return {g.value_or_threshold: g.values for g in report.post_training}


def bias_gate(frame, spec: dict, candidate, champion=None) -> tuple[list[str], list[dict]]:
    """(reasons, checks) of the bias conditions on ``frame`` (holdout rows with the label) for
    the candidate's predictions and, when there is one, the champion's."""
    spec = check_bias_spec(spec)
    names = sorted({c["metric"] for c in spec["conditions"]})
    new = _values(frame, spec, candidate, names)
    old = None if champion is None else _values(frame, spec, champion, names)
    reasons, checks = [], []
    for cond in spec["conditions"]:
        metric, fair = cond["metric"], fair_value(cond["metric"])
        groups = [str(cond["facet_value"])] if "facet_value" in cond else list(new)
        for group in groups:
            value = new.get(group, {}).get(metric)
            before = None if old is None else old.get(group, {}).get(metric)
            where = f"{metric} for {spec['facet'].split('=')[0].split('>')[0]}={group}"
            failures = []
            if value is None or math.isnan(value):
                failures.append(f"{where}: the candidate has no value")
            else:
                if "within" in cond:
                    lo, hi = cond["within"]
                    if not lo <= value <= hi:
                        failures.append(f"{where} is {value:.4g}, outside [{lo:g}, {hi:g}]")
                if "max_worsening" in cond and before is not None and math.isfinite(before):
                    worse = abs(value - fair) - abs(before - fair)
                    if worse > cond["max_worsening"]:
                        failures.append(f"{where} is {value:.4g}, {worse:.4g} farther from "
                                        f"{fair:g} than the champion's {before:.4g} (at most "
                                        f"{cond['max_worsening']:g})")  # fmt: skip
            checks.append({**cond, "metric": f"bias:{metric}", "facet": spec["facet"],
                           "group": group, "candidate": value, "baseline": before,
                           "passed": not failures})  # fmt: skip
            reasons += failures
    return reasons, checks
