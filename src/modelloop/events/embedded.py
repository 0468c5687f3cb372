"""The embedded event stream: consumer groups kept in the metadata store (SQLite or PostgreSQL).

A group's position and its pending deliveries are rows (``event_groups``, ``event_deliveries``);
handing out events is a conditional update of the position, so members in several processes or
on several machines never get the same event. Reading when nothing is new costs one read
transaction of two indexed queries.
"""

from __future__ import annotations

from collections.abc import Iterable

from modelloop.events.stream import Consumer, Delivery, EventStream, check_names
from modelloop.store.interfaces.events import EventStore


def _deliveries(pairs) -> list[Delivery]:
    return [Delivery(event, attempts) for event, attempts in pairs]


class StoreConsumer(Consumer):
    def __init__(self, store: EventStore, group: str, name: str):
        super().__init__(group, name)
        self.store = store

    def _pending(self, after_id: int, count: int) -> list[Delivery]:
        return _deliveries(
            self.store.redeliver_pending_events(self.group, self.name, after_id=after_id,
                                                count=count)
        )

    def _new(self, count: int) -> list[Delivery]:
        return _deliveries(self.store.deliver_new_events(self.group, self.name, count))

    def ack(self, deliveries: Iterable[Delivery]) -> None:
        self.store.ack_events(self.group, [d.event["id"] for d in deliveries])

    def claim_stale(self, min_idle: float, count: int = 100) -> list[Delivery]:
        return _deliveries(self.store.claim_stale_events(self.group, self.name, min_idle, count))


class StoreStream(EventStream):
    """Consumer groups on the workspace's metadata store."""

    def __init__(self, store: EventStore):
        self.store = store

    def consumer(self, group: str, name: str, *, start: str | int = "latest") -> StoreConsumer:
        check_names(group, name, start)
        self.store.open_event_group(group, start)
        return StoreConsumer(self.store, group, name)

    def group_info(self, group: str) -> dict | None:
        info = self.store.event_group_info(group)
        if info is None:
            return None
        return {"name": info["name"], "position": info["position"], "pending": info["pending"]}

    def __repr__(self) -> str:
        return f"StoreStream({getattr(self.store, 'safe_url', self.store)!r})"
