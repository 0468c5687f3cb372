"""Where a learner's labelled events come from: intake (the default) or the event stream.

Both give events in increasing ``seq`` and are told when the learner has saved (checkpointed)
up to a seq. From intake, seq is the endpoint's event number. From the event stream (embedded or
Redis Streams, ``ws.events_stream``), labelled events are events of kind ``online.event`` whose
subject is the endpoint and payload ``{"features", "label", "inference_id"?, "time"?}``; seq is
the event's id. The stream delivers at least once, so deliveries are acknowledged only once the
checkpoint holding them is saved, and any event at or below the checkpoint's seq is skipped when
delivered again: exactly once.
"""

from __future__ import annotations

from modelloop.online.intake import MAX_READ, EventSchema, alike_events, check_event
from modelloop.store.interfaces.online import EventBatch

#: The event kind that carries a labelled event on the stream.
EVENT_KIND = "online.event"


class IntakeSource:
    """Events from :class:`~modelloop.online.intake.Intake`'s durable store, read
    :data:`MAX_READ` at a time and handed out ``limit`` at a time: an append's block is decoded
    once, however small the learner's steps."""

    def __init__(self, store):
        self.store = store
        self._buffer = EventBatch()  # events after the last handed out, in seq order

    def read(self, endpoint: str, after_seq: int, limit: int) -> EventBatch:
        buffer = self._buffer
        if not buffer or buffer.seqs[0] != after_seq + 1:
            buffer = self.store.read_online_batch(endpoint, after_seq, MAX_READ)
        if len(buffer) <= limit:
            self._buffer = EventBatch()
            return buffer
        out, self._buffer = buffer[:limit], buffer[limit:]
        return out

    def saved(self, applied_seq: int) -> None:
        """Nothing to do: intake keeps every event."""


class StreamSource:
    """Events of kind ``online.event`` from the event stream, group ``online-ENDPOINT``, one
    member (one learner per endpoint); ``schema`` checks them as intake would, refused ones are
    counted on the endpoint."""

    def __init__(self, stream, store, endpoint: str, schema: EventSchema | None = None,
                 name: str = "learner"):  # fmt: skip
        self.store, self.endpoint, self.schema = store, endpoint, schema
        self.consumer = stream.consumer(f"online-{endpoint}"[:128], name, start="earliest")
        self.held: list = []  # deliveries read and not yet acknowledged (bounded by reads)

    def read(self, endpoint: str, after_seq: int, limit: int) -> EventBatch:
        deliveries = self.consumer.read(count=max(1, min(limit, 1000)))
        new, foreign = [], []
        for delivery in deliveries:
            event = delivery.event
            if event["kind"] != EVENT_KIND or event["subject"] != endpoint:
                foreign.append(delivery)  # not a labelled event of ours: nothing to checkpoint
                continue
            self.held.append(delivery)  # acknowledged once a saved checkpoint holds it
            if event["id"] > after_seq:  # else learned before a restart: at-least-once
                new.append(event)  # delivery, exactly-once learning
        if foreign:
            self.consumer.ack(foreign)
        payloads = [event["payload"] for event in new]
        alike = alike_events(payloads, self.schema)  # the common read: checked as one list
        if alike is not None:
            return EventBatch([event["id"] for event in new],
                              [payload["features"] for payload in payloads], alike.labels,
                              [None] * len(new), [event["time"] for event in new])  # fmt: skip
        out, bad = EventBatch(), 0
        for event, payload in zip(new, payloads, strict=True):
            row, error = check_event(payload, self.schema)
            if error:
                bad += 1
                continue
            out.append(event["id"], row["features"], row["label"], row["inference_id"],
                       row["time"] or event["time"])
        if bad:  # (counted again if re-delivered after a crash before the next checkpoint)
            self.store.count_online_rejected(endpoint, bad)
        return out

    def saved(self, applied_seq: int) -> None:
        """Acknowledge the deliveries the saved checkpoint holds."""
        done = [d for d in self.held if d.event["id"] <= applied_seq]
        if done:
            self.consumer.ack(done)
            self.held = [d for d in self.held if d.event["id"] > applied_seq]
