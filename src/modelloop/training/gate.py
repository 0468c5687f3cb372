"""The gate: does a candidate model beat the baseline (the champion) on the same holdout?

A gate is a list of conditions on metrics, each direction-aware (``greater`` or ``lower`` is
better, from the metric's name unless given):

- ``threshold`` — the candidate's value must be at least (or, for lower-is-better, at most) this
- ``min_absolute_change`` — the candidate must improve on the baseline by at least this much
- ``min_relative_change`` — … by at least this fraction of the baseline's value

Every condition is checked and every failure listed, so one run says everything that is wrong.
Without a baseline (no champion yet) only thresholds apply.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from modelloop.errors import InvalidInput, ModelloopError
from modelloop.training.evaluation import LOWER_IS_BETTER

CONDITION_KEYS = ("metric", "threshold", "min_absolute_change", "min_relative_change", "direction")


class GateFailed(ModelloopError):
    """The candidate did not pass the gate; the message lists every failed condition."""

    status = 422

    def __init__(self, result: GateResult):
        self.result = result
        super().__init__(
            "the candidate failed the gate: " + "; ".join(result.reasons),
            hint="keep the baseline, or change the candidate (data, algorithm, tuning) and retry",
        )


@dataclass
class GateResult:
    passed: bool
    reasons: list[str]  # one line per failed condition
    checks: list[dict] = field(default_factory=list)  # every condition with its values

    def raise_if_failed(self) -> GateResult:
        if not self.passed:
            raise GateFailed(self)
        return self

    def to_dict(self) -> dict:
        return {"passed": self.passed, "reasons": self.reasons, "checks": self.checks}


def check_conditions(conditions) -> list[dict]:
    """Validate the conditions (a dict of metric -> condition also works) and fill directions."""
    if isinstance(conditions, dict):
        conditions = [{"metric": m, **c} for m, c in conditions.items()]
    out = []
    for i, cond in enumerate(conditions or []):
        where = f"gate condition {i + 1}"
        if not isinstance(cond, dict) or "metric" not in cond:
            raise InvalidInput(
                f"{where} names no metric", hint="write e.g. {metric: roc_auc, threshold: 0.8}"
            )
        unknown = [k for k in cond if k not in CONDITION_KEYS]
        if unknown:
            raise InvalidInput(
                f"{where} ({cond['metric']}) has unknown key {unknown[0]!r}",
                hint=f"use {', '.join(CONDITION_KEYS)}",
            )
        default = "lower" if cond["metric"] in LOWER_IS_BETTER else "greater"
        d = cond.get("direction", default)
        if d not in ("greater", "lower"):
            raise InvalidInput(
                f"{where} ({cond['metric']}) has direction {d!r}", hint="use greater or lower"
            )
        bounds = [
            k for k in ("threshold", "min_absolute_change", "min_relative_change") if k in cond
        ]
        if not bounds:
            raise InvalidInput(
                f"{where} ({cond['metric']}) sets no bound",
                hint="give threshold, min_absolute_change or min_relative_change",
            )
        for k in bounds:
            if not isinstance(cond[k], int | float) or isinstance(cond[k], bool):
                raise InvalidInput(f"{where} ({cond['metric']}): {k} must be a number")
        out.append({**cond, "direction": d})
    return out


def gate(candidate: dict, baseline: dict | None, conditions) -> GateResult:
    """Check ``conditions`` on the candidate's (and baseline's) metrics; list every failure."""
    reasons: list[str] = []
    checks: list[dict] = []
    for cond in check_conditions(conditions):
        metric, greater = cond["metric"], cond["direction"] == "greater"
        new = candidate.get(metric)
        old = None if baseline is None else baseline.get(metric)
        check = {**cond, "candidate": new, "baseline": old}
        failures = []
        if new is None:
            failures.append(f"{metric}: the candidate has no value")
        else:
            if "threshold" in cond:
                t = cond["threshold"]
                if (new < t) if greater else (new > t):
                    word = "below" if greater else "above"
                    failures.append(f"{metric} {new:.6g} is {word} the threshold {t:g}")
            if baseline is not None:
                change = None if old is None else (new - old) if greater else (old - new)
                if old is None and ("min_absolute_change" in cond or "min_relative_change" in cond):
                    failures.append(f"{metric}: the baseline has no value to compare with")
                if change is not None and "min_absolute_change" in cond:
                    need = cond["min_absolute_change"]
                    if change < need:
                        failures.append(
                            f"{metric} improved by {change:+.6g} on the baseline {old:.6g}; "
                            f"it must improve by at least {need:g}"
                        )
                if change is not None and "min_relative_change" in cond:
                    need = cond["min_relative_change"]
                    relative = change / abs(old) if old else _sign(change) * float("inf")
                    if relative < need:
                        failures.append(
                            f"{metric} improved by {relative:+.2%} on the baseline {old:.6g}; "
                            f"it must improve by at least {need:.2%}"
                        )
        check["passed"] = not failures
        checks.append(check)
        reasons.extend(failures)
    return GateResult(passed=not reasons, reasons=reasons, checks=checks)


def compare(
    candidate, baseline, frame, target: str, conditions, task: str | None = None
) -> GateResult:
    """Evaluate both models on the same rows and gate the candidate against the baseline."""
    from modelloop.training.evaluation import evaluate

    new = evaluate(candidate, frame, target, task)
    old = None if baseline is None else evaluate(baseline, frame, target, new.task)
    return gate(new.metrics, None if old is None else old.metrics, conditions)


def _sign(x: float) -> float:
    return (x > 0) - (x < 0)
