"""The SQL store's shared base: engine set-up, transactions, row conversion and the clock.

Every aggregate module (``datasets``, ``jobs``, ``registry``…) builds on :class:`SqlBase`; this
module imports none of them.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from datetime import UTC, datetime

import sqlalchemy as sa

from modelloop.errors import ConfigError
from modelloop.store import migrate


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime | None) -> datetime | None:
    """SQLite hands datetimes back naive; every time we store is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def row_dict(row) -> dict:
    out = dict(row._mapping)
    for key, value in out.items():
        if isinstance(value, datetime):
            out[key] = aware(value)
    return out


def make_engine(url: str) -> sa.Engine:
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    try:
        if url.startswith("sqlite"):
            engine = sa.create_engine(url, connect_args={"timeout": 60})
            _configure_sqlite(engine)
        else:
            engine = sa.create_engine(url, pool_pre_ping=True)
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"the driver for {url.split(':', 1)[0]} is not installed ({exc.name})",
            hint="pip install 'modelloop[postgres]'",
        ) from None
    except sa.exc.ArgumentError as exc:
        raise ConfigError(f"invalid metadata store URL: {exc}") from None
    return engine


def _configure_sqlite(engine: sa.Engine) -> None:
    """WAL so readers never block the writer, and writers that queue instead of failing.

    pysqlite's own transaction handling is turned off so that we emit BEGIN ourselves: writes
    use BEGIN IMMEDIATE, which takes the write lock up front and so cannot deadlock on upgrade.
    """

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn):
        mode = "IMMEDIATE" if conn.get_execution_options().get("write") else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")


class SqlBase:
    """An engine and its two kinds of transaction; every aggregate's SQL builds on these.

    Opening migrates the database only when it is behind (see :mod:`modelloop.store.migrate`).
    """

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        if self.engine.dialect.name == "sqlite" and self.engine.url.database not in (
            None,
            "",
            ":memory:",
        ):
            os.makedirs(os.path.dirname(self.engine.url.database) or ".", exist_ok=True)
        try:
            migrate.upgrade(self.engine)
        except sa.exc.OperationalError as exc:
            raise ConfigError(
                f"cannot open the metadata store {self.safe_url}: {exc.orig}"
            ) from None

    @property
    def safe_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _read(self):
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def _write(self):
        with self.engine.connect() as conn:
            conn = conn.execution_options(write=True)
            with conn.begin():
                yield conn

    def now(self) -> datetime:
        return utcnow()


def dumps(value) -> str:
    """JSON text of a record's value (sorted keys; anything else as its string)."""
    return json.dumps(value, default=str, sort_keys=True)
