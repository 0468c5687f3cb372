"""SQL of triggers, firings and watched files (see :mod:`modelloop.store.interfaces.triggers`)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa

from modelloop.errors import AlreadyExists
from modelloop.store.interfaces.triggers import TriggerStore
from modelloop.store.sql.engine import SqlBase, dumps, row_dict, utcnow
from modelloop.store.tables.events import events
from modelloop.store.tables.triggers import trigger_firings, triggers, watched_files

_TRIGGER_JSON = ("cause", "action", "retry", "cursor")
_FIRING_JSON = ("cause", "action", "started", "result")


def _decoded(row, keys) -> dict:
    out = row_dict(row)
    for key in keys:
        out[key] = json.loads(out[key]) if out.get(key) else None
    return out


class SqlTriggers(SqlBase, TriggerStore):
    # -- triggers -----------------------------------------------------------------------------
    def create_trigger(self, record: dict) -> dict:
        now = utcnow()
        values = {k: (dumps(v) if k in _TRIGGER_JSON else v) for k, v in record.items()}
        with self._write() as conn:
            if conn.execute(sa.select(triggers.c.id).where(triggers.c.name == record["name"])
                            ).first():  # fmt: skip
                raise AlreadyExists(f"a trigger named {record['name']!r} exists",
                                    hint="choose another name, or update or delete it")
            conn.execute(triggers.insert().values(**values, created_at=now, updated_at=now))
        return self.get_trigger(record["name"])

    def get_trigger(self, name: str) -> dict | None:
        with self._read() as conn:
            row = conn.execute(sa.select(triggers).where(triggers.c.name == name)).first()
        return _decoded(row, _TRIGGER_JSON) if row else None

    def list_triggers(self, *, owner: str | None = None) -> list[dict]:
        q = sa.select(triggers).order_by(triggers.c.name)
        if owner is not None:
            q = q.where(triggers.c.owner == owner)
        with self._read() as conn:
            return [_decoded(r, _TRIGGER_JSON) for r in conn.execute(q)]

    def update_trigger(self, name: str, fields: dict) -> dict | None:
        values = {k: (dumps(v) if k in _TRIGGER_JSON else v) for k, v in fields.items()}
        with self._write() as conn:
            changed = conn.execute(
                triggers.update().where(triggers.c.name == name)
                .values(**values, updated_at=utcnow())
            ).rowcount  # fmt: skip
        return self.get_trigger(name) if changed else None

    def delete_trigger(self, name: str) -> bool:
        with self._write() as conn:
            conn.execute(watched_files.delete().where(watched_files.c.trigger == name))
            return conn.execute(triggers.delete().where(triggers.c.name == name)).rowcount > 0

    def last_event_id(self) -> int:
        with self._read() as conn:
            return int(conn.execute(sa.select(sa.func.max(events.c.id))).scalar() or 0)

    # -- firings ------------------------------------------------------------------------------
    def record_firing(self, trigger, cause_key, cause, *, status="pending", error=None,
                      cursor=None, watched_file=None) -> dict | None:
        now = utcnow()
        try:
            with self._write() as conn:
                row = conn.execute(sa.select(triggers).where(triggers.c.name == trigger)).first()
                if row is None:
                    return None
                if conn.execute(
                    sa.select(trigger_firings.c.id).where(
                        trigger_firings.c.trigger == trigger,
                        trigger_firings.c.cause_key == cause_key,
                    )
                ).first():
                    return None
                if cursor is not None and not conn.execute(
                    triggers.update()
                    .where(triggers.c.id == row.id, triggers.c.cursor == dumps(cursor[0]))
                    .values(cursor=dumps(cursor[1]))
                ).rowcount:
                    return None  # nothing written yet: the transaction commits no change
                firing_id = conn.execute(
                    trigger_firings.insert().values(
                        trigger=trigger, cause_key=cause_key, cause=dumps(cause),
                        action=row.action, target=row.target, status=status, attempts=0,
                        error=error, created_at=now,
                        ended_at=now if status not in ("pending", "running") else None,
                    )
                ).inserted_primary_key[0]  # fmt: skip
                if watched_file is not None:
                    conn.execute(watched_files.update().where(watched_files.c.id == watched_file)
                                 .values(firing_id=firing_id))  # fmt: skip
        except sa.exc.IntegrityError:  # recorded meanwhile by another process: all rolled back
            return None
        return self.get_firing(firing_id)

    def get_firing(self, firing_id: int) -> dict | None:
        with self._read() as conn:
            row = conn.execute(
                sa.select(trigger_firings).where(trigger_firings.c.id == firing_id)
            ).first()
        return _decoded(row, _FIRING_JSON) if row else None

    def list_firings(self, *, trigger=None, statuses=None, target=None, limit=50,
                     oldest_first=False) -> list[dict]:
        c = trigger_firings.c
        q = sa.select(trigger_firings).order_by(c.id if oldest_first else c.id.desc())
        if trigger is not None:
            q = q.where(c.trigger == trigger)
        if statuses is not None:
            q = q.where(c.status.in_(list(statuses)))
        if target is not None:
            q = q.where(c.target == target)
        if limit is not None:
            q = q.limit(limit)
        with self._read() as conn:
            return [_decoded(r, _FIRING_JSON) for r in conn.execute(q)]

    def update_firing(self, firing_id: int, *, only_if_status: Iterable[str] | None = None,
                      only_if_claimed_by: str | None = None, **fields) -> bool:
        c = trigger_firings.c
        q = trigger_firings.update().where(c.id == firing_id)
        if only_if_status is not None:
            q = q.where(c.status.in_(list(only_if_status)))
        if only_if_claimed_by is not None:
            q = q.where(c.claimed_by == only_if_claimed_by)
        values = {k: (dumps(v) if k in _FIRING_JSON and v is not None else v)
                  for k, v in fields.items()}  # fmt: skip
        with self._write() as conn:
            return conn.execute(q.values(**values)).rowcount > 0

    # -- watched files ------------------------------------------------------------------------
    def watched_files(self, trigger: str) -> dict[str, dict]:
        with self._read() as conn:
            rows = conn.execute(sa.select(watched_files).where(watched_files.c.trigger == trigger))
            return {r.path: row_dict(r) for r in rows}

    def see_file(self, trigger: str, path: str, size: int, version: str, now: datetime) -> None:
        c = watched_files.c
        with self._write() as conn:
            row = conn.execute(
                sa.select(watched_files).where(c.trigger == trigger, c.path == path)
            ).first()
            if row is None:
                conn.execute(watched_files.insert().values(
                    trigger=trigger, path=path, size=size, version=version, seen_at=now))
            elif row.firing_id is None and (row.size, row.version) != (size, version):
                conn.execute(watched_files.update().where(c.id == row.id)
                             .values(size=size, version=version, seen_at=now))  # fmt: skip
