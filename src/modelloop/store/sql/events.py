"""SQL of the event log and its consumer groups. Other aggregates append their events with
:func:`insert_event` inside their own transaction."""

from __future__ import annotations

import json
from datetime import timedelta

import sqlalchemy as sa

from modelloop.errors import InvalidInput, NotFound
from modelloop.store.interfaces.events import EventStore
from modelloop.store.sql.engine import SqlBase, row_dict, utcnow
from modelloop.store.tables.events import event_deliveries, event_groups, events

#: PostgreSQL advisory lock taken by every transaction that appends an event, held to its commit.
#: Sequence values are handed out at insert, not at commit: without it a transaction could commit
#: event 11 while event 10's was still open, and a reader that moved past 11 would never see 10.
_PG_EVENTS_LOCK = 0x6D6C6576  # "mlev"


def insert_event(conn, kind: str, subject: str, payload: dict) -> int:
    """Append an event on ``conn``'s transaction; returns its id."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_EVENTS_LOCK})
    return conn.execute(
        events.insert().values(
            time=utcnow(), kind=kind, subject=subject, payload=json.dumps(payload, default=str)
        )
    ).inserted_primary_key[0]


def insert_events(conn, kind: str, subject: str, payloads: list[dict]) -> list[int]:
    """:func:`insert_event` for several events, in order, with one lock and one statement."""
    if not payloads:
        return []
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_EVENTS_LOCK})
    now = utcnow()
    rows = [{"time": now, "kind": kind, "subject": subject,
             "payload": json.dumps(p, default=str)} for p in payloads]  # fmt: skip
    if conn.dialect.insert_executemany_returning_sort_by_parameter_order:
        got = conn.execute(events.insert().returning(events.c.id, sort_by_parameter_order=True),
                           rows)  # fmt: skip
        return [r.id for r in got]
    return [conn.execute(events.insert().values(**row)).inserted_primary_key[0] for row in rows]


def _event(row) -> dict:
    d = row_dict(row)
    d["payload"] = json.loads(d["payload"])
    return d


_EVENT_COLUMNS = (events.c.id, events.c.time, events.c.kind, events.c.subject, events.c.payload)


class SqlEvents(SqlBase, EventStore):
    def append_event(self, kind: str, subject: str, payload: dict) -> int:
        with self._write() as conn:
            return insert_event(conn, kind, subject, payload)

    def append_events(self, kind: str, subject: str, payloads: list[dict]) -> list[int]:
        with self._write() as conn:
            return insert_events(conn, kind, subject, payloads)

    def list_events(
        self, *, after_id: int = 0, kind: str | None = None, limit: int = 1000,
        newest_first: bool = False,
    ) -> list[dict]:  # fmt: skip
        order = events.c.id.desc() if newest_first else events.c.id
        q = sa.select(events).where(events.c.id > after_id).order_by(order).limit(limit)
        if kind:
            q = q.where(events.c.kind == kind)
        with self._read() as conn:
            return [_event(r) for r in conn.execute(q)]

    # -- consumer groups -------------------------------------------------------------------------
    def open_event_group(self, group: str, start: str | int = "latest") -> int:
        with self._read() as conn:
            position = _position(conn, group)
        if position is not None:
            return position
        with self._write() as conn:
            position = _position(conn, group)
            if position is not None:
                return position
            if start == "earliest":
                position = 0
            elif start == "latest":
                position = conn.execute(sa.select(sa.func.max(events.c.id))).scalar() or 0
            elif isinstance(start, int) and not isinstance(start, bool) and start >= 0:
                position = start
            else:
                raise InvalidInput(
                    f"a consumer group starts at 'earliest', 'latest' or an event id, not {start!r}"
                )
            if conn.dialect.name == "postgresql":
                from sqlalchemy.dialects.postgresql import insert
            else:
                from sqlalchemy.dialects.sqlite import insert
            conn.execute(
                insert(event_groups)
                .values(name=group, position=position, created_at=utcnow())
                .on_conflict_do_nothing(index_elements=["name"])
            )
            return _position(conn, group)  # a concurrent creator's, if it won

    def deliver_new_events(self, group: str, consumer: str, count: int = 100) -> list[tuple]:
        while True:
            # The common case, nothing new, is one read; only a hand-out writes.
            with self._read() as conn:
                position = _position(conn, group)
                if position is None:
                    raise NotFound(f"no consumer group {group!r}")
                rows = conn.execute(
                    sa.select(*_EVENT_COLUMNS)
                    .where(events.c.id > position)
                    .order_by(events.c.id)
                    .limit(count)
                ).all()
            if not rows:
                return []
            now = utcnow()
            with self._write() as conn:
                moved = conn.execute(
                    event_groups.update()
                    .where(event_groups.c.name == group, event_groups.c.position == position)
                    .values(position=rows[-1].id)
                ).rowcount
                if not moved:
                    continue  # another member took these first: read again past its hand-out
                conn.execute(
                    event_deliveries.insert(),
                    [
                        {"group_name": group, "event_id": r.id, "consumer": consumer,
                         "attempts": 1, "delivered_at": now}
                        for r in rows
                    ],
                )
            return [(_event(r), 1) for r in rows]

    def redeliver_pending_events(
        self, group: str, consumer: str, *, after_id: int = 0, count: int = 100
    ) -> list[tuple]:
        d = event_deliveries
        with self._write() as conn:
            rows = conn.execute(
                sa.select(*_EVENT_COLUMNS, d.c.attempts)
                .join(events, events.c.id == d.c.event_id)
                .where(d.c.group_name == group, d.c.consumer == consumer, d.c.event_id > after_id)
                .order_by(d.c.event_id)
                .limit(count)
            ).all()
            if rows:
                conn.execute(
                    d.update()
                    .where(d.c.group_name == group, d.c.consumer == consumer,
                           d.c.event_id.in_([r.id for r in rows]))
                    .values(attempts=d.c.attempts + 1, delivered_at=utcnow())
                )
        return [(_event(r), r.attempts + 1) for r in rows]

    def ack_events(self, group: str, event_ids) -> int:
        ids = [int(i) for i in event_ids]
        if not ids:
            return 0
        d = event_deliveries
        with self._write() as conn:
            return conn.execute(
                d.delete().where(d.c.group_name == group, d.c.event_id.in_(ids))
            ).rowcount

    def claim_stale_events(
        self, group: str, consumer: str, min_idle: float, count: int = 100
    ) -> list[tuple]:
        d = event_deliveries
        now = utcnow()
        cutoff = now - timedelta(seconds=max(0.0, float(min_idle)))
        stale = (d.c.group_name == group, d.c.delivered_at <= cutoff)
        with self._read() as conn:
            candidates = conn.execute(
                sa.select(d.c.event_id).where(*stale).order_by(d.c.event_id).limit(count)
            ).scalars().all()
        if not candidates:
            return []
        taken = []
        with self._write() as conn:
            for event_id in candidates:
                # Conditional: a concurrent claimer that took it first has reset its time.
                if conn.execute(
                    d.update()
                    .where(*stale, d.c.event_id == event_id)
                    .values(consumer=consumer, attempts=d.c.attempts + 1, delivered_at=now)
                ).rowcount:
                    taken.append(event_id)
            if not taken:
                return []
            rows = conn.execute(
                sa.select(*_EVENT_COLUMNS, d.c.attempts)
                .join(events, events.c.id == d.c.event_id)
                .where(d.c.group_name == group, d.c.event_id.in_(taken))
                .order_by(d.c.event_id)
            ).all()
        return [(_event(r), r.attempts) for r in rows]

    def event_group_info(self, group: str) -> dict | None:
        with self._read() as conn:
            row = conn.execute(sa.select(event_groups).where(event_groups.c.name == group)).first()
            if row is None:
                return None
            d = event_deliveries
            pending = conn.execute(
                sa.select(d.c.consumer, sa.func.count())
                .where(d.c.group_name == group)
                .group_by(d.c.consumer)
            ).all()
        info = row_dict(row)
        info["pending"] = {c: n for c, n in pending}
        return info


def _position(conn, group: str) -> int | None:
    return conn.execute(
        sa.select(event_groups.c.position).where(event_groups.c.name == group)
    ).scalar()
