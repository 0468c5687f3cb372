"""Conformance: BlobRecordStore (store/interfaces/blobs.py)."""

from __future__ import annotations

import os

from records import commit, digest, register


def test_pending_lists_per_writer(store):
    a, b, c = digest("a"), digest("b"), digest("c")
    store.add_pending_blobs("t1", [a, b])
    store.add_pending_blobs("t2", [c])
    store.add_pending_blobs("t3", [])  # nothing to note: no writer appears
    txns = store.pending_transactions()
    assert [t["txn"] for t in txns] == ["t1", "t2"]
    assert sorted(txns[0]["digests"]) == [a, b] and txns[1]["digests"] == [c]
    assert txns[0]["pid"] == os.getpid() and txns[0]["host"]
    assert txns[0]["created_at"].tzinfo is not None
    store.drop_pending("t1")
    assert [t["txn"] for t in store.pending_transactions()] == ["t2"]
    store.drop_pending("unknown")  # no error


def test_pending_digests_count_as_referenced_except_by_their_own_writer(store):
    a, c = digest("a"), digest("c")
    store.add_pending_blobs("t1", [a])
    store.add_pending_blobs("t2", [c])
    assert store.referenced_digests([a, c, digest("free")]) == {a, c}
    assert store.referenced_digests([a, c], ignore_txn="t1") == {c}


def test_records_reference_their_blobs(store):
    commit(store, "loans", 3, "part", quarantine="bad")
    register(store, "churn", files=[{"path": "m.bin", "digest": digest("model"), "size": 1}])
    job = store.create_job(kind="train", name=None, spec={}, params={})
    store.add_job_artifact(job, "report", digest("report"), 10)
    store.update_job(job, log_digest=digest("log"))
    wanted = [digest(x) for x in ("part", "bad", "model", "report", "log", "unused")]
    assert store.referenced_digests(wanted) == set(
        map(digest, ("part", "bad", "model", "report", "log"))
    )
    assert store.referenced_digests([]) == set()


def test_many_digests_at_once(store):
    many = [f"{i:064x}" for i in range(1200)]
    store.add_pending_blobs("big", many[::2])
    assert store.referenced_digests(many) == set(many[::2])
