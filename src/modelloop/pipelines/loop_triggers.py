"""The shape of a trigger: its cause (``on:``) and its action (``do:``), as a loop spec's
``triggers:`` section and ``ws.triggers.create`` take them.

The loop spec lives on this floor, so the shapes do too; ``modelloop.automation`` (one floor up)
checks them against the workspace and runs them. A loop spec's trigger is flat (cause, action and
policy keys side by side) and takes its defaults from the loop: ``do: run_loop`` of this loop, the
loop's dataset, model and endpoint::

    triggers:
      - {on: cron, schedule: "0 6 * * *", timezone: Europe/Paris, missed: catch-up-once}
      - {on: new_data, min_new_rows: 1000}
      - {on: watch, location: incoming/, pattern: "*.csv", settle_seconds: 2}
      - {on: watch, location: landing/, do: ingest}   # only ingest: others react to the version
      - {on: alarm, alarm: loans-drift, concurrency: skip}
      - {on: approval, do: deploy, strategy: canary}
      - {on: manual}
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

CAUSES = ("cron", "new_data", "watch", "alarm", "approval", "manual")
ACTIONS = ("run_loop", "run_pipeline", "deploy", "rollback", "transform", "webhook", "ingest")
CONCURRENCY = ("skip", "queue", "cancel-previous")
MISSED = ("skip", "catch-up-once")
STRATEGIES = ("all-at-once", "blue-green", "canary", "linear")


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


# -- causes -----------------------------------------------------------------------------------------
class CronCause(_Shape):
    on: Literal["cron"]
    schedule: str = Field(description="five cron fields: minute hour day month weekday")
    timezone: str = Field("UTC", description="an IANA time zone the schedule is read in")
    grace_seconds: float = Field(
        120.0, gt=0, description="a slot found later than this after its time counts as missed"
    )


class NewDataCause(_Shape):
    on: Literal["new_data"]
    dataset: str
    min_new_rows: int = Field(1, ge=1, description="fire once this many rows arrived since the "
                              "last firing (or since the trigger was made)")


class WatchCause(_Shape):
    on: Literal["watch"]
    location: str = Field(description="a local folder or an s3:// prefix")
    dataset: str = Field(description="the dataset each new file is ingested into")
    pattern: str = "*"
    settle_seconds: float = Field(
        2.0, ge=0, description="a file is ingested once its size and mtime held this long"
    )


class AlarmCause(_Shape):
    on: Literal["alarm"]
    alarm: str


class ApprovalCause(_Shape):
    on: Literal["approval"]
    model: str
    alias: str | None = Field(None, description="fire when this alias moves; without it, when "
                              "a version is approved")


class ManualCause(_Shape):
    on: Literal["manual"]


Cause = Annotated[
    CronCause | NewDataCause | WatchCause | AlarmCause | ApprovalCause | ManualCause,
    Field(discriminator="on"),
]


# -- actions ----------------------------------------------------------------------------------------
class RunLoop(_Shape):
    do: Literal["run_loop"]
    loop: str
    spec: str | None = Field(None, description="the loop.yaml, for a loop that was not applied")


class RunPipeline(_Shape):
    do: Literal["run_pipeline"]
    pipeline: str = Field(description="file.py:function or module:function of a @pipeline")
    params: dict[str, Any] = Field(default_factory=dict)


class Deploy(_Shape):
    do: Literal["deploy"]
    endpoint: str
    model: str | None = Field(None, description="model ref; default: the version of the cause")
    strategy: Literal[STRATEGIES] = "all-at-once"
    options: dict[str, Any] = Field(default_factory=dict)


class Rollback(_Shape):
    do: Literal["rollback"]
    endpoint: str


class Transform(_Shape):
    do: Literal["transform"]
    model: str
    input: str | None = Field(None, description="default: the dataset version of the cause")
    output: str
    options: dict[str, Any] = Field(default_factory=dict)


class Webhook(_Shape):
    do: Literal["webhook"]
    url: str

    @model_validator(mode="after")
    def _http(self):
        if not self.url.startswith(("http://", "https://")):
            raise ValueError("a webhook needs an http(s) URL")
        return self


class Ingest(_Shape):
    """Only the watched file's ingest (which every watch trigger does first): what reacts to the
    new version is left to others (the after-ingest monitors, their alarms, new-data triggers)."""

    do: Literal["ingest"]


Action = Annotated[
    RunLoop | RunPipeline | Deploy | Rollback | Transform | Webhook | Ingest,
    Field(discriminator="do"),
]


class Retry(_Shape):
    max_attempts: int = Field(3, ge=1, le=100)
    backoff_seconds: float = Field(30.0, ge=0, description="before the 2nd attempt; doubles after")


CAUSE = TypeAdapter(Cause)
ACTION = TypeAdapter(Action)


_CAUSE_KEYS = {
    "cron": ("schedule", "timezone", "grace_seconds"),
    "new_data": ("dataset", "min_new_rows"),
    "watch": ("location", "dataset", "pattern", "settle_seconds"),
    "alarm": ("alarm",),
    "approval": ("model", "alias"),
    "manual": (),
}
_ACTION_KEYS = {
    "run_loop": (),
    "run_pipeline": ("pipeline", "params"),
    "deploy": ("endpoint", "model", "strategy", "options"),
    "rollback": ("endpoint",),
    "transform": ("model", "input", "output", "options"),
    "webhook": ("url",),
    "ingest": (),
}
_POLICY_KEYS = ("name", "on", "do", "concurrency", "missed", "retry", "paused")


# -- a loop spec's triggers: section -----------------------------------------------------------------
class TriggerSection(_Shape):
    """One trigger of a loop, flat: the cause's, the action's and the policies' keys side by
    side; a key its cause and action do not use is refused."""

    name: str | None = None  # default: LOOP-ON (LOOP-ON-2 for a second of one kind)
    on: Literal[CAUSES]
    # cause fields
    schedule: str | None = None
    timezone: str | None = None
    grace_seconds: float | None = Field(None, gt=0)
    dataset: str | None = None
    min_new_rows: int | None = Field(None, ge=1)
    location: str | None = None
    pattern: str | None = None
    settle_seconds: float | None = Field(None, ge=0)
    alarm: str | None = None
    model: str | None = None
    alias: str | None = None
    # action fields
    do: Literal[ACTIONS] | None = None  # default: ingest for on: watch, else run_loop
    pipeline: str | None = None
    params: dict[str, Any] | None = None
    endpoint: str | None = None
    strategy: Literal[STRATEGIES] | None = None
    options: dict[str, Any] | None = None
    input: str | None = None
    output: str | None = None
    url: str | None = None
    # policies
    concurrency: Literal[CONCURRENCY] | None = None
    missed: Literal[MISSED] | None = None
    retry: Retry | None = None
    paused: bool = False

    @model_validator(mode="before")
    @classmethod
    def _yaml_on(cls, value):
        # YAML 1.1 (PyYAML) reads a bare ``on:`` key as the boolean True
        if isinstance(value, dict) and True in value and "on" not in value:
            value = {("on" if k is True else k): v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _needs(self):
        if self.do is None:
            self.do = "ingest" if self.on == "watch" else "run_loop"
        if self.on == "cron" and not self.schedule:
            raise ValueError("a cron trigger needs a schedule, e.g. schedule: '0 6 * * *'")
        if self.on == "alarm" and not self.alarm:
            raise ValueError("an alarm trigger needs the alarm's name (alarm: NAME)")
        if self.on == "watch" and not self.location:
            raise ValueError("a watch trigger needs a location (a folder or an s3:// prefix)")
        if self.do == "ingest" and self.on != "watch":
            raise ValueError("do: ingest is for watch triggers (it ingests the watched file)")
        if self.do == "webhook" and not self.url:
            raise ValueError("a webhook trigger needs its url")
        if self.do == "run_pipeline" and not self.pipeline:
            raise ValueError("a run_pipeline trigger needs the pipeline (file.py:function)")
        if self.do == "transform" and not self.output:
            raise ValueError("a transform trigger needs its output location")
        used = {*_CAUSE_KEYS[self.on], *_ACTION_KEYS[self.do], *_POLICY_KEYS}
        unused = sorted(k for k in self.model_fields_set if k not in used
                        and getattr(self, k) is not None)
        if unused:
            raise ValueError(f"{', '.join(unused)}: not used by an on: {self.on} trigger that "
                             f"does {self.do}")
        return self

    def resolve(self, *, loop: str, dataset: str, model: str, endpoint: str | None,
                spec_path: str | None = None, base_dir: str | None = None) -> dict:
        """``ws.triggers.create`` keyword arguments, the loop's defaults filled in:
        ``{"name", "cause", "action", "concurrency", "missed", "retry", "paused"}``. A watched
        folder given relative is relative to ``base_dir`` (the spec's folder)."""
        import os

        given = self.model_dump(exclude_none=True)
        loc = given.get("location")
        if loc and "://" not in loc and base_dir and not os.path.isabs(loc):
            given["location"] = os.path.normpath(os.path.join(base_dir, loc))
        cause = {"on": self.on}
        defaults = {"dataset": dataset, "model": model}
        for key in _CAUSE_KEYS[self.on]:
            if key in given:
                cause[key] = given[key]
            elif key in defaults and key in ("dataset", "model"):
                cause[key] = defaults[key]
        action: dict = {"do": self.do}
        if self.do == "run_loop":
            action["loop"] = loop
            if spec_path:
                action["spec"] = spec_path
        for key in _ACTION_KEYS[self.do]:
            if key in given and not (key == "model" and self.on == "approval"):
                action[key] = given[key]
        if self.do in ("deploy", "rollback") and "endpoint" not in action and endpoint:
            action["endpoint"] = endpoint
        if self.do == "transform" and "model" not in action:
            action["model"] = f"{model}@champion"
        out = {"name": self.name or f"{loop}-{self.on}", "cause": cause, "action": action,
               "paused": self.paused}
        for key in ("concurrency", "missed"):
            if key in given:
                out[key] = given[key]
        if self.retry is not None:
            out["retry"] = self.retry.model_dump()
        return out


def resolve_all(sections: list[TriggerSection], **loop) -> list[dict]:
    """Every trigger of a loop as ``ws.triggers.create`` keyword arguments (see
    :meth:`TriggerSection.resolve`); unnamed triggers of one kind are numbered (LOOP-alarm,
    LOOP-alarm-2)."""
    out, seen = [], set()
    for section in sections:
        made = section.resolve(**loop)
        name, n = made["name"], 1
        while made["name"] in seen:
            n += 1
            made["name"] = f"{name}-{n}"
        seen.add(made["name"])
        out.append(made)
    return out


def timezone_problem(name: str) -> tuple[str, str] | None:
    """(message, hint) when ``name`` is not an IANA time zone this machine knows, else None."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
        return None
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        return (f"unknown time zone {name!r}",
                "an IANA name such as 'UTC', 'Europe/Paris' or 'America/New_York'")
