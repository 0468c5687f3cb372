"""The workspace event log: one append-only record per change worth reacting to, and the consumer
groups that read it (``modelloop.events`` builds its embedded stream on these)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable


class EventStore(ABC):
    """Events are numbered in the order they were appended; readers page with ``after_id``.

    Writes of other concerns that must be seen by triggers (a dataset version created, a model
    registered, an alarm firing) append their event in their own transaction: the event log is a
    transactional outbox. Ids become visible in order: a reader that has seen event N never later
    sees a new event below N (on PostgreSQL, appends are serialized from the insert to the commit).

    Consumer groups: a group has a position (the last event id handed to any member) and pending
    deliveries (handed to a member, not acknowledged yet). Deliveries are ``(event, attempts)``
    pairs, ``event`` as :meth:`list_events` gives it.
    """

    @abstractmethod
    def append_event(self, kind: str, subject: str, payload: dict) -> int:
        """Append one event (``payload`` is stored as JSON); returns its id."""

    @abstractmethod
    def append_events(self, kind: str, subject: str, payloads: list[dict]) -> list[int]:
        """Append several events in one transaction, ids in the list's order; their ids."""

    @abstractmethod
    def list_events(
        self, *, after_id: int = 0, kind: str | None = None, limit: int = 1000,
        newest_first: bool = False,
    ) -> list[dict]:  # fmt: skip
        """Events with id > ``after_id`` (optionally of one ``kind``), oldest first (or, with
        ``newest_first``, the latest ``limit`` of them, newest first: what a dashboard shows), at
        most ``limit``: ``{"id", "time", "kind", "subject", "payload"}`` with the payload
        decoded."""

    @abstractmethod
    def open_event_group(self, group: str, start: str | int = "latest") -> int:
        """Create consumer group ``group`` unless it exists, positioned at ``start``:
        ``"earliest"`` (before the first event), ``"latest"`` (after the last event appended so
        far) or an event id to start after. Returns the group's position; an existing group keeps
        its own (concurrent creators agree on one)."""

    @abstractmethod
    def deliver_new_events(self, group: str, consumer: str, count: int = 100) -> list[tuple]:
        """Hand ``consumer`` up to ``count`` events after the group's position, oldest first,
        record them as its pending deliveries (attempts 1) and move the position past them. Two
        members asking at once never get the same event. Unknown group: NotFound."""

    @abstractmethod
    def redeliver_pending_events(
        self, group: str, consumer: str, *, after_id: int = 0, count: int = 100
    ) -> list[tuple]:
        """``consumer``'s own pending deliveries of events after ``after_id``, oldest first, each
        one's attempts counted up and its delivery time reset (a restarted member's history)."""

    @abstractmethod
    def ack_events(self, group: str, event_ids: Iterable[int]) -> int:
        """Forget these pending deliveries of ``group`` (whichever member holds them); returns how
        many were pending. Acknowledging twice is harmless."""

    @abstractmethod
    def claim_stale_events(
        self, group: str, consumer: str, min_idle: float, count: int = 100
    ) -> list[tuple]:
        """Move to ``consumer`` up to ``count`` pending deliveries of ``group`` delivered at
        least ``min_idle`` seconds ago (to any member, this one included), oldest first, each
        one's attempts counted up. Two claimers at once never both get one delivery."""

    @abstractmethod
    def event_group_info(self, group: str) -> dict | None:
        """``{"name", "position", "created_at", "pending": {consumer: count}}``, or None."""
