"""Bring a metadata database to the schema this code expects, safely and automatically.

Called on every open. The common case (already at head) costs one query and imports no Alembic
and reads no migration file: the head revision is a constant here (a test checks it against the
migrations). Upgrades run under a
lock (a file lock for SQLite, an advisory lock for PostgreSQL) so that several processes opening a
new workspace at once migrate it exactly once. A database stamped by a newer modelloop is refused.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import sqlalchemy as sa

from modelloop.errors import StoreVersionError

MIGRATIONS = Path(__file__).parent / "migrations"
#: The newest revision in ``migrations/versions``; a new migration changes it (a test checks).
HEAD_REVISION = "0019"
_PG_LOCK_KEY = 0x6D6C6F6F70  # "mloop"


def _alembic_config(connection=None):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def _script():
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config())


def current_revision(connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    return _script().get_current_head()


def stamped_revision(engine: sa.Engine) -> str | None:
    """The revision the database is stamped with (None for a new one), read without Alembic."""
    with engine.connect() as conn:
        try:
            return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        except sa.exc.DBAPIError:  # no such table: nothing was ever migrated here
            return None


def upgrade(engine: sa.Engine) -> None:
    """Upgrade the database to head if needed; refuse a database from a newer modelloop."""
    if stamped_revision(engine) == HEAD_REVISION:
        return
    db_path = engine.url.database if engine.dialect.name == "sqlite" else None
    if db_path and db_path != ":memory:":
        from filelock import FileLock

        with FileLock(f"{db_path}.migrate.lock"):
            new = _is_empty(engine)  # only a new, empty database takes the image
            if new and _fresh_image.restore(engine):
                return
            _upgrade_with_alembic(engine)
            if new:
                _fresh_image.keep(engine)
    else:
        _upgrade_with_alembic(engine)


def _upgrade_with_alembic(engine: sa.Engine) -> None:
    script = _script()
    head = script.get_current_head()
    with engine.connect() as conn:
        current = current_revision(conn)
    if current == head:
        return
    _check_known(script, current)
    _run_upgrade(engine, script, head)


def _is_empty(engine: sa.Engine) -> bool:
    """True for a SQLite database with nothing in it (a new file)."""
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        return raw.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0


class _FreshImage:
    """A new SQLite database at head, kept in memory after this process first migrated one.

    Migrating an empty database runs every migration (some 0.3 s of DDL and Alembic); the result
    is the same bytes each time. A process that creates many stores (a service that makes
    workspaces, a test suite) copies this image into each new one with SQLite's backup API
    instead. Only an empty database is overwritten, and the first one is always migrated for real.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._image: sqlite3.Connection | None = None

    def keep(self, engine: sa.Engine) -> None:
        with self._lock, engine.connect() as conn:
            if self._image is None:
                image = sqlite3.connect(":memory:", check_same_thread=False)
                conn.connection.dbapi_connection.backup(image)
                self._image = image

    def restore(self, engine: sa.Engine) -> bool:
        """Copy the image into ``engine``'s database, which must be empty; False if there is
        no image yet."""
        if self._image is None:
            return False
        with self._lock, engine.connect() as conn:
            self._image.backup(conn.connection.dbapi_connection)
        return True


_fresh_image = _FreshImage()


def _run_upgrade(engine: sa.Engine, script, head: str) -> None:
    from alembic import command

    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
        current = current_revision(conn)  # another process may have migrated meanwhile
        if current == head:
            return
        _check_known(script, current)
        command.upgrade(_alembic_config(conn), "head")


def _check_known(script, current: str | None) -> None:
    if current is None:
        return
    try:
        script.get_revision(current)
    except Exception:
        raise StoreVersionError(
            f"the metadata store is at schema revision {current!r}, which this modelloop does not know",
            hint="it was written by a newer modelloop; upgrade modelloop (pip install -U modelloop)",
        ) from None
