"""Declarative loops: ``modelloop loop apply loop.yaml`` makes the workspace match the spec.

``ws.loops`` (:class:`DeclaredLoops`) is the pipelines' :class:`~modelloop.pipelines.loop.Loops`
(validate, compile, run a spec file) plus what only a stored loop has:

* :meth:`~DeclaredLoops.apply` stores the loop (the ``loops`` table: name, spec, hash, applied_at)
  and creates, updates or deletes what its spec declares (its endpoint, its monitors with their
  baselines, their alarms, its triggers), returning one change per object, as ``kubectl apply``
  prints them. Applying the same file again changes nothing; what an earlier apply made and the
  spec no longer declares is deleted.
* :meth:`~DeclaredLoops.run` runs a stored loop by name (what a ``run_loop`` trigger does), then
  catches its objects up with the run: the endpoint and monitors that waited for a first
  champion are made, and monitors' baselines follow the new champion's training data.
* :meth:`~DeclaredLoops.status` and :meth:`~DeclaredLoops.delete` (versions and data are kept).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from modelloop.automation import loop_parts as parts
from modelloop.automation import loop_triggers
from modelloop.common.hashing import sha256_bytes
from modelloop.errors import NotFound
from modelloop.pipelines.loop import LoopResult, Loops

#: The order changes are made and printed in: a trigger may name an alarm, an alarm a monitor.
KINDS = ("loop", "endpoint", "monitor", "alarm", "trigger")


class DeclaredLoops(Loops):
    """``ws.loops``. ``endpoints`` and ``triggers`` are callables giving the service, or None
    where it is not available (serving's dependencies missing; no triggers service)."""

    def __init__(self, datasets, models, runs, *, store, monitoring,
                 endpoints: Callable[[], object | None],
                 triggers: Callable[[], object | None]):  # fmt: skip
        super().__init__(datasets, models, runs)
        self.store = store
        self.monitoring = monitoring
        self._endpoints = endpoints
        self._triggers = triggers

    # -- stored loops ---------------------------------------------------------------------------
    def list(self) -> list[dict]:
        """Every applied loop: name, spec, base_dir, hash, resources, applied_at."""
        return self.store.list_loops()

    def get(self, name: str) -> dict:
        found = self.store.get_loop(name)
        if found is None:
            known = [r["name"] for r in self.store.list_loops()]
            raise NotFound(f"no loop named {name!r}",
                           hint=f"applied loops: {', '.join(known)}" if known else
                           "apply one with 'modelloop loop apply loop.yaml'")
        return found

    def get_spec(self, name: str) -> dict:
        """The stored spec of an applied loop (dumped: JSON values, every default filled in)."""
        return self.get(name)["spec"]

    def _load(self, spec):
        """A spec file, a dict, or the name of an applied loop (when no such file exists)."""
        stored = self._stored_name(spec)
        if stored is None:
            return super()._load(spec)
        return self._load_stored(stored)

    def _load_stored(self, name: str):
        from modelloop.pipelines import loop_spec

        row = self.get(name)
        source = loop_spec.SpecSource(f"loop {name}", None, Path(row["base_dir"]))
        parsed = loop_spec.parse(row["spec"], source)
        loop_spec.check_against(parsed, source, self.datasets)
        return parsed, source

    def _stored_name(self, spec) -> str | None:
        """The applied loop ``spec`` means: its name (when no such file exists), or its stored
        spec itself (what :meth:`get_spec` gave a ``run_loop`` trigger)."""
        if isinstance(spec, dict):
            row = self.store.get_loop(spec.get("name")) if isinstance(spec.get("name"), str) \
                else None
            return row["name"] if row is not None and row["spec"] == spec else None
        if not isinstance(spec, str) or os.sep in spec or spec.endswith((".yaml", ".yml")):
            return None
        if Path(spec).exists() or self.store.get_loop(spec) is None:
            return None
        return spec

    # -- apply ----------------------------------------------------------------------------------
    def apply(self, spec: str | os.PathLike | dict) -> list[dict]:
        """Store the loop and bring what its spec declares in line; returns the changes
        (``{"kind", "name", "action", "diff"}``, action created | updated | unchanged |
        deleted, or waiting for what needs the loop's first champion or data)."""
        return self._apply(*self._load(spec))

    def _apply(self, parsed, source) -> list[dict]:
        dumped = parsed.model_dump(mode="json", by_alias=True)
        base_dir = str(source.base_dir)
        digest = sha256_bytes(json.dumps({"spec": dumped, "base_dir": base_dir},
                                         sort_keys=True).encode())
        old = self.store.get_loop(parsed.name)
        if old is None:
            changes = [parts.change("loop", parsed.name, "created")]
        elif old["hash"] != digest:
            changes = [parts.change("loop", parsed.name, "updated",
                                    parts.diff({**old["spec"], "base_dir": old["base_dir"]},
                                               {**dumped, "base_dir": base_dir}))]
        else:
            changes = [parts.change("loop", parsed.name, "unchanged")]
        loop = self._checked(parsed, dumped, base_dir)  # a spec mistake changes nothing
        before = dict(old["resources"]) if old else {}
        resources = dict(before)
        if old is None or old["hash"] != digest:  # first: its triggers' run_loop must find it
            self.store.put_loop(parsed.name, spec=dumped, base_dir=base_dir, hash=digest,
                                resources=before)
        try:
            changes += self._sync(loop, resources)
        finally:  # what exists is recorded even when a later part failed
            if resources != before:
                self.store.put_loop(parsed.name, spec=dumped, base_dir=base_dir, hash=digest,
                                    resources=resources)
        return changes

    def _checked(self, parsed, dumped: dict, base_dir: str) -> parts.Loop:
        """The loop's facts, after the checks that need the workspace (names its triggers and
        alarms use)."""
        champion, trained_on = parts.champion_of(self.models, parsed)
        loop = parts.Loop(parsed.name, parsed, dumped, champion, trained_on, base_dir)
        parts.check_alarm_names(loop)
        loop_triggers.check_refs(loop, loop_triggers.requests(loop), self.monitoring.alarms,
                                 self.datasets)
        return loop

    def _sync(self, loop: parts.Loop, resources: dict) -> list[dict]:
        monitors = parts.claimed_elsewhere(self.store, loop.name, "monitors")
        alarms = parts.claimed_elsewhere(self.store, loop.name, "alarms")
        changes = parts.sync_endpoint(loop, self._endpoints(), resources)
        changes += parts.sync_monitors(loop, self.monitoring, self.datasets, resources, monitors)
        changes += parts.sync_alarms(loop, self.monitoring.alarms, resources, alarms)
        changes += loop_triggers.sync_triggers(loop, self._triggers(), self.datasets)
        return changes

    def sync(self, name: str) -> list[dict]:
        """Apply the stored spec again (after a run: a first champion, new baselines)."""
        return self._apply(*self._load_stored(name))

    # -- running a stored loop --------------------------------------------------------------------
    def run(self, spec: str | os.PathLike | dict, *, executor: str = "threads",
            wait: bool = False, wait_timeout: float | None = None, on_progress=None,
            started_by: dict | None = None, should_stop=None) -> LoopResult:  # fmt: skip
        """Run a loop once (the options are those of :meth:`Loops.run
        <modelloop.pipelines.loop.Loops.run>`): a spec file, or an applied loop (by name, or its
        stored spec); then the applied loop's objects are brought in line with the run (the
        changes are in ``result.extra["applied"]``)."""
        result = super().run(spec, executor=executor, wait=wait, wait_timeout=wait_timeout,
                             on_progress=on_progress, started_by=started_by,
                             should_stop=should_stop)  # fmt: skip
        stored = self._stored_name(spec)
        if stored is not None:
            try:
                result.extra["applied"] = [c for c in self.sync(stored)
                                           if c["action"] not in ("unchanged", "waiting")]
            except Exception as exc:  # noqa: BLE001 - the run stands; the next apply retries
                result.extra["apply_error"] = str(exc)
        return result

    # -- status and delete ----------------------------------------------------------------------
    def status(self, name: str) -> dict:
        """Champion, endpoint variants and traffic, monitors' last verdicts, alarms' states,
        triggers' next firings and the last runs of an applied loop."""
        from modelloop.automation.loop_status import gather

        return gather(self, self.get(name), endpoints=self._endpoints(),
                      triggers=self._triggers())

    def delete(self, name: str) -> list[dict]:
        """Remove what apply made for the loop (triggers, alarms, monitors, its endpoint unless
        adopted) and the loop; registered model versions, datasets and baselines are kept."""
        row = self.get(name)
        res = row["resources"]
        changes = loop_triggers.delete_triggers(name, self._triggers())
        alarms, monitoring = self.monitoring.alarms, self.monitoring
        changes += parts.drop("alarm", set(res.get("alarms") or []), (), alarms.get,
                              alarms.delete)
        changes += parts.drop("monitor", set(res.get("monitors") or []), (), monitoring.monitor,
                              monitoring.delete_monitor)
        endpoint, endpoints = res.get("endpoint"), self._endpoints()
        if endpoint and endpoint.get("owned") and endpoints is not None \
                and parts.find(endpoints.get, endpoint["name"]) is not None:
            endpoints.delete(endpoint["name"])
            changes.append(parts.change("endpoint", endpoint["name"], "deleted"))
        self.store.delete_loop(name)
        changes.append(parts.change("loop", name, "deleted"))
        return changes
