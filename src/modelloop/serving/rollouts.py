"""Rollouts: move an endpoint's traffic to a new model version in steps, watching it bake.

A rollout's whole state lives in its row (the spec before, the new variant, the steps as
``[percent, bake seconds]``, the current step and when it started), so any process can drive it:
the server that hosts the endpoint, or the ``deploy`` command waiting for it. Drivers take a short
lease before moving a rollout, and every move is one transaction with the endpoint's new spec, so a
crash or a restart continues where the last driver stopped — or completes its rollback.

During each bake the new variant's error rate and p99 latency (summed over all server processes
from the statistics they write, counted from the rollout's start so that an earlier deployment of
the same variant name adds nothing) are checked, and so are the named alarms the deploy asked for
(evaluated on each look, e.g. an alarm on the new variant's ``endpoint.5xx_rate`` series or on a
business metric); a breach, or one of those alarms in ALARM, rolls back, recording why.
"""

from __future__ import annotations

import copy
import time

from modelloop.common.status import EndpointStatus, RolloutStatus
from modelloop.errors import InvalidInput
from modelloop.serving.spec import STRATEGIES, variant_name_for

__all__ = ["STRATEGIES", "drive", "plan_steps"]
DEFAULT_CHECKS = {"max_error_rate": 0.05, "max_p99_ms": None, "min_requests": 5,
                  "on_low_traffic": "wait", "max_wait": 600.0}


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


def totals(stats_rows: list[dict]) -> dict:
    """The cumulative counters of one variant, summed over server processes."""
    from modelloop.telemetry.metrics import merge

    data = merge([r["data"] for r in stats_rows])
    return {"invocations": data.get("invocations", 0), "errors": data.get("errors_5xx", 0),
            "model_ms": data.get("model_ms") or []}


def since(now: dict, base: dict | None) -> dict:
    """What a variant served between two :func:`totals`: requests, failures, error rate and p99
    model latency. With no request both rates are None (unknown), never 0 (healthy)."""
    from modelloop.telemetry.metrics import percentile

    base = base or {}
    n = now["invocations"] - base.get("invocations", 0)
    errors = now["errors"] - base.get("errors", 0)
    before = base.get("model_ms") or [0] * len(now["model_ms"])
    hist = [a - b for a, b in zip(now["model_ms"], before, strict=False)]
    return {"invocations": n, "errors": errors, "error_rate": errors / n if n > 0 else None,
            "p99_ms": percentile(hist, None, 0.99) if n > 0 else None}


def summarize(stats_rows: list[dict], base: dict | None = None) -> dict:
    """Requests, failures, error rate and p99 of one variant (since ``base``, a totals dict)."""
    return since(totals(stats_rows), base)


def breach(checks: dict, observed: dict) -> str | None:
    """Why the new variant fails its checks, or None (also while too few requests came to judge:
    a step's end decides what too little traffic means, see :func:`low_traffic`)."""
    n = observed["invocations"]
    if n <= 0 or n < checks.get("min_requests", 0):
        return None
    rate = checks.get("max_error_rate")
    if rate is not None and observed["error_rate"] is not None and observed["error_rate"] > rate:
        return (f"error rate {observed['error_rate']:.1%} > {rate:.1%} "
                f"({observed['errors']} of {n} requests failed)")
    p99 = checks.get("max_p99_ms")
    if p99 is not None and observed["p99_ms"] is not None and observed["p99_ms"] > p99:
        return f"p99 model latency {observed['p99_ms']:.1f} ms > {p99:.1f} ms"
    return None


def low_traffic(checks: dict, step: list[float], index: int, seen: int) -> str | None:
    """Why a finished bake cannot be judged (fewer requests than ``min_requests``), or None.
    A step without a bake is not watched, so it needs no traffic."""
    need = checks.get("min_requests", 0)
    if step[1] <= 0 or seen >= need:
        return None
    return (f"step {index + 1} ({step[0]:g}% of traffic, {step[1]:g} s bake) saw {seen} of the "
            f"{need} requests needed to judge it")


def alarm_breach(states: dict[str, tuple[str, str]]) -> str | None:
    """Why the rollout must stop given its named alarms' (state, reason), or None."""
    for name, (state, why) in states.items():
        if state == "ALARM":
            return f"alarm {name} is in ALARM ({why})"
    return None


def drive(store, rollout: dict, *, owner: str, now: float | None = None,
          alarm_states=None) -> dict | None:
    """Move one running rollout forward if its bake is over, or roll it back on a breach.

    A bake that ends with fewer requests than ``min_requests`` never counts as healthy: by the
    check ``on_low_traffic`` the step waits up to ``max_wait`` more seconds (``wait``, then rolls
    back), rolls back at once (``fail``) or moves on with the step recorded as unjudged
    (``proceed``). ``alarm_states(names)`` gives the named alarms' current (state, reason).
    Returns the rollout's new row when something changed, else None.
    """
    from datetime import UTC, datetime, timedelta

    now = time.time() if now is None else now
    if not store.claim_rollout(rollout["id"], owner,
                               datetime.now(UTC) + timedelta(seconds=10)):
        return None
    state = rollout["state"]
    new = state["new_variant"]
    current = totals([r for r in store.read_endpoint_stats(rollout["endpoint"])
                      if r["variant"] == new["name"]])
    observed = since(current, state.get("baseline"))
    in_step = since(current, state.get("step_base") or state.get("baseline"))
    state = {**state, "observed": observed, "step_observed": in_step}
    checks = state["checks"]
    reason = breach(checks, observed)
    names = checks.get("alarms") or []
    if not reason and names and alarm_states is not None:
        reason = alarm_breach(alarm_states(names))
    step = state["step"]
    steps = state["steps"]
    elapsed = now - state["step_started"]
    if not reason and elapsed >= steps[step][1]:
        short = low_traffic(checks, steps[step], step, in_step["invocations"])
        policy = checks.get("on_low_traffic", "wait")
        max_wait = float(checks.get("max_wait", 600.0))
        if short and policy == "wait" and elapsed < steps[step][1] + max_wait:
            if state.get("waiting") != step:  # say so once, in the row
                state["waiting"] = step
                store.advance_rollout(rollout["id"], state=state, actor=owner)
                return store.get_rollout(rollout["id"])
            return None
        if short and policy != "proceed":
            reason = "too little traffic: " + short + (
                f" (waited {max_wait:g} s more)" if policy == "wait" else "")
        elif short:
            state["unjudged"] = [*state.get("unjudged", []), short]
    if reason:
        store.advance_rollout(rollout["id"], state=state, status=RolloutStatus.ROLLED_BACK,
                              reason=f"automatic rollback: {reason}", spec=state["before"],
                              endpoint_status=EndpointStatus.IN_SERVICE, actor=owner)
        return store.get_rollout(rollout["id"])
    if elapsed < steps[step][1]:
        return None
    if step + 1 < len(steps):
        state.update(step=step + 1, step_started=now, step_base=current)
        store.advance_rollout(rollout["id"], state=state,
                              spec=spec_at(state["before"], new, steps[step + 1][0]), actor=owner)
    else:
        unjudged = state.get("unjudged")
        store.advance_rollout(rollout["id"], state=state, status=RolloutStatus.COMPLETED,
                              reason=("completed unjudged (on_low_traffic: proceed): "
                                      + "; ".join(unjudged)) if unjudged else None,
                              spec=final_spec(state["before"], new),
                              endpoint_status=EndpointStatus.IN_SERVICE, actor=owner)
    return store.get_rollout(rollout["id"])
