"""Labelled events of an online endpoint, as serving receives them: checked against the online
variant's features and label type, then handed to the learner's durable intake
(:class:`modelloop.online.intake.Intake`) before anyone is told they were accepted.

Two ways in: ``POST /endpoints/NAME/events`` (features and a label) and feedback
(``POST /endpoints/NAME/feedback``: an inference id and a label), joined here to the features of
the request that id answered: first from the server's own memory of recent requests, then from
the endpoint's captured traffic (a request answered by another worker process).

Every event is answered: accepted, or rejected with its index and why (the intake checks them
against the online variant's features and label type: a missing or extra feature, a value or
label of the wrong type; here: an unknown inference id). The accepted ones are kept even when
others are rejected; bad ones never reach the learner.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelloop.errors import InvalidInput
from modelloop.serving.spec import online_variant

if TYPE_CHECKING:
    from modelloop.artifacts import ArtifactStore
    from modelloop.serving.dataplane.recent import RecentRequests
    from modelloop.store.base import MetadataStore

#: Fields of an event besides its features.
EVENT_FIELDS = ("label", "time", "inference_id")


def online_spec(store: MetadataStore, endpoint: str) -> dict:
    """The endpoint's online variant's ``online`` part; InvalidInput if it has none."""
    from modelloop.errors import NotFound

    record = store.get_endpoint(endpoint)
    if record is None:
        raise NotFound(f"no endpoint named {endpoint!r}")
    variant = online_variant(record["spec"])
    if variant is None:
        raise InvalidInput(f"endpoint {endpoint!r} has no online variant: it learns from no events",
                           hint="create one with 'modelloop endpoint create NAME --online MODEL "
                                "--features ...'")
    return variant["online"]


def event_schema(online: dict):
    """The intake's :class:`~modelloop.online.intake.EventSchema` of an online variant."""
    from modelloop.online import EventSchema

    return EventSchema(features={f["name"]: f["type"] for f in online["features"]},
                       label=online["label"])


def endpoint_schema(store: MetadataStore, endpoint: str):
    """What the intake checks ``endpoint``'s events against (its ``schemas`` callable)."""
    return event_schema(online_spec(store, endpoint))


def normalized(event):
    """An event in the intake's shape: ``{"features": {...}, "label", "time"?,
    "inference_id"?}``; a flat one (features next to ``label``) is nested. Anything else is
    passed on as it is, for the intake to refuse with its reason."""
    if not isinstance(event, dict) or isinstance(event.get("features"), dict):
        return event
    out = {"features": {k: v for k, v in event.items() if k not in EVENT_FIELDS}}
    out.update((k, event[k]) for k in EVENT_FIELDS if k in event)
    return out


def intake_for(store: MetadataStore):
    """The learner's intake, checking each endpoint's events against its online variant."""
    import functools

    from modelloop.online import Intake

    return Intake(store, functools.partial(endpoint_schema, store))


def add_events(intake, endpoint: str, events: list) -> dict:
    """Append ``events`` durably (in order; the intake checks each against the endpoint's
    schema); the answer counts accepted and rejected ones and names each rejected one by its
    index in ``events``. NotFound / InvalidInput for an endpoint that is not online."""
    online = online_spec(intake.store, endpoint)
    events = [normalized(e) for e in events]
    if online.get("source") == "stream":
        return _to_stream(intake.store, online, endpoint, events)
    out = intake.append(endpoint, events)
    rejected = out.get("rejected") or []
    return _answer(endpoint, out["accepted"], rejected, seqs=out.get("seqs"))


def _to_stream(store: MetadataStore, online: dict, endpoint: str, events: list) -> dict:
    """Checked as the intake checks them, then appended to the event log as ``online.event``
    events, all in one transaction (durable when this returns; the stream, Redis too, delivers
    them)."""
    from modelloop.online.intake import check_event
    from modelloop.online.sources import EVENT_KIND

    schema, rejected, good = event_schema(online), [], []
    for i, event in enumerate(events):
        _, error = check_event(event, schema)
        if error:
            rejected.append({"index": i, "error": error})
        else:
            good.append(event)
    ids = store.append_events(EVENT_KIND, endpoint, good)  # one transaction per request
    return _answer(endpoint, len(ids), rejected, seqs=[ids[0], ids[-1]] if ids else None)


def _answer(endpoint: str, accepted: int, rejected: list[dict], **extra) -> dict:
    """What the events and feedback routes answer; with rejected events, a ``message`` naming
    the first (the shape of every 4xx body)."""
    out = {"endpoint": endpoint, "accepted": accepted, "rejected": len(rejected), **extra,
           "errors": rejected[:100]}
    if rejected:
        first = rejected[0]
        out["message"] = (f"{len(rejected)} event(s) rejected, {accepted} accepted and kept; "
                          f"event {first['index']}: {first['error']}")
    return out


def feedback_events(store: MetadataStore, artifacts: ArtifactStore, recent: RecentRequests,
                    endpoint: str, records: list[dict], *, id_column: str = "inference_id",
                    label_column: str = "label") -> tuple[list, list[dict]]:
    """Feedback records as labelled events joined to their requests' features: (events, with
    None where a record could not be joined; the rejected as ``{"index", "error"}``). A request
    answered by a batch variant may carry more columns than the online model's features: only
    those are kept."""
    names = [f["name"] for f in online_spec(store, endpoint)["features"]]

    def only(features: dict) -> dict:
        return {n: features[n] for n in names if n in features} if all(
            n in features for n in names) else features

    events: list = [None] * len(records)
    rejected, wanted = [], {}
    for i, rec in enumerate(records):
        ident = rec.get(id_column)
        if ident is None or label_column not in rec:
            rejected.append({"index": i, "error": f"needs {id_column!r} and {label_column!r}"})
            continue
        ident = str(ident)
        features = recent.features(endpoint, ident)
        if features is None:
            wanted[i] = ident
        else:
            events[i] = {"features": only(features), "label": rec[label_column],
                         "inference_id": ident}
    if wanted:
        from modelloop.telemetry.capture_join import captured_features

        found = captured_features(store, artifacts, endpoint, set(wanted.values()))
        for i, ident in wanted.items():
            if ident in found:
                events[i] = {"features": only(found[ident]), "label": records[i][label_column],
                             "inference_id": ident}
            else:
                rejected.append({"index": i, "error": f"unknown inference id {ident!r}: no "
                                 "request of this endpoint answered it (or it is not captured)"})
    return events, rejected


def learn_feedback(intake, store, artifacts, recent, endpoint: str, records: list[dict],
                   **columns) -> dict:
    """Feedback on an online endpoint: joined, checked and appended as labelled events; the
    answer numbers records as they were sent."""
    events, rejected = feedback_events(store, artifacts, recent, endpoint, records, **columns)
    joined = [(i, e) for i, e in enumerate(events) if e is not None]
    out = add_events(intake, endpoint, [e for _, e in joined])
    errors = [{"index": joined[r["index"]][0], "error": r["error"]} for r in out["errors"]]
    return _answer(endpoint, out["accepted"],
                   sorted([*rejected, *errors], key=lambda r: r["index"]))
