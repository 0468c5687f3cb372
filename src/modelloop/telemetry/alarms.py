"""Alarms on metric series, with CloudWatch's semantics.

An alarm watches one series (metric name + exact dimensions). Every ``period`` seconds of the
series make one datapoint (the ``statistic`` of the points in it; none = missing). At each
evaluation the last ``evaluation_periods`` (N) datapoints are read, the one containing the
evaluation time included, and:

* ALARM when at least ``datapoints_to_alarm`` (M) of them breach the threshold;
* OK when fewer breach;
* missing datapoints are treated as CloudWatch's ``treat_missing_data`` says: ``missing`` (the
  default: ignored; all N missing -> INSUFFICIENT_DATA), ``ignore`` (ignored; all missing -> the
  state stays), ``breaching`` (count as breaching), ``notBreaching`` (count as fine).

Entering ALARM appends exactly one ``alarm.triggered`` event to the workspace event log (for
triggers to start a retraining loop) and runs the alarm's actions once: ``webhook:URL`` (HTTP POST
of the event, retried) and ``rollback:ENDPOINT`` (the endpoints' rollback, which the workspace
passes in). The state change, its history row and the event are one conditional transaction, so
two evaluators racing cannot both enter ALARM. Every state change and action outcome is kept in the alarm's history.
"""

from __future__ import annotations

import math
import operator
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from modelloop.common.status import AlarmState
from modelloop.data.refs import check_name
from modelloop.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from modelloop.store.interfaces import AlarmStore
    from modelloop.telemetry.series import MetricSeries

OK, ALARM, INSUFFICIENT = AlarmState.OK, AlarmState.ALARM, AlarmState.INSUFFICIENT_DATA
COMPARISONS: dict[str, tuple[str, Callable[[float, float], bool]]] = {
    "GreaterThanThreshold": (">", operator.gt),
    "GreaterThanOrEqualToThreshold": (">=", operator.ge),
    "LessThanThreshold": ("<", operator.lt),
    "LessThanOrEqualToThreshold": ("<=", operator.le),
}
_SYMBOLS = {sym: name for name, (sym, _) in COMPARISONS.items()}
STATISTICS = ("average", "max", "min", "sum", "count")
MISSING = ("missing", "ignore", "breaching", "notBreaching")
WEBHOOK_ATTEMPTS = 4


def comparison_name(text: str) -> str:
    """CloudWatch's name for a comparison given as a name or a symbol (``>``, ``>=``, …)."""
    name = _SYMBOLS.get(text, text)
    if name not in COMPARISONS:
        raise InvalidInput(
            f"unknown comparison {text!r}",
            hint=f"use one of {', '.join(_SYMBOLS)} or {', '.join(COMPARISONS)}",
        )
    return name


def check_actions(actions: list[str]) -> list[str]:
    for a in actions:
        kind, _, target = a.partition(":")
        if kind not in ("webhook", "rollback") or not target:
            raise InvalidInput(
                f"unknown alarm action {a!r}",
                hint="use webhook:http://host/path or rollback:ENDPOINT "
                "(an alarm.triggered event is always appended)",
            )
        if kind == "webhook" and not target.startswith(("http://", "https://")):
            raise InvalidInput(f"webhook action {a!r} needs an http(s) URL")
    return list(actions)


def datapoints(points: list[dict], statistic: str, period: int, n: int, at: datetime) -> list:
    """The last ``n`` datapoints (oldest first; None = missing) of a series at time ``at``."""
    end = (math.floor(at.timestamp() / period) + 1) * period
    start = end - n * period
    buckets: list[list[float]] = [[] for _ in range(n)]
    for p in points:
        t = p["time"].timestamp()
        if start <= t < end:
            buckets[int((t - start) // period)].append(p["value"])
    agg = {
        "average": lambda v: sum(v) / len(v),
        "max": max,
        "min": min,
        "sum": sum,
        "count": len,
    }[statistic]
    return [agg(b) if b else None for b in buckets]


def decide(
    values: list, comparison: str, threshold: float, m: int, missing: str, current: str
) -> tuple[str, str]:
    """The new state and the reason, from datapoints (None = missing)."""
    sym, breaches = COMPARISONS[comparison]
    present = [v for v in values if v is not None]
    n_missing = len(values) - len(present)
    bad = sum(1 for v in present if breaches(v, threshold))
    if missing == "breaching":
        bad += n_missing
    if not present and missing in ("missing", "ignore"):
        if missing == "ignore":
            return current, "no datapoints; state kept (treat missing data: ignore)"
        return INSUFFICIENT, f"no datapoints in the last {len(values)} periods"
    shown = ", ".join("-" if v is None else f"{v:.4g}" for v in values)
    if bad >= m:
        return ALARM, f"{bad} of {len(values)} datapoints {sym} {threshold:g} [{shown}]"
    return OK, f"{bad} of {len(values)} datapoints {sym} {threshold:g} (needs {m}) [{shown}]"


class Alarms:
    """Create, list, evaluate alarms on the points of ``series``. ``rollback(endpoint, reason)``
    runs a ``rollback:ENDPOINT`` action (the workspace passes the endpoints' rollback); without it
    that action fails, and says so."""

    def __init__(self, store: AlarmStore, series: MetricSeries,
                 rollback: Callable[[str, str], object] | None = None):
        self.store = store
        self.series = series
        self._rollback_to = rollback

    def create(
        self,
        name: str,
        metric: str,
        *,
        threshold: float,
        comparison: str = ">",
        dimensions: dict | None = None,
        statistic: str = "average",
        period: int = 3600,
        evaluation_periods: int = 1,
        datapoints_to_alarm: int | None = None,
        missing_data: str = "missing",
        actions: list[str] = (),
    ) -> dict:
        check_name(name, "alarm")
        m = evaluation_periods if datapoints_to_alarm is None else datapoints_to_alarm
        if statistic not in STATISTICS:
            raise InvalidInput(
                f"unknown statistic {statistic!r}", hint=f"use one of {', '.join(STATISTICS)}"
            )
        if missing_data not in MISSING:
            raise InvalidInput(
                f"unknown missing-data treatment {missing_data!r}",
                hint=f"use one of {', '.join(MISSING)}",
            )
        if period < 1 or evaluation_periods < 1 or not 1 <= m <= evaluation_periods:
            raise InvalidInput(
                f"invalid alarm window: period {period}, {m} out of {evaluation_periods}",
                hint="period >= 1 s and 1 <= datapoints-to-alarm (M) <= evaluation periods (N)",
            )
        if not math.isfinite(float(threshold)):
            raise InvalidInput(f"threshold {threshold!r} is not a finite number")
        self.store.add_alarm(
            name=name,
            metric=metric,
            dimensions=dimensions or {},
            statistic=statistic,
            comparison=comparison_name(comparison),
            threshold=float(threshold),
            period=int(period),
            evaluation_periods=int(evaluation_periods),
            datapoints_to_alarm=int(m),
            missing_data=missing_data,
            actions=check_actions(list(actions)),
            state=INSUFFICIENT,
            state_reason="created; not evaluated yet",
        )
        return self.get(name)

    def get(self, name: str) -> dict:
        alarm = self.store.get_alarm(name)
        if alarm is None:
            known = [a["name"] for a in self.store.list_alarms()]
            raise NotFound(
                f"no alarm named {name!r}",
                hint=f"known alarms: {', '.join(known)}" if known else "create one with "
                "'modelloop alarms create NAME --metric METRIC --threshold X'",
            )
        return alarm

    def list(self) -> list[dict]:
        return self.store.list_alarms()

    def delete(self, name: str) -> None:
        self.get(name)
        self.store.delete_alarm(name)

    def history(self, name: str, limit: int = 100) -> list[dict]:
        self.get(name)
        return self.store.alarm_history(name, limit)

    # -- evaluating ---------------------------------------------------------------------------
    def evaluate(self, name: str | None = None, *, at: datetime | None = None) -> list[dict]:
        """Evaluate one alarm or all; returns what each did (state, changed, actions' outcomes)."""
        at = at or datetime.now(UTC)
        alarms = [self.get(name)] if name else self.list()
        return [self._evaluate(a, at) for a in alarms]

    def _evaluate(self, alarm: dict, at: datetime) -> dict:
        n, period = alarm["evaluation_periods"], alarm["period"]
        since = datetime.fromtimestamp(
            (math.floor(at.timestamp() / period) + 1 - n) * period, UTC
        )
        points = self.series.points(
            alarm["metric"], alarm["dimensions"], since=since, until=at + timedelta(seconds=period)
        )
        values = datapoints(points, alarm["statistic"], period, n, at)
        state, reason = decide(
            values,
            alarm["comparison"],
            alarm["threshold"],
            alarm["datapoints_to_alarm"],
            alarm["missing_data"],
            alarm["state"],
        )
        out = {"alarm": alarm["name"], "state": state, "reason": reason, "changed": False,
               "datapoints": values, "actions": []}  # fmt: skip
        if state == alarm["state"]:
            return out
        event = None
        if state == ALARM:
            payload = {
                "alarm": alarm["name"],
                "metric": alarm["metric"],
                "dimensions": alarm["dimensions"],
                "reason": reason,
                "datapoints": values,
                "actions": alarm["actions"],
            }
            event = ("alarm.triggered", alarm["name"], payload)
        event_id = self.store.transition_alarm(
            alarm["name"], alarm["state"], state, reason, {"datapoints": values}, event
        )
        if event_id is None:  # another evaluator changed it first; it runs the actions
            return out
        out["changed"] = True
        if state == ALARM:
            out["event_id"] = event_id
            out["actions"] = [self._act(alarm, a, {**event[2], "event_id": event_id})
                              for a in alarm["actions"]]  # fmt: skip
        return out

    def _act(self, alarm: dict, action: str, payload: dict) -> dict:
        kind, _, target = action.partition(":")
        try:
            if kind == "webhook":
                detail = post_webhook(target, payload)
            else:
                detail = self._rollback(target, f"alarm {alarm['name']}: {payload['reason']}")
            outcome = {"action": action, "ok": True, "detail": detail}
        except Exception as exc:  # an action failing must not stop the others; it is recorded
            outcome = {"action": action, "ok": False, "detail": f"{type(exc).__name__}: {exc}"}
        self.store.add_alarm_history(
            alarm["name"], "action", f"{action}: {'ok' if outcome['ok'] else 'failed'}", outcome
        )
        return outcome

    def _rollback(self, endpoint: str, reason: str) -> str:
        if self._rollback_to is None:
            raise InvalidInput(
                "endpoint rollback is not available in this installation (no ws.endpoints)",
                hint="use a webhook action, or install a modelloop with serving",
            )
        result = self._rollback_to(endpoint, reason)
        return f"rolled back endpoint {endpoint!r}: {result!r}"[:500]


def post_webhook(url: str, payload: dict, *, attempts: int = WEBHOOK_ATTEMPTS) -> str:
    """POST the JSON payload; retry connection errors, 429 and 5xx with exponential backoff.

    Hand-written loop: httpx retries only connection setup, and a retry library for four lines
    is not worth a dependency.
    """
    import httpx

    last = ""
    for attempt in range(attempts):
        try:
            r = httpx.post(url, json=payload, timeout=10.0)
            if r.status_code < 400:
                return f"HTTP {r.status_code} after {attempt + 1} attempt(s)"
            last = f"HTTP {r.status_code}"
            if r.status_code != 429 and r.status_code < 500:
                break  # the receiver refuses this request; retrying will not help
        except httpx.HTTPError as exc:
            last = f"{type(exc).__name__}: {exc}"
        if attempt + 1 < attempts:
            time.sleep(0.2 * 2**attempt)
    raise RuntimeError(f"webhook {url} failed: {last}")
