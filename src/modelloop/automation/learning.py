"""The learner of one online endpoint, as a process: exactly one at a time per endpoint.

``modelloop learn NAME`` (started per online endpoint by ``modelloop serve`` and so by ``up``)
runs :func:`run_learner`: it holds the lease ``learner:NAME`` (a ``leases`` row, as the
controller's leadership: :class:`~modelloop.automation.leader.Leader`) and, while it holds it,
steps the endpoint's :class:`~modelloop.online.learner.Learner`. Several servers on one store
each start one; the others wait as standbys and one takes over within a lease of the holder's
death. A learner (re)starts from its latest checkpoint plus the events after it, so a kill loses
no acknowledged event and learns none twice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from modelloop.automation.leader import Leader
from modelloop.errors import Conflict
from modelloop.serving.spec import online_variant

log = logging.getLogger(__name__)

LEASE_PREFIX = "learner:"
IDLE_SECONDS = 0.02  # wait when no event is waiting (the intake is polled; one cheap read)


def lease_name(endpoint: str) -> str:
    return f"{LEASE_PREFIX}{endpoint}"


def run_learner(ws, endpoint: str, stop: threading.Event, *, lease_seconds: float = 10.0,
                batch: int = 1000, say: Callable[[str], None] = lambda _: None) -> int:
    """Learn ``endpoint``'s events while holding its lease, until ``stop``; events learned.

    Losing the lease (the store unreachable for a while, this process paused) drops the learner:
    whoever leads next starts from the last checkpoint, and this one, if it leads again, does too.
    """
    record = ws.endpoints.get(endpoint)
    variant = online_variant(record["spec"])
    if variant is None:
        from modelloop.errors import InvalidInput

        raise InvalidInput(f"endpoint {endpoint!r} is not online: it has no learner",
                           hint="create one with 'modelloop endpoint create NAME --online MODEL'")
    leader = Leader(ws.store, name=lease_name(endpoint), ttl=lease_seconds,
                    on_change=lambda state: say(f"learner of {endpoint}: {state}"))
    leader.start()
    learned = 0
    try:
        while not stop.is_set():
            if not leader.leading:
                stop.wait(min(leader.ttl / 4, 1.0))
                continue
            term = leader.term
            learner = open_learner(ws, endpoint, variant, term=term, batch=batch)
            try:
                # Learner.run's own loop: store failures retried with a growing pause, a last
                # checkpoint when it ends while this process still leads in the same term.
                learned += learner.run(stop, IDLE_SECONDS,
                                       holding=lambda term=term: leader.leading and leader.term == term)
            except Conflict as exc:  # a learner of a later term saved: this one stands down
                say(f"learner of {endpoint}: {exc}")
    finally:
        leader.release()
    return learned


def open_learner(ws, endpoint: str, variant: dict, term: int | None = None,
                 batch: int = 1000):
    """The :class:`~modelloop.online.learner.Learner` of an endpoint's online ``variant``, from
    its latest checkpoint; its frozen champion is the endpoint's batch variant, if it has one
    (a primary, else a shadow: scored on the same events, never learning)."""
    from modelloop.online import EventSchema
    from modelloop.online.guard import GuardConfig
    from modelloop.online.learner import Learner
    from modelloop.online.sources import StreamSource

    online = variant["online"]
    schema = EventSchema(features={f["name"]: f["type"] for f in online["features"]},
                         label=online["label"])
    source = StreamSource(ws.events_stream, ws.store, endpoint, schema) if online.get(
        "source") == "stream" else None
    record = ws.endpoints.get(endpoint)
    batches = sorted((v for v in record["spec"]["variants"] if not v.get("online")),
                   key=lambda v: v["role"] != "primary")  # a primary first, else a shadow
    champion = _champion(ws, batches[0]["model"], online) if batches else None
    return Learner(ws.store, endpoint, variant["name"], spec=online["model"],
                   categorical=[f["name"] for f in online["features"] if f["type"] == "category"],
                   metric=online.get("metric"), guard=GuardConfig(**(online.get("guard") or {})),
                   champion=champion, series=ws.metric_series, alarms=ws.alarms,
                   publish_interval=online.get("publish_seconds", 0.2), registry=ws.models,
                   snapshot_model=online.get("snapshot_model"),
                   snapshot_every=online.get("snapshot_every"),
                   schema=schema, source=source, term=term, batch=batch)


def _champion(ws, ref: str, online: dict):
    """A registered version predicting lists of feature dicts (the learner's champion): labels,
    or with ``proba`` River's ``{class: probability}`` dicts, which a metric such as LogLoss or
    ROCAUC needs (scored on labels, the champion's LogLoss was that of certain guesses)."""
    import pandas as pd

    packaged = ws.models.load(ref)
    names = [f["name"] for f in online["features"]]

    def predict(xs: list[dict], proba: bool = False) -> list:
        frame = pd.DataFrame(xs, columns=names)
        if not proba:
            return list(packaged.predict(frame))
        classes = packaged.manifest.classes or []
        return [dict(zip(classes, map(float, row), strict=True))
                for row in packaged.predict_proba(frame)]
    return predict
