"""Redis Streams as the event stream (extra ``redis``): the scale-out backend.

The metadata store stays the source of truth. A relay copies its events into one Redis stream,
each under the explicit entry id ``<event id>-1``: Redis refuses an XADD whose id is not above the
stream's last, so two relays at once, or a relay re-run after a crash, never add an event twice,
and the stream keeps the store's order. Any consumer pumps the relay before reading new entries
(one indexed query of the store when nothing is new). Groups, pending entries and their delivery
counts are Redis's own: XREADGROUP hands out, XACK acknowledges, XAUTOCLAIM takes over a dead
member's entries.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from modelloop.errors import ConfigError
from modelloop.events.stream import Consumer, Delivery, EventStream, check_names
from modelloop.store.interfaces.events import EventStore

#: The stream's key unless the URL names another (``redis://host:port/0?stream=NAME``). One
#: workspace per key: workspaces sharing a Redis database need a key each.
DEFAULT_KEY = "modelloop:events"
#: Events copied per store query and Redis round trip.
RELAY_BATCH = 500


def _entry_id(event_id: int) -> str:
    return f"{event_id}-1"


def _event_id(entry_id: str) -> int:
    return int(entry_id.split("-", 1)[0])


def _split_url(url: str) -> tuple[str, str | None]:
    """The URL for redis-py and the stream key its query names, if any."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    key = next((v for k, v in query if k == "stream"), None)
    rest = urlencode([(k, v) for k, v in query if k != "stream"])
    return urlunsplit(parts._replace(query=rest)), key


class RedisStream(EventStream):
    """The store's events relayed into the Redis stream ``key`` at ``url``."""

    def __init__(self, url: str, store: EventStore, *, key: str | None = None):
        try:
            import redis
        except ModuleNotFoundError:
            raise ConfigError(
                "[events] url names Redis, but the redis client is not installed",
                hint="pip install 'modelloop[redis]'",
            ) from None
        url, url_key = _split_url(url)
        self.store = store
        self.key = key or url_key or DEFAULT_KEY
        try:
            self.client = redis.Redis.from_url(url, decode_responses=True)
        except ValueError as exc:
            raise ConfigError(f"invalid Redis URL for [events] url: {exc}") from None
        self._redis = redis
        self._safe_url = urlsplit(url)._replace(netloc=urlsplit(url).hostname or "").geturl()
        #: The last event id known to be in the stream (relayed by this or another relay).
        self._relayed: int | None = None

    # -- the relay -------------------------------------------------------------------------------
    def relay(self) -> int:
        """Copy the store's events not in the stream yet; returns how many this call added."""
        if self._relayed is None:
            self._relayed = self._last_in_stream()
        added = 0
        while True:
            events = self.store.list_events(after_id=self._relayed, limit=RELAY_BATCH)
            if not events:
                return added
            # Past the first event the stream must exist: NOMKSTREAM tells a stream that was
            # lost (a Redis restarted without persistence, a key deleted), copied again whole.
            exists = self._relayed > 0
            pipe = self.client.pipeline(transaction=False)
            for event in events:
                pipe.xadd(self.key, {"e": _encode(event)}, id=_entry_id(event["id"]),
                          nomkstream=exists)
            results = pipe.execute(raise_on_error=False)
            if exists and results[0] is None:
                self._relayed = 0
                continue
            for result in results:
                if isinstance(result, Exception):
                    if "equal or smaller" not in str(result):
                        raise result
                elif result is not None:  # refused ones were added by another relay first
                    added += 1
            self._relayed = events[-1]["id"]
            if len(events) < RELAY_BATCH:
                return added

    def _last_in_stream(self) -> int:
        try:
            info = self.client.xinfo_stream(self.key)
        except self._redis.ResponseError:  # no stream yet
            return 0
        return _event_id(info["last-generated-id"])

    # -- groups ----------------------------------------------------------------------------------
    def consumer(self, group: str, name: str, *, start: str | int = "latest") -> RedisConsumer:
        check_names(group, name, start)
        self._reachable(self.relay)
        after = {"earliest": 0, "latest": self._relayed}.get(start, start)
        self.create_group(group, _entry_id(after) if after else "0")
        return RedisConsumer(self, group, name)

    def create_group(self, group: str, last_id: str) -> None:
        """Create ``group`` (and the stream) unless it exists: an existing group keeps its
        position."""
        try:
            self.client.xgroup_create(self.key, group, id=last_id, mkstream=True)
        except self._redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def group_info(self, group: str) -> dict | None:
        try:
            groups = self.client.xinfo_groups(self.key)
        except self._redis.ResponseError:
            return None
        for g in groups:
            if g["name"] == group:
                members = self.client.xinfo_consumers(self.key, group)
                return {
                    "name": group,
                    "position": _event_id(g["last-delivered-id"]),
                    "pending": {m["name"]: m["pending"] for m in members if m["pending"]},
                }
        return None

    def _reachable(self, call):
        try:
            return call()
        except self._redis.ConnectionError as exc:
            raise ConfigError(f"cannot reach Redis at {self._safe_url} ([events] url): {exc}",
                              hint="start Redis, or leave [events] url empty") from None

    def close(self) -> None:
        self.client.close()

    def __repr__(self) -> str:
        return f"RedisStream({self._safe_url!r}, key={self.key!r})"


class RedisConsumer(Consumer):
    def __init__(self, stream: RedisStream, group: str, name: str):
        super().__init__(group, name)
        self.stream = stream
        self.client = stream.client

    def _pending(self, after_id: int, count: int) -> list[Delivery]:
        entries = self._read(_entry_id(after_id) if after_id else "0", count)
        return self._with_attempts(entries)

    def _new(self, count: int) -> list[Delivery]:
        self.stream.relay()
        return [Delivery(_decode(eid, fields), 1) for eid, fields in self._read(">", count)]

    def _read(self, start: str, count: int) -> list[tuple[str, dict]]:
        try:
            reply = self.client.xreadgroup(self.group, self.name, {self.stream.key: start},
                                           count=count)
        except self.stream._redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # The stream or the group is gone (a Redis restarted without persistence, a key
            # deleted): copy the store's events again and start the group over. At least once:
            # what the group had handled comes again, and handlers are idempotent.
            self.stream.relay()
            self.stream.create_group(self.group, "0")
            reply = self.client.xreadgroup(self.group, self.name, {self.stream.key: start},
                                           count=count)
        entries = reply[0][1] if reply else []
        gone = [eid for eid, fields in entries if not fields]  # trimmed from the stream
        if gone:
            self.client.xack(self.stream.key, self.group, *gone)
        return [(eid, fields) for eid, fields in entries if fields]

    def _with_attempts(self, entries: list[tuple[str, dict]]) -> list[Delivery]:
        """Deliveries with Redis's delivery counts (history reads and claims count them up)."""
        if not entries:
            return []
        pipe = self.client.pipeline(transaction=False)
        for eid, _fields in entries:  # one entry each: the range may hold others of this member
            pipe.xpending_range(self.stream.key, self.group, eid, eid, 1, self.name)
        counts = {p["message_id"]: p["times_delivered"] for got in pipe.execute() for p in got}
        return [Delivery(_decode(eid, fields), counts.get(eid, 1)) for eid, fields in entries]

    def ack(self, deliveries: Iterable[Delivery]) -> None:
        ids = [_entry_id(d.event["id"]) for d in deliveries]
        if ids:
            self.client.xack(self.stream.key, self.group, *ids)

    def claim_stale(self, min_idle: float, count: int = 100) -> list[Delivery]:
        claimed: list[tuple[str, dict]] = []
        cursor = "0-0"
        while len(claimed) < count:
            reply = self.client.xautoclaim(self.stream.key, self.group, self.name,
                                           int(max(0.0, min_idle) * 1000), cursor,
                                           count=count - len(claimed))
            cursor, entries = reply[0], reply[1]
            claimed += [(eid, fields) for eid, fields in entries if fields]
            if cursor == "0-0":
                break
        claimed.sort(key=lambda e: _event_id(e[0]))
        return self._with_attempts(claimed)


def _encode(event: dict) -> str:
    return json.dumps(
        {"time": event["time"].isoformat(), "kind": event["kind"], "subject": event["subject"],
         "payload": event["payload"]},
        default=str,
    )


def _decode(entry_id: str, fields: dict) -> dict:
    body = json.loads(fields["e"])
    return {"id": _event_id(entry_id), "time": datetime.fromisoformat(body["time"]),
            "kind": body["kind"], "subject": body["subject"], "payload": body["payload"]}
