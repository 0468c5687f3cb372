"""SQL of the event log. Other aggregates append their events with :func:`insert_event` inside
their own transaction."""

from __future__ import annotations

import json

import sqlalchemy as sa

from modelloop.store.interfaces.events import EventStore
from modelloop.store.sql.engine import SqlBase, row_dict, utcnow
from modelloop.store.tables.events import events


def insert_event(conn, kind: str, subject: str, payload: dict) -> int:
    """Append an event on ``conn``'s transaction; returns its id."""
    return conn.execute(
        events.insert().values(
            time=utcnow(), kind=kind, subject=subject, payload=json.dumps(payload, default=str)
        )
    ).inserted_primary_key[0]


class SqlEvents(SqlBase, EventStore):
    def append_event(self, kind: str, subject: str, payload: dict) -> int:
        with self._write() as conn:
            return insert_event(conn, kind, subject, payload)

    def list_events(
        self, *, after_id: int = 0, kind: str | None = None, limit: int = 1000
    ) -> list[dict]:
        q = sa.select(events).where(events.c.id > after_id).order_by(events.c.id).limit(limit)
        if kind:
            q = q.where(events.c.kind == kind)
        with self._read() as conn:
            out = []
            for r in conn.execute(q):
                d = row_dict(r)
                d["payload"] = json.loads(d["payload"])
                out.append(d)
            return out


# Each later concern keeps its tables and SQL in its own pair of modules (``*_tables.py``,
