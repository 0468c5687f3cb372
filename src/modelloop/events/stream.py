"""The event stream: the store's event log delivered to consumer groups, at least once.

The store's ``events`` table is the source of truth: every state change appends its event in its
own transaction (a transactional outbox). A consumer group has a position and pending deliveries;
each member gets events no other member was given, oldest first, and acknowledges them once
handled. A member that restarts gets its unacknowledged deliveries again first; one that died
leaves them for another member to take with :meth:`Consumer.claim_stale`. Handlers must therefore
be idempotent (an event may come twice; its id is the natural key).

Two backends, picked by ``[events] url`` (:func:`open_stream`): the metadata store itself
(embedded, the default: SQLite or PostgreSQL, :mod:`modelloop.events.embedded`) and Redis
Streams (:mod:`modelloop.events.redis_stream`, extra ``redis``), fed from the store by a relay.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass

from modelloop.config import EVENTS_URL_SCHEMES
from modelloop.errors import ConfigError, InvalidInput

#: The longest pause between two polls of a blocking :meth:`Consumer.read`, in seconds.
MAX_POLL_INTERVAL = 0.2


@dataclass(frozen=True)
class Delivery:
    """One event handed to one member of a group."""

    #: ``{"id", "time", "kind", "subject", "payload"}`` as ``store.list_events`` gives it.
    event: dict
    #: 1 on first delivery; more when re-delivered after a restart or claimed from a dead member.
    attempts: int


class Consumer(ABC):
    """A member of a consumer group. Not thread-safe: one per thread (or process) that reads."""

    def __init__(self, group: str, name: str):
        self.group = group
        self.name = name
        # Where this member's own pending deliveries have been re-read up to; None once done.
        self._history: int | None = 0

    def read(self, count: int = 100, block: float = 0.0) -> list[Delivery]:
        """This consumer's own unacknowledged deliveries first (after a restart), then events no
        member of the group has been given, oldest first; waits up to ``block`` s for one."""
        if count < 1 or block < 0:
            raise InvalidInput(f"read needs count >= 1 and block >= 0 (got {count}, {block})")
        if self._history is not None:
            got = self._pending(self._history, count)
            if got:
                self._history = got[-1].event["id"]
                return got
            self._history = None
        deadline = time.monotonic() + block
        pause = 0.01
        while True:
            got = self._new(count)
            left = deadline - time.monotonic()
            if got or left <= 0:
                return got
            time.sleep(min(pause, left))
            pause = min(pause * 2, MAX_POLL_INTERVAL)

    @abstractmethod
    def ack(self, deliveries: Iterable[Delivery]) -> None:
        """Mark these deliveries handled: the group never hands them out again."""

    @abstractmethod
    def claim_stale(self, min_idle: float, count: int = 100) -> list[Delivery]:
        """Take over deliveries other members have held unacknowledged for ``min_idle`` s (this
        member's own too: an event whose handling failed and was not acknowledged comes back
        this way), oldest first, with their attempts counted up."""

    @abstractmethod
    def _pending(self, after_id: int, count: int) -> list[Delivery]:
        """This member's own unacknowledged deliveries of events after ``after_id``."""

    @abstractmethod
    def _new(self, count: int) -> list[Delivery]:
        """Events no member has been given yet, now handed to this one (no waiting)."""


class EventStream(ABC):
    """The event log of one workspace as a stream with consumer groups."""

    @abstractmethod
    def consumer(self, group: str, name: str, *, start: str | int = "latest") -> Consumer:
        """A member of consumer group ``group`` (created on first use at ``start``: "earliest",
        "latest" or an event id to start after)."""

    @abstractmethod
    def group_info(self, group: str) -> dict | None:
        """``{"name", "position", "pending": {member: count}}`` of a group, None if unknown."""

    def close(self) -> None:  # noqa: B027 - optional for backends holding no resources
        """Release connections (the store stays open: it is the workspace's)."""


def check_names(group: str, name: str, start) -> None:
    """Refuse names a backend could not keep (empty, too long) and an unknown start."""
    for what, value in (("group", group), ("consumer", name)):
        if not isinstance(value, str) or not value or len(value) > 128:
            raise InvalidInput(f"a consumer {what} name is 1 to 128 characters, not {value!r}")
    if start not in ("earliest", "latest") and (
        not isinstance(start, int) or isinstance(start, bool) or start < 0
    ):
        raise InvalidInput(
            f"a consumer group starts at 'earliest', 'latest' or an event id, not {start!r}"
        )


def open_stream(config, store) -> EventStream:
    """The stream ``[events] url`` names: "" (the default) the metadata store itself,
    ``redis://host:port/db`` (or ``rediss://``, ``unix://``) Redis Streams fed from the store."""
    url = getattr(config, "events_url", "") or ""
    if not url:
        from modelloop.events.embedded import StoreStream

        return StoreStream(store)
    if url.split("://", 1)[0] in EVENTS_URL_SCHEMES:
        from modelloop.events.redis_stream import RedisStream

        return RedisStream(url, store)
    raise ConfigError(
        f"[events] url {url!r} is neither empty (the metadata store) nor a redis:// URL",
        hint='leave it out, or e.g. url = "redis://127.0.0.1:6379/0"',
    )
