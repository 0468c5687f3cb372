"""What a loop spec declares besides the loop itself, brought in line with the workspace.

Each ``sync_*`` function compares what the spec wants with what exists, creates, updates or
deletes the difference, and returns one change per object (``{"kind", "name", "action",
"diff"}``; action ``created | updated | unchanged | deleted``, or ``waiting`` for what cannot exist
yet: an endpoint before the loop's first champion, a monitor before its data). What the loop owns
is kept in ``resources`` (the ``loops`` row), so an object the spec no longer declares is deleted,
and one that existed before the loop was applied (an adopted endpoint) is never deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelloop.errors import InvalidInput, NotFound
from modelloop.pipelines.loop_monitors import ALARM_DEFAULTS, watches


def find(get, name: str) -> dict | None:
    """``get(name)`` of a service, or None where it raises NotFound."""
    try:
        return get(name)
    except NotFound:
        return None


def change(kind: str, name: str, action: str, diff: list[str] | None = None) -> dict:
    return {"kind": kind, "name": name, "action": action, "diff": list(diff or [])}


def drop(kind: str, owned: set, wanted, get, delete) -> list[dict]:
    """Delete the ``owned`` objects not ``wanted`` (those still there); ``owned`` loses them."""
    out = []
    for name in sorted(owned - set(wanted)):
        if find(get, name) is not None:
            delete(name)
            out.append(change(kind, name, "deleted"))
        owned.discard(name)
    return out


def converge(kind: str, name: str, existing: dict | None, fields: dict, create, update,
             made: list[str] | None = None) -> dict:  # fmt: skip
    """Create the object, or update the fields that differ, or leave it; the change."""
    if existing is None:
        create(name, **fields)
        return change(kind, name, "created", made)
    changed = diff({k: existing.get(k) for k in fields}, fields)
    if not changed:
        return change(kind, name, "unchanged")
    update(name, **fields)
    return change(kind, name, "updated", changed)


def diff(old: Any, new: Any, path: str = "") -> list[str]:
    """``path: old -> new`` for each leaf that differs (dicts compared key by key)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            out += diff(old.get(key), new.get(key), f"{path}.{key}" if path else str(key))
        return out
    if isinstance(old, list) and isinstance(new, list) and old != new:
        keyed = [_by_name(old), _by_name(new)]
        if None not in keyed:  # monitors, triggers: by name
            return diff(*keyed, path)
        if len(old) == len(new):
            return diff(dict(enumerate(old)), dict(enumerate(new)), path)
    if old == new:
        return []
    return [f"{path or '(value)'}: {_short(old)} -> {_short(new)}"]


def _by_name(items: list) -> dict | None:
    if all(isinstance(i, dict) and isinstance(i.get("name"), str) for i in items):
        named = {i["name"]: i for i in items}
        return named if len(named) == len(items) else None
    return None


def _short(value: Any) -> str:
    import json

    text = json.dumps(value, default=str, sort_keys=True)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass
class Loop:
    """The facts every part reads: the spec (parsed and dumped) and the loop's champion."""

    name: str
    parsed: Any  # LoopSpec
    spec: dict  # the same, dumped to JSON values
    champion: str | None  # "model@version"
    trained_on: str | None  # the champion's training data (a dataset ref)
    base_dir: str = "."  # the spec's folder: relative paths start here

    @property
    def owner(self) -> str:
        return f"loop:{self.name}"

    def monitor_name(self, m) -> str:
        """``<loop>-<name>``: monitors of several loops do not clash (a name that starts with
        the loop's already is one)."""
        prefix = f"{self.name}-"
        return m.name if m.name.startswith(prefix) else prefix + m.name

    def alarm_name(self, m) -> str:
        return m.alarm.name or self.monitor_name(m)

    def endpoint_of(self, m) -> str | None:
        """The endpoint a monitor watches (None: it watches data)."""
        if watches(m) != "endpoint":
            return None
        return m.endpoint or self.parsed.deploy.endpoint

    def waits_for_champion(self, m) -> bool:
        """A monitor of the loop's own endpoint, or of its model, needs the first champion."""
        own = self.parsed.deploy is not None and self.endpoint_of(m) == self.parsed.deploy.endpoint
        return self.champion is None and (own or (m.kind == "model_quality" and not m.model))


def champion_of(models, parsed) -> tuple[str | None, str | None]:
    """(the champion's ref, the dataset ref it trained on), or (None, None) before the first."""
    model, alias = parsed.model_name, parsed.registration.alias
    version = models.alias_version(model, alias)
    if version is None:
        return None, None
    record = models.get(f"{model}@{version}")
    lineage = record["manifest"].get("lineage") or {}
    data = [i for i in lineage.get("inputs") or [] if i.get("kind") == "dataset"]
    return record["ref"], (data[0]["ref"] if data else None)


# -- the endpoint -----------------------------------------------------------------------------------
def sync_endpoint(loop: Loop, endpoints, resources: dict) -> list[dict]:
    """Create the deploy section's endpoint with the champion, keep its capture as declared,
    delete an endpoint the loop made that the spec no longer names. ``mode: online``: the
    endpoint's primary is online and the champion its frozen shadow (:func:`_online`)."""
    out: list[dict] = []
    had = resources.get("endpoint")
    deploy = loop.parsed.deploy
    want = deploy.endpoint if deploy else None
    if had and had["name"] != want:
        if had.get("owned") and endpoints is not None and find(endpoints.get, had["name"]):
            endpoints.delete(had["name"])
            out.append(change("endpoint", had["name"], "deleted"))
        resources.pop("endpoint", None)
    if want is None:
        return out
    if endpoints is None:
        return [*out, change("endpoint", want, "waiting", ["serving is not installed"])]
    existing = find(endpoints.get, want)
    if "endpoint" not in resources:  # first seen: the loop owns it unless it was there before
        resources["endpoint"] = {"name": want, "owned": existing is None}
    capture = _capture(loop)
    if existing is None:
        if loop.champion is None:
            return [*out, change("endpoint", want, "waiting",
                                 ["no champion yet: the loop's first run creates it"])]
        if deploy.mode == "online":
            endpoints.create(want, variants=_online(loop, endpoints), capture=capture)
            return [*out, change("endpoint", want, "created",
                                 [f"online, champion {loop.champion} as its shadow"])]
        endpoints.create(want, loop.champion, capture=capture)
        return [*out, change("endpoint", want, "created", [f"serving {loop.champion}"])]
    if deploy.mode == "online":
        shadows = [v["model"] for v in existing["spec"]["variants"] if v["role"] == "shadow"]
        if loop.champion is not None and shadows != [loop.champion]:
            endpoints.update(want, variants=[*(v for v in existing["spec"]["variants"]
                                               if v.get("online")),
                                             *_online(loop, endpoints)[1:]])
            out.append(change("endpoint", want, "updated", [f"champion {loop.champion}"]))
    now = {k: existing["spec"]["capture"].get(k) for k in capture}
    changed = diff({"capture": now}, {"capture": capture})
    if changed:
        endpoints.update(want, capture=capture)
        return [*out, change("endpoint", want, "updated", changed)]
    return [*out, change("endpoint", want, "unchanged")]


def _online(loop: Loop, endpoints) -> list[dict]:
    """An online endpoint's variants: the online model learning the champion's features (its
    signature's numbers and text), the champion as the shadow it is judged against."""
    spec = dict(loop.parsed.deploy.online or {})  # its model: checked by the spec
    columns = endpoints.models.get(loop.champion)["manifest"]["signature"]["columns"]
    kinds = {"string": "category", "boolean": "category", "integer": "number", "long": "number",
             "float": "number", "double": "number"}
    spec.setdefault("features", [{"name": c["name"], "type": kinds[c["type"]]}
                                 for c in columns if c["type"] in kinds])
    return [{"name": "online", "online": spec},
            {"name": "champion", "model": loop.champion, "role": "shadow"}]


def _capture(loop: Loop) -> dict:
    """The endpoint's capture settings: on when a monitor watches the endpoint, unless the
    spec's ``deploy.capture`` says otherwise."""
    watched = any(watches(m) == "endpoint" for m in loop.parsed.monitors)
    return {"enabled": watched, **(loop.parsed.deploy.capture or {})}


# -- monitors and their alarms -----------------------------------------------------------------------
def monitor_fields(loop: Loop, m, baseline: str) -> dict:
    """The monitor record the spec asks for (as ``ws.monitoring.create_monitor`` takes it)."""
    options = dict(m.options)
    window = m.window or options.pop("window", None)
    variant = options.pop("variant", None)
    after_ingest = m.after_ingest if m.after_ingest is not None else options.pop("after_ingest",
                                                                                 None)
    config = dict(options)
    if "exclude" not in config and loop.parsed.quality.ignore and not m.baseline:
        config["exclude"] = list(loop.parsed.quality.ignore)
    endpoint = loop.endpoint_of(m)
    model = m.model or (f"{loop.parsed.model_name}@{loop.parsed.registration.alias}"
                        if m.kind == "model_quality" else None)
    return {
        "baseline": baseline,
        "dataset": None if endpoint else (m.dataset or loop.parsed.data.dataset),
        "endpoint": endpoint,
        "variant": variant,
        "schedule": m.schedule,
        "after_ingest": bool(not endpoint and (after_ingest if after_ingest is not None
                                               else m.schedule is None)),
        "window": window or ("1h" if endpoint else None),
        "model": model,
        "config": config,
    }


def _baseline(loop: Loop, m, monitoring, datasets, current: str | None) -> str | None:
    """The monitor's reference: the baseline of the version the spec pins (``baseline:``), else
    of the champion's training data (it follows each new champion); before the first champion
    the one it has, else the dataset's newest version. None: no such data yet."""
    ref = m.baseline or loop.trained_on
    if ref is None and current is not None:
        return current
    try:
        ref = ref or datasets.get(m.dataset or loop.parsed.data.dataset).ref
        return monitoring.ensure_baseline(ref, target=loop.parsed.target)["name"]
    except NotFound:
        return None


def claimed_elsewhere(store, loop_name: str, kind: str) -> dict[str, str]:
    """name -> the other applied loop that owns it, for ``kind`` (monitors, alarms)."""
    out = {}
    for row in store.list_loops():
        if row["name"] != loop_name:
            for name in row["resources"].get(kind) or []:
                out[name] = row["name"]
    return out


def _refuse_taken(loop: Loop, names, taken: dict[str, str], what: str) -> None:
    clash = [n for n in names if n in taken]
    if clash:
        raise InvalidInput(f"{what} {clash[0]!r} belongs to loop {taken[clash[0]]!r}",
                           hint=f"name this loop's {what} differently")


def sync_monitors(loop: Loop, monitoring, datasets, resources: dict, taken: dict) -> list[dict]:
    out: list[dict] = []
    wanted = {loop.monitor_name(m): m for m in loop.parsed.monitors}
    _refuse_taken(loop, wanted, taken, "monitor")
    owned = set(resources.get("monitors") or [])
    out += drop("monitor", owned, wanted, monitoring.monitor, monitoring.delete_monitor)
    for name, m in wanted.items():
        existing = find(monitoring.monitor, name)
        if loop.waits_for_champion(m) and existing is None:
            out.append(change("monitor", name, "waiting", ["no champion served yet"]))
            continue
        baseline = _baseline(loop, m, monitoring, datasets, existing and existing["baseline"])
        if baseline is None:
            out.append(change("monitor", name, "waiting",
                              [f"no data for its baseline yet ({m.baseline or 'dataset '}"
                               f"{'' if m.baseline else m.dataset or loop.parsed.data.dataset})"]))
            continue
        owned.add(name)
        out.append(converge("monitor", name, existing, monitor_fields(loop, m, baseline),
                            monitoring.create_monitor, monitoring.update_monitor,
                            [f"baseline {baseline}"]))
    resources["monitors"] = sorted(owned)
    return out


def alarm_fields(loop: Loop, m) -> dict:
    """The alarm record the spec asks for (as ``ws.alarms.create`` takes it)."""
    from modelloop.telemetry.alarms import comparison_name

    a = m.alarm
    metric, comparison, threshold = ALARM_DEFAULTS[m.kind]
    if metric is None:
        metric = f"quality.{loop.parsed.evaluate.metric or 'accuracy'}"
    return {
        "metric": a.metric or metric,
        "dimensions": {"monitor": loop.monitor_name(m), **a.dimensions},
        "threshold": float(a.threshold if a.threshold is not None else threshold),
        "comparison": comparison_name(a.comparison or comparison),
        "statistic": a.statistic,
        "period": a.period,
        "evaluation_periods": a.evaluation_periods,
        "datapoints_to_alarm": a.datapoints_to_alarm or a.evaluation_periods,
        "missing_data": a.missing_data,
        "actions": list(a.actions),
    }


def sync_alarms(loop: Loop, alarms, resources: dict, taken: dict) -> list[dict]:
    """Alarms exist from the first apply, before their monitor writes a point
    (INSUFFICIENT_DATA), so triggers can name them at once. A changed alarm is made anew: its
    state starts again from INSUFFICIENT_DATA on the new condition."""
    out: list[dict] = []
    wanted = {loop.alarm_name(m): alarm_fields(loop, m) for m in loop.parsed.monitors if m.alarm}
    _refuse_taken(loop, wanted, taken, "alarm")
    owned = set(resources.get("alarms") or [])
    out += drop("alarm", owned, wanted, alarms.get, alarms.delete)

    def recreate(name, **fields):
        alarms.delete(name)
        alarms.create(name, **fields)

    for name, fields in wanted.items():
        owned.add(name)
        out.append(converge("alarm", name, find(alarms.get, name), fields, alarms.create,
                            recreate, [_condition(fields)]))
    resources["alarms"] = sorted(owned)
    return out


def _condition(f: dict) -> str:
    from modelloop.telemetry.alarms import COMPARISONS

    sym = COMPARISONS[f["comparison"]][0]
    return (f"{f['metric']} {sym} {f['threshold']:g} in {f['datapoints_to_alarm']} of "
            f"{f['evaluation_periods']} periods of {f['period']}s")


def check_alarm_names(loop: Loop) -> None:
    """Two monitors may not declare one alarm."""
    seen: dict[str, str] = {}
    for m in loop.parsed.monitors:
        if m.alarm is None:
            continue
        name = loop.alarm_name(m)
        if name in seen:
            raise InvalidInput(f"monitors {seen[name]!r} and {m.name!r} both declare alarm "
                               f"{name!r}", hint="give one of them alarm.name")
        seen[name] = m.name
