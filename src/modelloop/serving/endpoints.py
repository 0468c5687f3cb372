"""Endpoints: the SDK side of real-time serving (``ws.endpoints``).

Creating, changing and deploying to an endpoint only writes its record in the metadata store;
every ``modelloop serve`` process pointed at the same store notices the new revision within about
half a second and swaps its models in. Rollouts are driven by whoever holds their lease: a server,
or a ``deploy`` call that waits for its rollout to finish.
"""

from __future__ import annotations

import os
import socket
import time

from modelloop.data.refs import check_name
from modelloop.errors import InvalidInput, NotFound
from modelloop.serving import rollouts as _rollouts
from modelloop.serving.spec import check_spec, check_variant


def _actor() -> str:
    from modelloop.registry.registry import current_actor

    return current_actor()


class Endpoints:
    """The endpoints of a workspace."""

    def __init__(self, ws):
        self.ws = ws
        self.store = ws.store

    # -- records ------------------------------------------------------------------------------
    def _pin(self, spec: dict) -> dict:
        """Resolve each variant's model reference to a pinned ``name@version``."""
        for v in spec["variants"]:
            name, version = self.ws.models.resolve(v["model"])
            v["model"] = f"{name}@{version}"
        return spec

    def create(self, name: str, model: str | None = None, *, variants: list[dict] | None = None,
               capture: dict | None = None, options: dict | None = None,
               follow: str | None = None, deploy: dict | None = None) -> dict:
        """A new endpoint serving ``model`` (one primary variant) or the given ``variants``.

        ``follow="churn@champion"`` makes it deploy each version the alias moves to (with
        ``deploy={"strategy": "canary", ...}``), i.e. deploy-on-approval.
        """
        check_name(name, "endpoint")
        if model and variants:
            raise InvalidInput("give a model or variants, not both")
        if follow and not (model or variants):
            model = follow
        variants = [{"model": model}] if model else list(variants or [])
        if not variants:
            raise InvalidInput(f"endpoint {name!r} needs a model",
                               hint="pass --model NAME@VERSION (or --variant NAME=MODEL)")
        if follow:
            from modelloop.registry.registry import parse_model_ref

            parse_model_ref(follow)
        spec = self._pin(check_spec({"variants": variants, "capture": capture, "options": options,
                                     "follow": follow, "deploy": deploy}))
        record = self.store.create_endpoint(name, spec, actor=_actor())
        self._mark_deployed(name, spec)
        return record

    def get(self, name: str) -> dict:
        record = self.store.get_endpoint(name)
        if record is None:
            known = [e["name"] for e in self.store.list_endpoints()]
            raise NotFound(f"no endpoint named {name!r}",
                           hint=f"known endpoints: {', '.join(known)}" if known else
                           "create one with 'modelloop endpoint create NAME --model M@V'")
        return record

    def describe(self, name: str) -> dict:
        """The record, its rollouts (newest first) and its statistics."""
        record = self.get(name)
        return {**record, "rollouts": self.store.list_rollouts(endpoint=name, limit=20),
                "stats": self.stats(name)}

    def list(self) -> list[dict]:
        return self.store.list_endpoints()

    def serving(self, model_ref: str) -> list[str]:
        """Where a model version is deployed now: ``endpoint/variant (weight w)`` for each."""
        out = []
        for e in self.store.list_endpoints():
            for v in e["spec"]["variants"]:
                if v["model"] == model_ref:
                    role = "shadow" if v["role"] == "shadow" else f"weight {v['weight']:g}"
                    out.append(f"{e['name']}/{v['name']} ({role})")
        return out

    def update(self, name: str, *, variants: list[dict] | None = None,
               capture: dict | None = None, options: dict | None = None,
               follow: str | None | bool = False, weights: dict[str, float] | None = None) -> dict:
        """Change variants (whole list), variant weights, capture settings or options."""
        record = self.get(name)
        spec = dict(record["spec"])
        if variants is not None:
            spec["variants"] = [check_variant(v) for v in variants]
        if weights:
            known = {v["name"]: v for v in spec["variants"]}
            for vname, w in weights.items():
                if vname not in known:
                    raise InvalidInput(f"endpoint {name!r} has no variant {vname!r}",
                                       hint=f"its variants: {', '.join(known)}")
                known[vname]["weight"] = w
        if capture:
            spec["capture"] = {**spec["capture"], **capture}
        if options:
            spec["options"] = {**spec["options"], **options}
        if follow is not False:
            spec["follow"] = follow or None
        spec = self._pin(check_spec(spec))
        updated = self.store.update_endpoint(name, spec, actor=_actor(),
                                             expected_revision=record["revision"])
        self._mark_deployed(name, spec)
        return updated

    def delete(self, name: str) -> None:
        self.get(name)
        self.store.delete_endpoint(name)

    def _mark_deployed(self, name: str, spec: dict) -> None:
        for v in spec["variants"]:
            self.ws.models.mark_deployed(v["model"], f"endpoint {name} variant {v['name']}")

    # -- rollouts -----------------------------------------------------------------------------
    def deploy(self, name: str, model: str, *, strategy: str = "all-at-once",
               bake_seconds: float = 60.0, canary_percent: float = 10.0,
               step_percent: float = 25.0, max_error_rate: float | None = 0.05,
               max_p99_ms: float | None = None, min_requests: int = 5, wait: bool = True,
               timeout: float | None = None, progress=None, create: bool = True,
               alarms: list[str] | None = None) -> dict:
        """Roll ``model`` out on endpoint ``name`` (created if missing) with a strategy.

        During each bake the new variant's error rate and p99 are checked, and each alarm named
        in ``alarms`` is evaluated: one in ALARM rolls the deployment back.

        Returns the rollout's record. With ``wait`` the call drives the rollout itself until it
        completes or rolls back (a server hosting the endpoint may drive it too; a lease keeps
        them from both moving it); ``progress(rollout)`` is called after each change.
        """
        if strategy not in _rollouts.STRATEGIES:
            raise InvalidInput(f"unknown rollout strategy {strategy!r}",
                               hint=f"use {', '.join(_rollouts.STRATEGIES)}")
        steps = _rollouts.plan_steps(strategy, bake_seconds=float(bake_seconds),
                                     canary_percent=float(canary_percent),
                                     step_percent=float(step_percent))
        alarms = list(dict.fromkeys(alarms or []))
        for alarm in alarms:
            self.ws.monitoring.alarms.get(alarm)  # NotFound names the known ones
        mname, version = self.ws.models.resolve(model)
        ref = f"{mname}@{version}"
        record = self.store.get_endpoint(name)
        if record is None:
            if not create:
                self.get(name)
            self.create(name, ref)
            record = self.get(name)
            return self._record_instant(name, record["spec"], record["spec"], ref, strategy,
                                        "endpoint created")
        before = record["spec"]
        new = check_variant({"name": _rollouts.new_variant_name(before, ref), "model": ref})
        if strategy == "all-at-once" or not any(v["role"] == "primary" for v in before["variants"]):
            after = _rollouts.final_spec(before, new)
            self.store.update_endpoint(name, after, actor=_actor(),
                                       expected_revision=record["revision"])
            self.ws.models.mark_deployed(ref, f"endpoint {name} variant {new['name']}")
            return self._record_instant(name, before, after, ref, strategy, None)
        checks = {"max_error_rate": max_error_rate, "max_p99_ms": max_p99_ms,
                  "min_requests": int(min_requests), "alarms": alarms}
        state = {"before": before, "new_variant": new, "steps": steps, "step": 0,
                 "step_started": time.time(), "checks": checks, "observed": None}
        rollout = self.store.create_rollout(endpoint=name, strategy=strategy, model=ref,
                                            state=state, actor=_actor())
        self.store.advance_rollout(rollout["id"], state=state,
                                   spec=_rollouts.spec_at(before, new, steps[0][0]),
                                   endpoint_status="updating", actor=_actor())
        self.ws.models.mark_deployed(ref, f"endpoint {name} variant {new['name']}")
        rollout = self.store.get_rollout(rollout["id"])
        if progress:
            progress(rollout)
        if not wait:
            return rollout
        return self.wait(rollout["id"], timeout=timeout, progress=progress)

    def _record_instant(self, name, before, after, ref, strategy, reason) -> dict:
        """An instant change still gets a (completed) rollout row, so it can be rolled back."""
        state = {"before": before, "after": after, "steps": [[100.0, 0.0]], "step": 0,
                 "step_started": time.time(), "checks": {}, "observed": None,
                 "new_variant": next((v for v in after["variants"] if v["model"] == ref),
                                     after["variants"][0])}
        rollout = self.store.create_rollout(endpoint=name, strategy=strategy, model=ref,
                                            state=state, actor=_actor())
        self.store.advance_rollout(rollout["id"], state=state, status="completed", reason=reason)
        return self.store.get_rollout(rollout["id"])

    def wait(self, rollout_id: int, *, timeout: float | None = None, progress=None,
             poll: float = 0.25) -> dict:
        """Drive/watch a rollout until it is no longer running."""
        deadline = None if timeout is None else time.monotonic() + timeout
        owner = f"deploy:{socket.gethostname()}:{os.getpid()}"
        while True:
            rollout = self.store.get_rollout(rollout_id)
            if rollout["status"] != "running":
                return rollout
            changed = _rollouts.drive(self.store, rollout, owner=owner,
                                      alarm_states=self._alarm_states)
            if changed and progress:
                progress(changed)
            if deadline is not None and time.monotonic() > deadline:
                return self.store.get_rollout(rollout_id)
            time.sleep(poll)

    def advance(self, *, owner: str) -> list[dict]:
        """Move every running rollout that is due (and follow aliases); returns what changed."""
        changed = []
        for rollout in self.store.list_rollouts(status="running"):
            try:
                out = _rollouts.drive(self.store, rollout, owner=owner,
                                      alarm_states=self._alarm_states)
            except Exception:  # one broken rollout must not stop the others
                continue
            if out:
                changed.append(out)
        self._follow_aliases()
        return changed

    def _alarm_states(self, names: list[str]) -> dict[str, tuple[str, str]]:
        """Evaluate the named alarms now (through ``ws.monitoring``); a deleted one is skipped."""
        out = {}
        for name in names:
            try:
                result = self.ws.monitoring.alarms.evaluate(name)[0]
            except NotFound:
                continue
            out[name] = (result["state"], result["reason"])
        return out

    def _follow_aliases(self) -> None:
        """Deploy-on-approval: endpoints following ``model@alias`` deploy what it points at."""
        for ep in self.store.list_endpoints():
            follow = ep["spec"].get("follow")
            if not follow:
                continue
            try:
                mname, version = self.ws.models.resolve(follow)
            except Exception:
                continue
            ref = f"{mname}@{version}"
            serving = {v["model"] for v in ep["spec"]["variants"] if v["role"] == "primary"}
            if ref in serving and len(serving) == 1:
                continue
            recent = self.store.list_rollouts(endpoint=ep["name"], limit=20)
            if any(r["status"] == "running" for r in recent):
                continue
            if any(r["model"] == ref for r in recent):  # tried already (maybe rolled back)
                continue
            opts = dict(ep["spec"].get("deploy") or {})
            try:
                self.deploy(ep["name"], ref, wait=False, **opts)
            except InvalidInput:
                continue

    def rollback(self, name: str, *, reason: str | None = None) -> dict:
        """Stop the running rollout and restore the spec before it — or, if none runs, undo the
        last completed one. Returns the rollout record that was rolled back."""
        self.get(name)
        reason = reason or "manual rollback"
        for rollout in self.store.list_rollouts(endpoint=name, limit=50):
            if rollout["status"] == "running" and self.store.advance_rollout(
                rollout["id"], state=rollout["state"], status="rolled_back", reason=reason,
                spec=rollout["state"]["before"], endpoint_status="in_service",
                actor=_actor(),
            ):
                return self.store.get_rollout(rollout["id"])
            if rollout["status"] == "completed":
                before = rollout["state"]["before"]
                if not before.get("variants"):
                    continue
                self.store.update_endpoint(name, before, actor=_actor())
                self.store.mark_rollout(rollout["id"], status="rolled_back", reason=reason)
                return self.store.get_rollout(rollout["id"])
        raise InvalidInput(f"endpoint {name!r} has no rollout to roll back",
                           hint=f"see 'modelloop endpoint show {name}'")

    def rollouts(self, name: str) -> list[dict]:
        self.get(name)
        return self.store.list_rollouts(endpoint=name)

    # -- statistics and capture ---------------------------------------------------------------
    def stats(self, name: str | None = None) -> list[dict]:
        """Per endpoint and variant: invocations, 4xx, 5xx, model errors, latency percentiles
        (summed over every server process that served it)."""
        from modelloop.serving.metrics import merge, percentile

        groups: dict[tuple, list[dict]] = {}
        for row in self.store.read_endpoint_stats(name):
            groups.setdefault((row["endpoint"], row["variant"]), []).append(row["data"])
        out = []
        for (ep, var), snaps in sorted(groups.items()):
            d = merge(snaps)
            n = d.get("invocations", 0)
            out.append({
                "endpoint": ep, "variant": var, "invocations": n,
                "errors_4xx": d.get("errors_4xx", 0), "errors_5xx": d.get("errors_5xx", 0),
                "model_errors": d.get("model_errors", 0), "rows": d.get("rows", 0),
                "model_p50_ms": percentile(d.get("model_ms"), d.get("buckets"), 0.5),
                "model_p99_ms": percentile(d.get("model_ms"), d.get("buckets"), 0.99),
                "overhead_p50_ms": percentile(d.get("overhead_ms"), d.get("buckets"), 0.5),
                "overhead_p99_ms": percentile(d.get("overhead_ms"), d.get("buckets"), 0.99),
                "model_ms_mean": (d.get("model_ms_sum", 0.0) / n) if n else None,
            })
        return out

    def capture(self, name: str, *, variant: str | None = None, since=None, until=None,
                frame: bool = False):
        """Captured records of an endpoint (or, with ``frame``, a DataFrame of them)."""
        from modelloop.serving.capture import capture_frame, read_capture

        records = read_capture(self.ws.store, self.ws.artifacts, name, variant=variant,
                               since=since, until=until)
        return capture_frame(records) if frame else records
