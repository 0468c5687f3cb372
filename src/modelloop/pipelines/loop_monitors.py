"""A loop spec's ``monitors:`` with their ``alarm:`` sub-section, and what a monitor watches.

    monitors:
      - name: drift
        kind: data_drift               # watches the loop's dataset after each ingest
        alarm: {threshold: 0.3, evaluation_periods: 2, datapoints_to_alarm: 1}
      - name: quality
        kind: model_quality            # watches the endpoint's captured, labelled traffic
        schedule: "*/5 * * * *"
        alarm: {threshold: 0.7, comparison: "<", period: 300}   # quality.roc_auc < 0.7

An alarm watches one series the monitor writes (``metric``, dimensioned by the monitor's name);
without ``metric`` a kind's own one: ``drift_share`` (data_drift), ``violations``
(data_quality), ``quality.<evaluate.metric>`` (model_quality). ``modelloop loop apply`` creates
the monitor (named ``<loop>-<name>``, unless its name starts so already) and its alarm (the
monitor's name unless ``name`` says otherwise; a trigger's ``alarm:`` may give either). A monitor watches the loop's dataset or endpoint and compares with the champion's
training data (following each new champion) unless it names its own ``dataset``, ``endpoint``
or ``baseline`` (a pinned dataset version); ``after_ingest``, ``window`` and ``model`` are
:meth:`ws.monitoring.create_monitor`'s. Kept apart from :mod:`.loop_spec` so that file stays
short.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: Per monitor kind: (metric, comparison, threshold) of its alarm when the spec leaves them out.
ALARM_DEFAULTS = {
    "data_drift": ("drift_share", ">=", 0.5),
    "data_quality": ("violations", ">", 0.0),
    "model_quality": (None, "<", None),  # quality.<metric>; the threshold must be given
}
COMPARISONS = (">", ">=", "<", "<=", "GreaterThanThreshold", "GreaterThanOrEqualToThreshold",
               "LessThanThreshold", "LessThanOrEqualToThreshold")


class AlarmSection(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str | None = None  # default: <loop>-<monitor>
    metric: str | None = None  # default: the monitor kind's (ALARM_DEFAULTS)
    dimensions: dict[str, str] = Field(default_factory=dict, description="besides monitor=NAME")
    threshold: float | None = None
    comparison: Literal[COMPARISONS] | None = None
    statistic: Literal["average", "max", "min", "sum", "count"] = "average"
    period: int = Field(3600, ge=1, description="seconds per datapoint")
    evaluation_periods: int = Field(1, ge=1, description="N: the datapoints looked at")
    datapoints_to_alarm: int | None = Field(None, ge=1, description="M of N breach: ALARM")
    missing_data: Literal["missing", "ignore", "breaching", "notBreaching"] = "missing"
    actions: list[str] = Field(default_factory=list, description="webhook:URL, rollback:ENDPOINT")


class MonitorSection(BaseModel):
    """One of a loop spec's ``monitors:``."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str
    kind: Literal["data_quality", "data_drift", "model_quality"]
    schedule: str | None = None  # cron
    options: dict[str, Any] = Field(default_factory=dict)
    watch: Literal["data", "endpoint"] | None = None  # default: endpoint for model_quality
    alarm: AlarmSection | None = None
    # what loop apply fills in from the loop unless given
    dataset: str | None = None
    endpoint: str | None = None
    baseline: str | None = None  # a dataset version (loans@1); default: the champion's data
    after_ingest: bool | None = None
    window: str | None = None
    model: str | None = None


def watches(monitor) -> str:
    """``data`` (a dataset: the loop's unless ``dataset`` names one) or ``endpoint`` (the
    deploy section's unless ``endpoint`` names one)."""
    if monitor.watch:
        return monitor.watch
    if monitor.endpoint or monitor.dataset:
        return "endpoint" if monitor.endpoint else "data"
    return "endpoint" if monitor.kind == "model_quality" else "data"


def check_monitors(spec, source) -> list:
    """Problems of the monitors section that need the whole spec (its deploy, its names)."""
    problems = []
    seen: set[str] = set()
    for i, m in enumerate(spec.monitors):
        if m.name in seen:
            problems.append(source.error(("monitors", i, "name"), f"monitor {m.name!r} is "
                                         "declared twice"))
        seen.add(m.name)
        if m.dataset and m.endpoint:
            problems.append(source.error(("monitors", i), f"monitor {m.name!r} names a dataset "
                                         "and an endpoint", hint="a monitor watches one"))
        if watches(m) == "endpoint" and spec.deploy is None and not m.endpoint:
            problems.append(source.error(
                ("monitors", i), f"monitor {m.name!r} watches the endpoint, and the loop has "
                "no deploy section", hint="add deploy: {endpoint: NAME}, or watch: data"))
        if m.kind == "model_quality" and watches(m) != "endpoint":
            problems.append(source.error(("monitors", i, "watch"), "a model_quality monitor "
                                         "watches the endpoint (labels join served predictions)"))
        alarm = m.alarm
        if alarm is None:
            continue
        if alarm.threshold is None and ALARM_DEFAULTS[m.kind][2] is None:
            problems.append(source.error(("monitors", i, "alarm", "threshold"),
                                         f"a {m.kind} alarm needs a threshold",
                                         hint="e.g. threshold: 0.7 (alarm below it)"))
        n, k = alarm.evaluation_periods, alarm.datapoints_to_alarm
        if k is not None and k > n:
            problems.append(source.error(("monitors", i, "alarm", "datapoints_to_alarm"),
                                         f"{k} of {n} datapoints can never breach",
                                         hint="datapoints_to_alarm <= evaluation_periods"))
        for j, action in enumerate(alarm.actions):
            kind, _, target = action.partition(":")
            if kind not in ("webhook", "rollback") or not target:
                problems.append(source.error(("monitors", i, "alarm", "actions", j),
                                             f"unknown alarm action {action!r}",
                                             hint="webhook:https://… or rollback:ENDPOINT"))
    return problems
