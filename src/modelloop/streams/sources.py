"""Where a stream-fed dataset's rows come from.

A source hands out :class:`Entry` objects in order and says, for the entries of one micro-batch,
what the version's commit must record (a :class:`~modelloop.data.stream_rows.MicroBatch`) and
what to do once it is committed. Exactly once rests on the commit, not on the source: whatever a
source re-delivers after a crash is either still uncommitted (and committed now) or recognised as
committed by the position recorded with the version (and only acknowledged).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

from modelloop.data.stream_rows import MicroBatch
from modelloop.errors import ConfigError, InvalidInput

log = logging.getLogger("modelloop.streams")

#: How often the append buffer is polled when it is empty (a read is one small query).
BUFFER_POLL_SECONDS = 0.2


@dataclass
class Entry:
    """One delivery: its id in the source, its rows as JSON Lines, how many, and when it
    arrived (``time.monotonic()`` scale), which starts a micro-batch's clock."""

    id: str
    lines: str
    rows: int = 1
    arrived: float = field(default_factory=time.monotonic)


class BufferSource:
    """The dataset's append buffer in the store (``stream_rows``): an entry is one append. A
    commit deletes the appends it took, in its transaction; nothing is acknowledged after."""

    name = "rows"

    def __init__(self, store, dataset: str):
        self.store, self.dataset = store, dataset
        self.handed: set[int] = set()
        self.position = self._committed()

    def _committed(self) -> str | None:
        return next((o["position"] for o in self.store.stream_offsets(self.dataset)
                     if o["source"] == self.name), None)

    def read(self, max_rows: int, timeout: float) -> list[Entry]:
        rows = self.store.stream_rows(self.dataset, max_rows=max_rows, skip=tuple(self.handed))
        if not rows:
            time.sleep(min(timeout, BUFFER_POLL_SECONDS))
            return []
        now, clock = datetime.now(UTC), time.monotonic()
        out = []
        for r in rows:
            self.handed.add(r["id"])
            waited = max(0.0, (now - r["created_at"]).total_seconds())
            out.append(Entry(str(r["id"]), r["body"], r["rows"], clock - waited))
        return out

    def batch(self, entries: list[Entry], required: tuple[str, ...]) -> MicroBatch:
        return MicroBatch(self.name, entries[0].id, entries[-1].id, expected=self.position,
                          consumed=tuple(int(e.id) for e in entries), required=required)

    def committed(self, entries: list[Entry], batch: MicroBatch) -> None:
        self.handed -= {int(e.id) for e in entries}
        self.position = batch.position

    def reset(self) -> None:
        """After a Conflict: forget what was handed out; the buffer holds what is left."""
        self.handed.clear()
        self.position = self._committed()

    def close(self) -> None:
        pass


def _redis_id(text: str) -> tuple[int, int]:
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


class RedisSource:
    """A Redis stream read through a consumer group (``XREADGROUP``): entries are acknowledged
    (``XACK``) only after the version holding them is committed. A restarted consumer first reads
    its own pending entries again; those at or before the position committed with the dataset
    are acknowledged and dropped, the rest are committed now.

    An entry's row is its ``row`` field as JSON text (a line of JSON Lines), or else its fields
    as a flat object (text values, converted to the dataset's types as a CSV's are). One consumer
    name per dataset and source (the default): a group's other members would interleave ids,
    and their commits are refused (Conflict) rather than risk a duplicate."""

    def __init__(self, url: str, dataset: str, store, consumer: str | None = None):
        parts = urlsplit(with_password(url))
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.stream = query.pop("stream", None)
        if not self.stream:
            raise InvalidInput(f"the Redis URL {parts.scheme}://{parts.hostname}:"
                               f"{parts.port or 6379}{parts.path} names no stream",
                               hint="add ?stream=NAME (and &group=GROUP) to the Redis URL")
        self.group = query.pop("group", f"modelloop-{dataset}")
        start = query.pop("start", "0")
        if query:
            raise InvalidInput(f"unknown Redis stream option {', '.join(sorted(query))}",
                               hint="the options are stream, group and start (0 or $)")
        try:
            import redis
        except ImportError as exc:
            raise InvalidInput("Redis streams need the redis package",
                               hint="pip install 'modelloop[redis]'") from exc
        self._redis = redis
        self.client = redis.Redis.from_url(parts._replace(query="").geturl(),
                                           decode_responses=True)
        db = (parts.path or "/0").strip("/") or "0"
        self.name = f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}/{db}/" \
                    f"{self.stream}#{self.group}"
        self.store, self.dataset = store, dataset
        self.consumer, self.start = consumer or dataset, start
        try:
            self._create_group()
        except redis.ConnectionError as exc:
            raise InvalidInput(f"cannot reach Redis at {self.name}: {exc}",
                               hint="check the URL and that the server runs") from exc
        self.reset()

    def _create_group(self) -> None:
        try:
            self.client.xgroup_create(self.stream, self.group, id=self.start, mkstream=True)
        except self._redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def reset(self) -> None:
        #: the position recorded with the dataset: what the next commit moves (compare and set)
        self.position = next((o["position"] for o in self.store.stream_offsets(self.dataset)
                              if o["source"] == self.name), None)
        #: entries at or before it are in a version: None when this is a new stream
        self.done = self._continued(self.position)
        self._pending_after = "0"  # this consumer's unacknowledged entries first

    def _continued(self, position: str | None) -> str | None:
        """``position`` if the stream is the one it was read from, else None (a new stream
        under the key, said in the log). A stream never hands out an id at or below its last
        generated one, so a position beyond that was read from a stream deleted since; and a
        stream whose first entry is after the position (created again, or trimmed past it)
        holds nothing the position covers: its every entry is read."""
        if position is None:
            return None
        info = self.client.xinfo_stream(self.stream)
        last = info.get("last-generated-id") or "0-0"
        first = (info.get("first-entry") or (None,))[0]
        if _redis_id(position) > _redis_id(last):
            why = f"its last id {last} is before"
        elif first is not None and _redis_id(first) > _redis_id(position):
            why = f"its first entry {first} is after"
        else:
            return position
        log.warning("%s: a new stream (%s the position %s committed to %s): reading it from "
                    "its start", self.name, why, position, self.dataset)
        return None

    def read(self, max_rows: int, timeout: float) -> list[Entry]:
        try:
            return self._read(max_rows, timeout)
        except self._redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
        # the stream (and its group with it) was deleted while we ran: start on the new one
        self._create_group()
        self.reset()
        return []

    def _read(self, max_rows: int, timeout: float) -> list[Entry]:
        while self._pending_after is not None:
            got = self.client.xreadgroup(self.group, self.consumer,
                                         {self.stream: self._pending_after}, count=max_rows)
            entries = got[0][1] if got else []
            if not entries:
                self._pending_after = None
                break
            self._pending_after = entries[-1][0]
            if fresh := self._fresh(entries):  # not only entries already in a version
                return fresh
        got = self.client.xreadgroup(self.group, self.consumer, {self.stream: ">"},
                                     count=max_rows, block=max(1, int(timeout * 1000)))
        return self._fresh(got[0][1] if got else [])

    def _fresh(self, entries) -> list[Entry]:
        """The entries not yet in a version; those that are (delivered again after a crash
        between the commit and the acknowledgement) are acknowledged now."""
        import json

        done = _redis_id(self.done) if self.done else None
        old = [i for i, _ in entries if done is not None and _redis_id(i) <= done]
        if old:
            self.client.xack(self.stream, self.group, *old)
        out = []
        for entry_id, fields in entries:
            if done is not None and _redis_id(entry_id) <= done:
                continue
            fields = fields or {}
            line = fields["row"] if set(fields) == {"row"} else json.dumps(fields)
            if "\n" in line or "\r" in line:
                line = line.replace("\r", " ").replace("\n", " ")  # one line, one row
            out.append(Entry(entry_id, line + "\n"))
        return out

    def batch(self, entries: list[Entry], required: tuple[str, ...]) -> MicroBatch:
        return MicroBatch(self.name, entries[0].id, entries[-1].id, expected=self.position,
                          required=required)

    def committed(self, entries: list[Entry], batch: MicroBatch) -> None:
        self.position = self.done = batch.position
        self.client.xack(self.stream, self.group, *[e.id for e in entries])

    def close(self) -> None:
        self.client.close()


#: Where a consumer whose recorded URL holds no password (:func:`redacted`) finds it.
ENV_REDIS_PASSWORD = "MODELLOOP_REDIS_PASSWORD"
#: What stands for the password in a recorded URL.
REDACTED = "***"


def redacted(url: str) -> str:
    """``url`` as the store records it (``modelloop up`` runs the consumer again from it, and
    its command line is visible to every user of the machine): the password replaced by
    :data:`REDACTED`, which :func:`with_password` fills in again from the environment."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=f"{parts.username or ''}:{REDACTED}@{host}").geturl()


def with_password(url: str, environ=None) -> str:
    """``url`` with a redacted password replaced by ``$MODELLOOP_REDIS_PASSWORD``; a
    :class:`~modelloop.errors.ConfigError` saying so when it is unset."""
    from urllib.parse import quote

    parts = urlsplit(url)
    if parts.password != REDACTED:
        return url
    password = (os.environ if environ is None else environ).get(ENV_REDIS_PASSWORD)
    host = parts.netloc.rsplit("@", 1)[1]
    if not password:
        raise ConfigError(f"the password of Redis at {host} is not stored with the consumer "
                          f"(its URL is recorded as {redacted(url)})",
                          hint=f"set {ENV_REDIS_PASSWORD} where the consumer runs ('modelloop up' "
                               "passes its environment on), or give the URL with its password")
    return parts._replace(netloc=f"{parts.username or ''}:{quote(password, safe='')}@{host}"
                          ).geturl()  # fmt: skip


def open_source(url: str, dataset: str, store, consumer: str | None = None):
    """The source ``url`` names: ``rows`` (the append buffer) or ``redis://…?stream=S&group=G``."""
    if url in ("rows", "http"):
        return BufferSource(store, dataset)
    if url.startswith(("redis://", "rediss://")):
        return RedisSource(url, dataset, store, consumer)
    raise InvalidInput(f"unknown stream source {url!r}",
                       hint="use 'rows' (rows POSTed to the dataset), "
                            "redis://HOST:PORT/DB?stream=NAME&group=GROUP, or a folder to watch")
