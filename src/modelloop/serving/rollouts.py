"""Rollouts: move an endpoint's traffic to a new model version in steps, watching it bake.

A rollout's whole state lives in its row (the spec before, the new variant, the steps as
``[percent, bake seconds]``, the current step and when it started), so any process can drive it:
the server that hosts the endpoint, or the ``deploy`` command waiting for it. Drivers take a short
lease before moving a rollout, and every move is one transaction with the endpoint's new spec, so a
crash or a restart continues where the last driver stopped — or completes its rollback.

During each bake the new variant's error rate and p99 latency (summed over all server processes
from the statistics they write) are checked, and so are the named alarms the deploy asked for
(evaluated on each look, e.g. an alarm on the new variant's ``endpoint.5xx_rate`` series or on a
business metric); a breach, or one of those alarms in ALARM, rolls back, recording why.
"""

from __future__ import annotations

import copy
import time

from modelloop.errors import InvalidInput
from modelloop.serving.spec import variant_name_for

STRATEGIES = ("all-at-once", "blue-green", "canary", "linear")
DEFAULT_CHECKS = {"max_error_rate": 0.05, "max_p99_ms": None, "min_requests": 5}


def plan_steps(strategy: str, *, bake_seconds: float, canary_percent: float,
               step_percent: float) -> list[list[float]]:
    """The traffic steps ``[percent on the new version, bake seconds]`` of a strategy."""
    if strategy == "all-at-once":
        return [[100.0, 0.0]]
    if strategy == "blue-green":
        return [[100.0, bake_seconds]]
    if strategy == "canary":
        if not 0 < canary_percent < 100:
            raise InvalidInput("canary size must be between 0 and 100 percent",
                               hint="e.g. --canary-percent 10")
        return [[canary_percent, bake_seconds], [100.0, 0.0]]
    if strategy == "linear":
        if not 0 < step_percent < 100:
            raise InvalidInput("linear step must be between 0 and 100 percent",
                               hint="e.g. --step-percent 25")
        steps, pct = [], 0.0
        while pct < 100:
            pct = min(100.0, pct + step_percent)
            steps.append([pct, bake_seconds])
        return steps
    raise InvalidInput(f"unknown rollout strategy {strategy!r}", hint=f"use {', '.join(STRATEGIES)}")


def new_variant_name(spec: dict, model_ref: str) -> str:
    taken = {v["name"] for v in spec["variants"]}
    base = variant_name_for(model_ref)
    name, i = base, 2
    while name in taken:
        name, i = f"{base}-{i}"[:63], i + 1
    return name


def spec_at(before: dict, new_variant: dict, percent: float) -> dict:
    """The spec with ``percent`` of primary traffic on the new variant, the rest on the old
    primaries in their former proportions (old ones stay loaded at weight 0: blue kept warm)."""
    spec = copy.deepcopy(before)
    old = [v for v in spec["variants"] if v["role"] == "primary"]
    total = sum(v["weight"] for v in old) or 1.0
    for v in old:
        v["weight"] = round(v["weight"] / total * (100.0 - percent), 6)
    spec["variants"].append({**new_variant, "weight": float(percent)})
    return spec


def final_spec(before: dict, new_variant: dict) -> dict:
    """The new variant alone takes primary traffic; old primaries are removed, shadows stay."""
    spec = copy.deepcopy(before)
    spec["variants"] = [v for v in spec["variants"] if v["role"] != "primary"]
    spec["variants"].insert(0, {**new_variant, "weight": 100.0})
    return spec


def summarize(stats_rows: list[dict]) -> dict:
    """Sum the statistics rows of one variant over server processes."""
    from modelloop.serving.metrics import merge, percentile

    data = merge([r["data"] for r in stats_rows])
    n = data.get("invocations", 0)
    errors = data.get("errors_5xx", 0)
    return {"invocations": n, "errors": errors, "error_rate": (errors / n) if n else 0.0,
            "p99_ms": percentile(data.get("model_ms"), data.get("buckets"), 0.99)}


def breach(checks: dict, observed: dict) -> str | None:
    """Why the new variant fails its checks, or None."""
    if observed["invocations"] < checks.get("min_requests", 0):
        return None
    rate = checks.get("max_error_rate")
    if rate is not None and observed["error_rate"] > rate:
        return (f"error rate {observed['error_rate']:.1%} > {rate:.1%} "
                f"({observed['errors']} of {observed['invocations']} requests failed)")
    p99 = checks.get("max_p99_ms")
    if p99 is not None and observed["p99_ms"] is not None and observed["p99_ms"] > p99:
        return f"p99 model latency {observed['p99_ms']:.1f} ms > {p99:.1f} ms"
    return None


def alarm_breach(states: dict[str, tuple[str, str]]) -> str | None:
    """Why the rollout must stop given its named alarms' (state, reason), or None."""
    for name, (state, why) in states.items():
        if state == "ALARM":
            return f"alarm {name} is in ALARM ({why})"
    return None


def drive(store, rollout: dict, *, owner: str, now: float | None = None,
          alarm_states=None) -> dict | None:
    """Move one running rollout forward if its bake is over, or roll it back on a breach.

    ``alarm_states(names)`` gives the named alarms' current (state, reason). Returns the
    rollout's new row when something changed, else None.
    """
    from datetime import UTC, datetime, timedelta

    now = time.time() if now is None else now
    if not store.claim_rollout(rollout["id"], owner,
                               datetime.now(UTC) + timedelta(seconds=10)):
        return None
    state = rollout["state"]
    new = state["new_variant"]
    observed = summarize([r for r in store.read_endpoint_stats(rollout["endpoint"])
                          if r["variant"] == new["name"]])
    state = {**state, "observed": observed}
    reason = breach(state["checks"], observed)
    names = state["checks"].get("alarms") or []
    if not reason and names and alarm_states is not None:
        reason = alarm_breach(alarm_states(names))
    if reason:
        store.advance_rollout(rollout["id"], state=state, status="rolled_back",
                              reason=f"automatic rollback: {reason}", spec=state["before"],
                              endpoint_status="in_service", actor=owner)
        return store.get_rollout(rollout["id"])
    step = state["step"]
    steps = state["steps"]
    if now - state["step_started"] < steps[step][1]:
        return None
    if step + 1 < len(steps):
        state.update(step=step + 1, step_started=now)
        store.advance_rollout(rollout["id"], state=state,
                              spec=spec_at(state["before"], new, steps[step + 1][0]), actor=owner)
    else:
        store.advance_rollout(rollout["id"], state=state, status="completed",
                              spec=final_spec(state["before"], new),
                              endpoint_status="in_service", actor=owner)
    return store.get_rollout(rollout["id"])
