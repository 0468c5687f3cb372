"""SQL of online learning: labelled events and online variants' models."""

from __future__ import annotations

import json

import sqlalchemy as sa

from modelloop.errors import Conflict, InvalidInput
from modelloop.store.interfaces.online import AlikeEvents, EventBatch, OnlineStore
from modelloop.store.sql.engine import SqlBase, aware, dumps, row_dict, utcnow
from modelloop.store.sql.event_blocks import decode, encode, encode_alike
from modelloop.store.tables.online import online_event_blocks, online_models, online_streams

#: Most events one append takes (intake refuses more in one request).
MAX_APPEND = 10_000
#: Events per stored block: an append is cut into blocks of this many (one transaction). Small
#: JSON documents decode several times faster per event than one of 10,000 (measured: orjson,
#: 20 features: 19 ms for 100 blocks of 100 events, 73 ms for one of 10,000).
BLOCK = 256


_streams = online_streams.c
# Built once: an append's statements, with their parameters bound at execution (building them
# per append cost more than executing them: SQLAlchemy's expression and cache-key work).
_BUMP = online_streams.update().where(_streams.endpoint == sa.bindparam("e")).values(
    last_seq=_streams.last_seq + sa.bindparam("n"), rejected=_streams.rejected + sa.bindparam("r"))
_BUMP_RETURNING = _BUMP.returning(_streams.last_seq)
_LAST_SEQ = sa.select(_streams.last_seq).where(_streams.endpoint == sa.bindparam("e"))
_NEW_STREAM = online_streams.insert()
_INSERT_BLOCKS = online_event_blocks.insert()


def _take_seqs(conn, endpoint: str, count: int, rejected: int) -> int:
    """Reserve ``count`` seqs; the last seq before them. The update locks the endpoint's row
    until commit, so a concurrent appender waits and its seqs commit after these."""
    bump = {"e": endpoint, "n": count, "r": rejected}
    returning = conn.dialect.update_returning  # one statement fewer per append (SQLite >= 3.35)
    for _ in range(2):
        if returning:
            last = conn.execute(_BUMP_RETURNING, bump).scalar()
            if last is not None:
                return last - count
        elif conn.execute(_BUMP, bump).rowcount:
            return conn.execute(_LAST_SEQ, {"e": endpoint}).scalar() - count
        try:
            with conn.begin_nested():
                conn.execute(_NEW_STREAM, {"endpoint": endpoint, "last_seq": 0, "rejected": 0})
        except sa.exc.IntegrityError:
            pass  # another appender made it first; its row lock is taken by the update
    raise RuntimeError(f"could not reserve event seqs for {endpoint!r}")  # pragma: no cover


_SQLITE_BUMP = ("UPDATE online_streams SET last_seq = last_seq + ?, rejected = rejected + ? "
                "WHERE endpoint = ? RETURNING last_seq")  # fmt: skip
_SQLITE_NEW = "INSERT INTO online_streams (endpoint, last_seq, rejected) VALUES (?, 0, 0)"
_SQLITE_INSERT = ("INSERT INTO online_event_blocks (endpoint, first_seq, last_seq, time, events) "
                  "VALUES (?, ?, ?, ?, ?)")  # fmt: skip


def _append_sqlite(engine, endpoint: str, bodies: list, count: int, rejected: int, now) -> int:
    """The append's transaction on SQLite through the driver's own connection (from the pool):
    the same statements and the same commit as :func:`_take_seqs` and the insert through a
    SQLAlchemy connection, without its per-statement and per-transaction work, which cost more
    than the commit itself for a request of 100 events (measured: ~250 µs an append). BEGIN
    IMMEDIATE takes the write lock first, so the stream row's seqs commit in order; the events
    are durable (in the WAL, which outlives the process) when COMMIT returns. Driver errors
    come out as SQLAlchemy's, as from every other store call. The last seq before these."""
    dialect = engine.dialect
    to_db = online_event_blocks.c.time.type.dialect_impl(dialect).bind_processor(dialect)
    raw = engine.raw_connection()
    statement = _SQLITE_BUMP
    try:
        cur = raw.cursor()
        try:
            cur.execute("BEGIN IMMEDIATE")
            try:
                row = cur.execute(_SQLITE_BUMP, (count, rejected, endpoint)).fetchone()
                if row is None:  # the endpoint's first append (we hold the write lock)
                    statement = _SQLITE_NEW
                    cur.execute(_SQLITE_NEW, (endpoint,))
                    statement = _SQLITE_BUMP
                    row = cur.execute(_SQLITE_BUMP, (count, rejected, endpoint)).fetchone()
                base, at = row[0] - count, to_db(now) if to_db else now
                statement = _SQLITE_INSERT
                cur.executemany(_SQLITE_INSERT, [
                    (endpoint, base + 1 + k * BLOCK, base + min((k + 1) * BLOCK, count), at, body)
                    for k, body in enumerate(bodies)])  # fmt: skip
                statement = "COMMIT"
                cur.execute("COMMIT")
            except BaseException:
                if raw.in_transaction:
                    raw.rollback()
                raise
        finally:
            cur.close()
    except dialect.loaded_dbapi.Error as exc:
        raise sa.exc.DBAPIError.instance(statement, None, exc, dialect.loaded_dbapi.Error) from exc
    finally:
        raw.close()  # back to the pool
    return base


class SqlOnline(SqlBase, OnlineStore):
    def append_online_events(
        self, endpoint: str, events: list[dict] | AlikeEvents, rejected: int = 0
    ) -> list[int]:
        if not events and not rejected:
            return []
        if len(events) > MAX_APPEND:
            raise InvalidInput(
                f"at most {MAX_APPEND} labelled events per append, not {len(events)}"
            )
        if isinstance(events, AlikeEvents):
            bodies = [encode_alike(events, i, min(i + BLOCK, len(events)))
                      for i in range(0, len(events), BLOCK)]  # fmt: skip
        else:
            bodies = [encode(events[i : i + BLOCK]) for i in range(0, len(events), BLOCK)]
        now, n = utcnow(), len(events)
        if self.engine.dialect.name == "sqlite" and self.engine.dialect.update_returning:
            base = _append_sqlite(self.engine, endpoint, bodies, n, rejected, now)
            return list(range(base + 1, base + n + 1))
        with self._write() as conn:
            base = _take_seqs(conn, endpoint, n, rejected)
            if events:
                conn.execute(_INSERT_BLOCKS, [
                    {"endpoint": endpoint, "first_seq": base + 1 + k * BLOCK,
                     "last_seq": base + min((k + 1) * BLOCK, n), "time": now,
                     "events": body} for k, body in enumerate(bodies)])  # fmt: skip
        return list(range(base + 1, base + n + 1))

    def read_online_events(self, endpoint: str, after_seq: int, limit: int) -> list[dict]:
        return self.read_online_batch(endpoint, after_seq, limit).rows()

    def read_online_batch(self, endpoint: str, after_seq: int, limit: int) -> EventBatch:
        c = online_event_blocks.c
        out = EventBatch()
        with self._read() as conn:
            while len(out) < limit:
                # A block holding after_seq + 1 starts at most BLOCK - 1 before it: the
                # primary key's range, never the endpoint's whole history. No more blocks
                # than the limit needs (a block is read whole: its bytes are many pages).
                most = min(64, (limit - len(out)) // BLOCK + 2)
                blocks = conn.execute(
                    sa.select(c.first_seq, c.time, c.events)
                    .where(c.endpoint == endpoint, c.first_seq > after_seq - BLOCK,
                           c.last_seq > after_seq)
                    .order_by(c.first_seq).limit(most)
                ).all()  # fmt: skip
                if not blocks:
                    break
                for first, time, body in blocks:
                    if len(out) >= limit:
                        break  # decode no block past the limit
                    decode(body, first, after_seq, limit, aware(time), out)
                after_seq = out.seqs[-1] if out else after_seq
                if len(blocks) < most:
                    break
        return out

    def online_stream(self, endpoint: str) -> dict:
        with self._read() as conn:
            row = conn.execute(
                sa.select(online_streams).where(online_streams.c.endpoint == endpoint)
            ).first()
        return row_dict(row) if row else {"endpoint": endpoint, "last_seq": 0, "rejected": 0}

    def count_online_rejected(self, endpoint: str, count: int) -> None:
        if count:
            with self._write() as conn:
                _take_seqs(conn, endpoint, 0, count)

    def save_online_model(
        self,
        endpoint: str,
        variant: str,
        *,
        applied_seq: int,
        model: bytes,
        state: bytes | None,
        info: dict,
        term: int | None = None,
    ) -> int:
        c = online_models.c
        where = (c.endpoint == endpoint) & (c.variant == variant)
        values = {"applied_seq": applied_seq, "model": model, "state": state,
                  "info": dumps(info), "updated_at": utcnow(), "term": term}  # fmt: skip
        fenced = where if term is None else where & ((c.term.is_(None)) | (c.term <= term))
        with self._write() as conn:
            if conn.execute(online_models.update().where(fenced)
                            .values(revision=c.revision + 1, **values)).rowcount:  # fmt: skip
                return conn.execute(sa.select(c.revision).where(where)).scalar()
            holder = conn.execute(sa.select(c.term).where(where)).first()
            if holder is not None:
                raise Conflict(
                    f"the checkpoint of {endpoint}/{variant} was written under lease term "
                    f"{holder.term}, after this learner's term {term}: another learner took over",
                    hint="this learner stops; the one holding the lease goes on")
            conn.execute(
                online_models.insert().values(
                    endpoint=endpoint, variant=variant, revision=1, **values
                )
            )
            return 1

    def online_model_revision(self, endpoint: str, variant: str) -> int:
        c = online_models.c
        with self._read() as conn:
            got = conn.execute(
                sa.select(c.revision).where(c.endpoint == endpoint, c.variant == variant)
            ).scalar()
        return got or 0

    def get_online_model(self, endpoint: str, variant: str, *, state: bool = False) -> dict | None:
        c = online_models.c
        cols = [c.endpoint, c.variant, c.revision, c.applied_seq, c.model, c.info, c.updated_at]
        with self._read() as conn:
            row = conn.execute(
                sa.select(*cols, *([c.state] if state else []))
                .where(c.endpoint == endpoint, c.variant == variant)
            ).first()  # fmt: skip
        if row is None:
            return None
        out = row_dict(row)
        out["info"] = json.loads(out["info"])
        return out
