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
import warnings
from typing import TYPE_CHECKING

from modelloop.access.tokens import Tokens
from modelloop.common.status import ApprovalStatus, EndpointStatus, RolloutStatus
from modelloop.data.refs import check_name
from modelloop.errors import InvalidInput, NotApproved, NotFound
from modelloop.serving import rollouts as _rollouts
from modelloop.serving.spec import (
    check_deploy,
    check_spec,
    check_variant,
    is_online,
    online_variant_dict,
    variant_name_for,
)

if TYPE_CHECKING:
    from modelloop.artifacts import ArtifactStore
    from modelloop.registry.registry import Registry
    from modelloop.store.base import MetadataStore
    from modelloop.telemetry.alarms import Alarms
    from modelloop.telemetry.labels import Labels
    from modelloop.telemetry.series import MetricSeries


def _forced_note(override: dict | None) -> str:
    if not override:
        return ""
    return f" (forced while {override['status']}: {override['reason']})"


def _with_overrides(spec: dict, overrides: list[dict]) -> dict:
    if overrides:
        spec["approval_overrides"] = [*spec.get("approval_overrides", []), *overrides]
    return spec


def _actor() -> str:
    from modelloop.config import current_actor

    return current_actor()


class Endpoints:
    """The endpoints of a workspace: their records in ``store``, captured traffic in
    ``artifacts``, model versions from the ``models`` registry; from telemetry, the ``alarms``
    rollouts watch, the metric ``series`` servers write and the ``labels`` servers receive as
    feedback."""

    def __init__(self, store: MetadataStore, artifacts: ArtifactStore, models: Registry, *,
                 alarms: Alarms, series: MetricSeries, labels: Labels, features=None,
                 append_rows=None):
        self.store = store
        self._features = features  # (recorded feature set, keys, at) -> values, for no skew
        self._append_rows = append_rows  # rows for a stream-fed dataset (``data.datasets``)
        self.artifacts = artifacts
        self.models = models
        self._alarms = alarms
        self._series = series
        self._labels = labels

    # -- records ------------------------------------------------------------------------------
    def _pin(self, spec: dict) -> dict:
        """Resolve each variant's model reference to a pinned ``name@version``; a default variant
        name is the version's (``churn-v4``), never the alias it was given by."""
        for v in spec["variants"]:
            if is_online(v):  # a model spec the learner builds, not a registered version
                continue
            name, version = self.models.resolve(v["model"])
            pinned = f"{name}@{version}"
            if v["name"] == variant_name_for(v["model"]) and pinned != v["model"]:
                v["name"] = variant_name_for(pinned)
            v["model"] = pinned
        return spec

    def _check_approved(self, refs, *, force: bool, reason: str | None, where: str) -> list[dict]:
        """Refuse model versions that are not approved unless forced; the overrides to record.

        A pending or rejected version has not passed review, and a version can hold code (a
        pickle): serving or batch-scoring it is a decision someone must take by name.
        """
        overrides = []
        for ref in dict.fromkeys(refs):
            status = self.models.get(ref)["status"]
            if status == ApprovalStatus.APPROVED:
                continue
            if not force:
                raise NotApproved(
                    f"model {ref} is {status}, not approved: {where} refuses it",
                    hint=f"approve it ('modelloop models approve {ref}'), or pass --force with "
                         "--reason (force=True, reason=...) to deploy it anyway")
            why = reason or "no reason given"
            warnings.warn(f"{where}: deploying {ref}, which is {status} (forced: {why})",
                          stacklevel=3)
            overrides.append({"model": ref, "status": status, "reason": why, "by": _actor(),
                              "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        return overrides

    def create(self, name: str, model: str | None = None, *, variants: list[dict] | None = None,
               capture: dict | None = None, options: dict | None = None,
               follow: str | None = None, deploy: dict | None = None, force: bool = False,
               reason: str | None = None, online: str | None = None,
               features: list | None = None, label: str = "class",
               online_options: dict | None = None) -> dict:
        """A new endpoint serving ``model`` (one primary variant) or the given ``variants``.

        ``follow="churn@champion"`` makes it deploy each version the alias moves to (with
        ``deploy={"strategy": "canary", ...}``), i.e. deploy-on-approval. A ``model`` given by
        alias (``churn@champion``) follows that alias as ``follow`` does: the endpoint serves what
        the name promises. Versions that are not approved are refused unless ``force``
        (recorded in the spec's ``approval_overrides`` with ``reason``).

        ``online="preprocessing.StandardScaler|linear_model.LogisticRegression"``: an online
        endpoint, learned from labelled events by ``modelloop learn NAME``; ``features``: names
        or ``{"name", "type": "number" | "category"}``, ``label``: ``class`` or ``number``;
        ``online_options``: metric, guard, publish_seconds, snapshot_every... (serving/spec.py).
        """
        check_name(name, "endpoint")
        if online is not None:
            variants = [online_variant_dict(online, features, label, also=model or variants
                                            or follow, **(online_options or {}))]
        if model and variants:
            raise InvalidInput("give a model or variants, not both")
        if follow and not (model or variants):
            model = follow
        if model and not follow:
            from modelloop.registry.registry import parse_model_ref

            selector = parse_model_ref(model).selector
            if isinstance(selector, str) and selector != "latest":
                follow = model
        variants = [{"model": model}] if model else list(variants or [])
        if not variants:
            raise InvalidInput(f"endpoint {name!r} needs a model",
                               hint="pass --model NAME@VERSION (or --variant NAME=MODEL)")
        if follow:
            from modelloop.registry.registry import parse_model_ref

            parse_model_ref(follow)
        deploy = deploy if follow else None  # how to deploy what the alias moves to
        if deploy:
            check_deploy(**deploy)
        spec = self._pin(check_spec({"variants": variants, "capture": capture, "options": options,
                                     "follow": follow, "deploy": deploy}))
        overrides = self._check_approved([v["model"] for v in spec["variants"]
                                          if not is_online(v)], force=force,
                                         reason=reason, where=f"endpoint {name}")
        if overrides:
            spec["approval_overrides"] = overrides
        record = self.store.create_endpoint(name, spec, actor=_actor())
        self._mark_deployed(name, spec, overrides)
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
                if v["model"] == model_ref and not is_online(v):
                    role = "shadow" if v["role"] == "shadow" else f"weight {v['weight']:g}"
                    out.append(f"{e['name']}/{v['name']} ({role})")
        return out

    def update(self, name: str, *, variants: list[dict] | None = None,
               capture: dict | None = None, options: dict | None = None,
               follow: str | None | bool = False, weights: dict[str, float] | None = None,
               force: bool = False, reason: str | None = None) -> dict:
        """Change variants (whole list), variant weights, capture settings or options.

        A model version the endpoint did not serve yet must be approved, unless ``force``."""
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
        served = {v["model"] for v in record["spec"]["variants"]}
        overrides = self._check_approved(
            [v["model"] for v in spec["variants"] if v["model"] not in served
             and not is_online(v)], force=force,
            reason=reason, where=f"endpoint {name}")
        if overrides:
            spec["approval_overrides"] = [*spec.get("approval_overrides", []), *overrides]
        updated = self.store.update_endpoint(name, spec, actor=_actor(),
                                             expected_revision=record["revision"])
        self._mark_deployed(name, spec, overrides)
        return updated

    def delete(self, name: str) -> None:
        self.get(name)
        self.store.delete_endpoint(name)

    def _mark_deployed(self, name: str, spec: dict, overrides: list[dict] = ()) -> None:
        forced = {o["model"]: o for o in overrides}
        for v in spec["variants"]:
            if is_online(v):
                continue
            self.models.mark_deployed(v["model"], f"endpoint {name} variant {v['name']}"
                                         + _forced_note(forced.get(v["model"])))

    # -- rollouts -----------------------------------------------------------------------------
    def deploy(self, name: str, model: str, *, strategy: str = "all-at-once",
               bake_seconds: float = 60.0, canary_percent: float = 10.0,
               step_percent: float = 25.0, max_error_rate: float | None = 0.05,
               max_p99_ms: float | None = None, min_requests: int = 5,
               on_low_traffic: str = "wait", max_wait: float = 600.0, wait: bool = True,
               timeout: float | None = None, progress=None, create: bool = True,
               alarms: list[str] | None = None, force: bool = False,
               reason: str | None = None) -> dict:
        """Roll ``model`` out on endpoint ``name`` (created if missing) with a strategy.

        During each bake the new variant's error rate and p99 are checked, and each alarm named
        in ``alarms`` is evaluated: one in ALARM rolls the deployment back. A bake that saw fewer
        than ``min_requests`` requests is not healthy: ``on_low_traffic`` says whether the step
        waits for them (``wait``, up to ``max_wait`` seconds, then rolls back), rolls back
        (``fail``) or moves on, recorded as unjudged (``proceed``). A version that is not
        approved is refused unless ``force`` (recorded with ``reason``).

        Returns the rollout's record. With ``wait`` the call drives the rollout itself until it
        completes or rolls back (a server hosting the endpoint may drive it too; a lease keeps
        them from both moving it); ``progress(rollout)`` is called after each change.
        """
        opts = check_deploy(strategy=strategy, bake_seconds=bake_seconds,
                            canary_percent=canary_percent, step_percent=step_percent,
                            max_error_rate=max_error_rate, max_p99_ms=max_p99_ms,
                            min_requests=min_requests, on_low_traffic=on_low_traffic,
                            max_wait=max_wait, timeout=timeout)
        steps = _rollouts.plan_steps(opts.strategy, bake_seconds=opts.bake_seconds,
                                     canary_percent=opts.canary_percent,
                                     step_percent=opts.step_percent)
        alarms = list(dict.fromkeys(alarms or []))
        for alarm in alarms:
            self._alarms.get(alarm)  # NotFound names the known ones
        mname, version = self.models.resolve(model)
        ref = f"{mname}@{version}"
        record = self.store.get_endpoint(name)
        if record is None:
            if not create:
                self.get(name)
            self.create(name, ref, force=force, reason=reason)
            record = self.get(name)
            return self._record_instant(name, record["spec"], record["spec"], ref, strategy,
                                        "endpoint created")
        overrides = self._check_approved([ref], force=force, reason=reason,
                                         where=f"endpoint {name}")
        before = record["spec"]
        new = check_variant({"name": _rollouts.new_variant_name(before, ref), "model": ref})
        where = f"endpoint {name} variant {new['name']}" + _forced_note(
            overrides[0] if overrides else None)
        if strategy == "all-at-once" or not any(v["role"] == "primary" for v in before["variants"]):
            after = _with_overrides(_rollouts.final_spec(before, new), overrides)
            self.store.update_endpoint(name, after, actor=_actor(),
                                       expected_revision=record["revision"])
            self.models.mark_deployed(ref, where)
            return self._record_instant(name, before, after, ref, strategy, None)
        checks = {"max_error_rate": opts.max_error_rate, "max_p99_ms": opts.max_p99_ms,
                  "min_requests": opts.min_requests, "on_low_traffic": opts.on_low_traffic,
                  "max_wait": opts.max_wait, "alarms": alarms}
        baseline = _rollouts.totals([r for r in self.store.read_endpoint_stats(name)
                                     if r["variant"] == new["name"]])
        state = {"before": before, "new_variant": new, "steps": steps, "step": 0,
                 "step_started": time.time(), "checks": checks, "observed": None,
                 "baseline": baseline, "step_base": baseline,
                 **({"approval_overrides": overrides} if overrides else {})}
        rollout = self.store.create_rollout(endpoint=name, strategy=strategy, model=ref,
                                            state=state, actor=_actor())
        self.store.advance_rollout(
            rollout["id"], state=state,
            spec=_with_overrides(_rollouts.spec_at(before, new, steps[0][0]), overrides),
            endpoint_status=EndpointStatus.UPDATING, actor=_actor())
        self.models.mark_deployed(ref, where)
        rollout = self.store.get_rollout(rollout["id"])
        if progress:
            progress(rollout)
        if not wait:
            return rollout
        return self.wait(rollout["id"], timeout=opts.timeout, progress=progress)

    def _record_instant(self, name, before, after, ref, strategy, reason) -> dict:
        """An instant change still gets a (completed) rollout row, so it can be rolled back."""
        state = {"before": before, "after": after, "steps": [[100.0, 0.0]], "step": 0,
                 "step_started": time.time(), "checks": {}, "observed": None,
                 "new_variant": next((v for v in after["variants"] if v["model"] == ref),
                                     after["variants"][0])}
        rollout = self.store.create_rollout(endpoint=name, strategy=strategy, model=ref,
                                            state=state, actor=_actor())
        self.store.advance_rollout(rollout["id"], state=state, status=RolloutStatus.COMPLETED, reason=reason)
        return self.store.get_rollout(rollout["id"])

    def wait(self, rollout_id: int, *, timeout: float | None = None, progress=None,
             poll: float = 0.25) -> dict:
        """Drive/watch a rollout until it is no longer running."""
        deadline = None if timeout is None else time.monotonic() + timeout
        owner = f"deploy:{socket.gethostname()}:{os.getpid()}"
        while True:
            rollout = self.store.get_rollout(rollout_id)
            if rollout["status"] != RolloutStatus.RUNNING:
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
        for rollout in self.store.list_rollouts(status=RolloutStatus.RUNNING):
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
        """Evaluate the named alarms now; a deleted one is skipped."""
        out = {}
        for name in names:
            try:
                result = self._alarms.evaluate(name)[0]
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
                mname, version = self.models.resolve(follow)
            except Exception:
                continue
            ref = f"{mname}@{version}"
            serving = {v["model"] for v in ep["spec"]["variants"] if v["role"] == "primary"}
            if ref in serving and len(serving) == 1:
                continue
            recent = self.store.list_rollouts(endpoint=ep["name"], limit=20)
            if any(r["status"] == RolloutStatus.RUNNING for r in recent):
                continue
            if any(r["model"] == ref for r in recent):  # tried already (maybe rolled back)
                continue
            opts = dict(ep["spec"].get("deploy") or {})
            try:
                self.deploy(ep["name"], ref, wait=False, **opts)
            except NotApproved as exc:  # say so once, in a failed rollout, rather than skip
                self._record_refused(ep, ref, opts.get("strategy", "all-at-once"), exc)
            except InvalidInput:
                continue

    def _record_refused(self, ep: dict, ref: str, strategy: str, exc: NotApproved) -> None:
        state = {"before": ep["spec"], "steps": [[100.0, 0.0]], "step": 0, "checks": {},
                 "observed": None, "new_variant": {"model": ref}}
        rollout = self.store.create_rollout(endpoint=ep["name"], strategy=strategy, model=ref,
                                            state=state, actor=f"follow {ep['spec']['follow']}")
        self.store.advance_rollout(rollout["id"], state=state, status=RolloutStatus.FAILED,
                                   reason=f"not deployed: {exc.message}")

    def rollback(self, name: str, *, reason: str | None = None) -> dict:
        """Stop the running rollout and restore the spec before it — or, if none runs, undo the
        last completed one. Returns the rollout record that was rolled back."""
        self.get(name)
        reason = reason or "manual rollback"
        for rollout in self.store.list_rollouts(endpoint=name, limit=50):
            if rollout["status"] == RolloutStatus.RUNNING and self.store.advance_rollout(
                rollout["id"], state=rollout["state"], status=RolloutStatus.ROLLED_BACK, reason=reason,
                spec=rollout["state"]["before"], endpoint_status=EndpointStatus.IN_SERVICE,
                actor=_actor(),
            ):
                return self.store.get_rollout(rollout["id"])
            if rollout["status"] == RolloutStatus.COMPLETED:
                before = rollout["state"]["before"]
                if not before.get("variants"):
                    continue
                self.store.update_endpoint(name, before, actor=_actor())
                self.store.mark_rollout(rollout["id"], status=RolloutStatus.ROLLED_BACK, reason=reason)
                return self.store.get_rollout(rollout["id"])
        raise InvalidInput(f"endpoint {name!r} has no rollout to roll back",
                           hint=f"see 'modelloop endpoint show {name}'")

    def rollouts(self, name: str, *, limit: int | None = None) -> list[dict]:
        self.get(name)
        return self.store.list_rollouts(endpoint=name, limit=limit)

    # -- statistics and capture ---------------------------------------------------------------
    def stats(self, name: str | None = None) -> list[dict]:
        """Per endpoint and variant: invocations, 4xx, 5xx, model errors, latency percentiles
        (summed over every server process that served it)."""
        from modelloop.telemetry.metrics import merge, percentile

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
        from modelloop.telemetry.capture import capture_frame, read_capture

        records = read_capture(self.store, self.artifacts, name, variant=variant,
                               since=since, until=until)
        return capture_frame(records) if frame else records

    # -- online endpoints ------------------------------------------------------------------------
    def add_events(self, name: str, events: list[dict]) -> dict:
        """Labelled events (``{"features": {...}, "label": ...}``) for endpoint ``name``'s online
        variant, durable when this returns; the answer counts accepted and rejected ones."""
        from modelloop.serving.online_events import add_events, intake_for

        return add_events(intake_for(self.store), name, list(events))

    # -- the server -----------------------------------------------------------------------------
    def server_app(self, *, default_endpoint: str | None = None, board=None,
                   poll_seconds: float = 0.5, metrics_seconds: float = 10.0):
        """The app of one ``modelloop serve`` process: every protocol on a data plane serving these
        endpoints (rollouts, tokens, metric series every ``metrics_seconds``; ``board``: workers')."""
        from modelloop.serving.app import create_app
        from modelloop.serving.dataplane.plane import DataPlane
        from modelloop.serving.online_events import intake_for, learn_feedback
        from modelloop.telemetry.capture import CaptureWriter

        plane = DataPlane(self.store, self.models, CaptureWriter(self.store, self.artifacts),
                          put_metrics=self._series.put_many,
                          advance_rollouts=lambda owner: self.advance(owner=owner),
                          poll_seconds=poll_seconds, metrics_seconds=metrics_seconds,
                          features=self._features)
        return create_app(plane, add_labels=self._labels.add_records, default_endpoint=default_endpoint,
                          workers_report=board.report if board is not None else None,
                          add_events=self.add_events, append_rows=self._append_rows,
                          tokens=Tokens(self.store),
                          learn_feedback=lambda *a, **k: learn_feedback(
                              intake_for(self.store), self.store, self.artifacts, plane.recent,
                              *a, **k))
