"""The SQL store itself: migrations, concurrent writers, URLs, SQLite's journal — on SQLite and
PostgreSQL. What every backend must do is in ``conformance/``."""

from __future__ import annotations

import subprocess
import sys

import pytest
import sqlalchemy as sa

from modelloop.errors import ConfigError, StoreVersionError
from modelloop.store import open_store
from modelloop.store.migrate import head_revision


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/meta.db"
    return request.getfixturevalue("postgres_url")


def test_open_migrates_to_head_and_reopens(store_url):
    store = open_store(store_url)
    with store.engine.connect() as conn:
        assert (
            conn.execute(sa.text("select version_num from alembic_version")).scalar()
            == head_revision()
        )
    store.close()
    again = open_store(store_url)  # second open is a no-op, not an error
    assert again.list_datasets() == []
    again.close()


def test_newer_schema_is_refused(store_url):
    store = open_store(store_url)
    with store.engine.begin() as conn:
        conn.execute(sa.text("update alembic_version set version_num = 'from_the_future'"))
    store.close()
    with pytest.raises(StoreVersionError, match="newer modelloop"):
        open_store(store_url)


_OPEN_AND_COMMIT = """
import sys
from modelloop.store import open_store
s = open_store(sys.argv[1])
for i in range(5):
    s.commit_dataset_version(name="shared", txn=sys.argv[2] + str(i), schema_json="{}", added_rows=1,
        quarantined_rows=0, parts=[], sources=[], event_time_column=None, event_time_min=None,
        event_time_max=None, schema_changes=None, expected_schema_json=None if i == 0 and sys.argv[2] == "p0" else "{}")
"""


def test_concurrent_processes_migrate_once_and_number_versions_uniquely(store_url):
    # Four processes open a brand-new store at once (all race to migrate it), then commit.
    procs = []
    first = subprocess.run(
        [sys.executable, "-c", _OPEN_AND_COMMIT, store_url, "p0"], capture_output=True, text=True
    )
    assert first.returncode == 0, first.stderr
    for k in range(1, 4):
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", _OPEN_AND_COMMIT, store_url, f"p{k}"],
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read()
    store = open_store(store_url)
    versions = [v["version"] for v in store.list_dataset_versions("shared")]
    assert versions == list(range(1, 21))
    store.close()


def test_bad_store_urls_are_clear():
    with pytest.raises(ConfigError, match="unsupported metadata store URL scheme"):
        open_store("mysql://x/y")
    with pytest.raises(ConfigError, match="cannot open"):
        open_store("postgresql://nobody@127.0.0.1:1/none")


def test_sqlite_uses_wal(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/m.db")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar().lower() == "wal"
    store.close()
