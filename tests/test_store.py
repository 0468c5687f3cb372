"""The metadata store: migrations, versions, pending blobs, events — on SQLite and PostgreSQL."""

from __future__ import annotations

import json
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


def _commit(
    store, name, rows, digests, schema='{"fields": [], "arrow": ""}', expected=None, txn="t1"
):
    return store.commit_dataset_version(
        name=name,
        txn=txn,
        schema_json=schema,
        added_rows=rows,
        quarantined_rows=0,
        parts=[{"kind": "data", "digest": d, "rows": rows, "size": 10} for d in digests],
        sources=[
            {
                "path": "f.csv",
                "sha256": digests[0],
                "size": 10,
                "format": "csv",
                "rows": rows,
                "quarantined_rows": 0,
            }
        ],
        event_time_column=None,
        event_time_min=None,
        event_time_max=None,
        schema_changes=None,
        expected_schema_json=expected,
    )


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


def test_versions_are_numbered_and_cumulative(store_url):
    store = open_store(store_url)
    a, b = "a" * 64, "b" * 64
    v1 = _commit(store, "loans", 10, [a])
    v2 = _commit(store, "loans", 5, [b], expected='{"fields": [], "arrow": ""}')
    assert (v1["version"], v1["row_count"]) == (1, 10)
    assert (v2["version"], v2["row_count"], v2["added_rows"]) == (2, 15, 5)
    assert v1["content_hash"] != v2["content_hash"]
    assert [p["digest"] for p in store.dataset_parts("loans", 2)] == [a, b]
    assert [p["digest"] for p in store.dataset_parts("loans", 1)] == [a]
    assert store.known_source_hashes("loans") == {a, b}
    assert store.get_dataset_version("loans")["version"] == 2
    assert [d["name"] for d in store.list_datasets()] == ["loans"]
    kinds = [(e["kind"], e["subject"]) for e in store.list_events()]
    assert kinds == [("dataset.version_created", "loans@1"), ("dataset.version_created", "loans@2")]
    store.close()


def test_commit_refuses_when_schema_changed_underneath(store_url):
    """A commit whose schema was overtaken is a Conflict: the ingest runs again and re-checks
    its files against the schema that won (where a real mismatch is a SchemaMismatch)."""
    from modelloop.errors import Conflict

    store = open_store(store_url)
    _commit(store, "loans", 1, ["a" * 64])
    with pytest.raises(Conflict, match="changed schema"):
        _commit(store, "loans", 1, ["b" * 64], expected='{"something": "else"}')
    assert store.get_dataset_version("loans")["version"] == 1
    store.close()


def test_pending_blobs_and_references(store_url):
    store = open_store(store_url)
    a, b, c = "a" * 64, "b" * 64, "c" * 64
    store.add_pending_blobs("t1", [a, b])
    store.add_pending_blobs("t2", [c])
    txns = {t["txn"]: t for t in store.pending_transactions()}
    assert set(txns) == {"t1", "t2"} and sorted(txns["t1"]["digests"]) == [a, b]
    # a pending digest counts as referenced, except by its own transaction
    assert store.referenced_digests([a, c]) == {a, c}
    assert store.referenced_digests([a, c], ignore_txn="t1") == {c}
    _commit(store, "loans", 3, [a], txn="t1")  # committing clears t1's pending list
    assert [t["txn"] for t in store.pending_transactions()] == ["t2"]
    assert store.referenced_digests([a, b], ignore_txn="t2") == {a}
    store.close()


def test_events_round_trip(store_url):
    store = open_store(store_url)
    first = store.append_event("model.registered", "churn@1", {"by": "ci", "n": 1})
    store.append_event("alarm.fired", "latency", {})
    assert [e["kind"] for e in store.list_events(after_id=first)] == ["alarm.fired"]
    assert store.list_events(kind="model.registered")[0]["payload"] == {"by": "ci", "n": 1}
    store.close()


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
    assert json.dumps({})  # keep json import used
