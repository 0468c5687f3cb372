"""SQL of leases. Time comes from the database where it has a clock of its own (PostgreSQL:
``clock_timestamp()``), so that controllers on machines whose clocks differ agree on expiry;
SQLite is a file on one machine, whose clock every holder shares."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from modelloop.store.interfaces.leases import LeaseStore
from modelloop.store.sql.engine import SqlBase, row_dict, utcnow
from modelloop.store.tables.leases import leases


def _clock(conn) -> datetime:
    if conn.dialect.name == "postgresql":
        return conn.execute(sa.select(sa.func.clock_timestamp())).scalar()
    return utcnow()


class SqlLeases(SqlBase, LeaseStore):
    def acquire_lease(self, name: str, holder: str, ttl: float) -> dict | None:
        where = leases.c.name == name
        with self._write() as conn:
            now = _clock(conn)
            until = now + timedelta(seconds=ttl)
            renewed = conn.execute(
                leases.update()
                .where(where, leases.c.holder == holder, leases.c.expires_at > now)
                .values(renewed_at=now, expires_at=until)
            ).rowcount
            if not renewed:
                # Free (expired) or never held; on PostgreSQL the row lock makes a concurrent
                # taker wait and re-check the expiry, which this update has moved.
                taken = conn.execute(
                    leases.update()
                    .where(where, leases.c.expires_at <= now)
                    .values(holder=holder, term=leases.c.term + 1, acquired_at=now,
                            renewed_at=now, expires_at=until)
                ).rowcount  # fmt: skip
                if not taken:
                    if conn.execute(sa.select(leases.c.name).where(where)).first():
                        return None  # held by another
                    try:
                        with conn.begin_nested():
                            conn.execute(leases.insert().values(
                                name=name, holder=holder, term=1, acquired_at=now,
                                renewed_at=now, expires_at=until))  # fmt: skip
                    except sa.exc.IntegrityError:
                        return None  # another took it first
            return row_dict(conn.execute(sa.select(leases).where(where)).one())

    def release_lease(self, name: str, holder: str) -> bool:
        with self._write() as conn:
            now = _clock(conn)
            return bool(conn.execute(
                leases.update()
                .where(leases.c.name == name, leases.c.holder == holder,
                       leases.c.expires_at > now)
                .values(expires_at=now)
            ).rowcount)  # fmt: skip

    def get_lease(self, name: str) -> dict | None:
        with self._read() as conn:
            row = conn.execute(sa.select(leases).where(leases.c.name == name)).first()
            if row is None:
                return None
            out = row_dict(row)
            out["expired"] = out["expires_at"] <= _clock(conn)
            return out
