"""The workspace event log: one append-only record per change worth reacting to."""

from __future__ import annotations

from abc import ABC, abstractmethod


class EventStore(ABC):
    """Events are numbered in the order they were appended; readers page with ``after_id``.

    Writes of other concerns that must be seen by triggers (a dataset version created, a model
    registered, an alarm firing) append their event in their own transaction.
    """

    @abstractmethod
    def append_event(self, kind: str, subject: str, payload: dict) -> int:
        """Append one event (``payload`` is stored as JSON); returns its id."""

    @abstractmethod
    def list_events(
        self, *, after_id: int = 0, kind: str | None = None, limit: int = 1000
    ) -> list[dict]:
        """Events with id > ``after_id`` (optionally of one ``kind``), oldest first, at most
        ``limit``: ``{"id", "time", "kind", "subject", "payload"}`` with the payload decoded."""
