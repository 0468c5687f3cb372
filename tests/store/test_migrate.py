"""Opening a store whose schema is current costs one query: no Alembic, no migration files."""

from __future__ import annotations

import subprocess
import sys

from modelloop.store import open_store
from modelloop.store.migrate import HEAD_REVISION, head_revision, stamped_revision

_OPEN = """
import sys
from modelloop.store import open_store
open_store(sys.argv[1]).close()
print(sorted(m for m in sys.modules if m.split(".")[0] == "alembic"))
"""


def _alembic_modules_after_open(url: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", _OPEN, url], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_the_head_revision_constant_is_alembics_head():
    assert head_revision() == HEAD_REVISION


def test_a_current_store_opens_without_alembic(tmp_path):
    url = f"sqlite:///{tmp_path}/m.db"
    assert _alembic_modules_after_open(url) != "[]"  # a new store migrates, with Alembic
    assert _alembic_modules_after_open(url) == "[]"  # a current one does not need it
    store = open_store(url)
    assert stamped_revision(store.engine) == HEAD_REVISION
    store.close()


def test_a_new_database_has_no_revision(tmp_path):
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{tmp_path}/empty.db")
    assert stamped_revision(engine) is None
    engine.dispose()


def _schema(path) -> list:
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        return sorted(conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"))
    finally:
        conn.close()


def test_a_new_sqlite_store_copied_from_the_image_equals_a_migrated_one(tmp_path):
    """The second new store of a process is restored from the first one's image: the same
    schema, triggers and revision as running every migration, and it works as a store."""
    from modelloop.store import migrate

    open_store(f"sqlite:///{tmp_path}/first.db").close()  # the image exists after this one
    assert migrate._fresh_image._image is not None
    migrated = subprocess.run(  # a process of its own runs every migration for real
        [sys.executable, "-c", _OPEN, f"sqlite:///{tmp_path}/migrated.db"],
        capture_output=True, text=True, timeout=120)
    assert migrated.returncode == 0, migrated.stderr
    store = open_store(f"sqlite:///{tmp_path}/copied.db")
    assert stamped_revision(store.engine) == HEAD_REVISION
    store.close()
    assert _schema(tmp_path / "copied.db") == _schema(tmp_path / "migrated.db")
    import sqlite3

    conn = sqlite3.connect(tmp_path / "copied.db")
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    conn.close()


def test_a_database_holding_other_tables_is_never_overwritten_by_the_image(tmp_path):
    import sqlite3

    open_store(f"sqlite:///{tmp_path}/first.db").close()
    conn = sqlite3.connect(tmp_path / "theirs.db")
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.execute("INSERT INTO notes VALUES ('kept')")
    conn.commit()
    conn.close()
    open_store(f"sqlite:///{tmp_path}/theirs.db").close()
    conn = sqlite3.connect(tmp_path / "theirs.db")
    assert conn.execute("SELECT body FROM notes").fetchall() == [("kept",)]
    conn.close()
