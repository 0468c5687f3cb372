"""Conformance: DatasetStore (store/interfaces/datasets.py)."""

from __future__ import annotations

import pytest
from records import SCHEMA, at, commit, digest, register

from modelloop.errors import Conflict, InvalidInput, NotFound


def test_versions_are_numbered_cumulative_and_read_back(store):
    v1 = commit(store, "loans", 10, "a", quarantine="qa")
    v2 = commit(store, "loans", 5, "b", expected=SCHEMA)
    assert (v1["version"], v1["row_count"], v1["added_rows"], v1["quarantined_rows"]) == (
        1,
        10,
        10,
        1,
    )
    assert (v2["version"], v2["row_count"], v2["added_rows"]) == (2, 15, 5)
    assert v1["name"] == "loans" and v2["schema_json"] == SCHEMA
    assert v1["content_hash"] != v2["content_hash"] and len(v2["content_hash"]) == 64
    assert store.get_dataset_version("loans") == v2
    assert store.get_dataset_version("loans", 1) == v1
    assert [v["version"] for v in store.list_dataset_versions("loans")] == [1, 2]
    assert store.get_dataset("loans")["name"] == "loans"
    assert v1["created_at"].tzinfo is not None


def test_unknown_datasets_and_versions(store):
    commit(store, "loans", 1, "a")
    assert store.get_dataset("nope") is None
    assert store.get_dataset_version("nope") is None
    assert store.get_dataset_version("loans", 2) is None
    assert store.list_dataset_versions("nope") == []
    assert store.dataset_parts("nope", 5) == []
    assert store.dataset_sources("nope", 5) == []
    assert store.known_source_hashes("nope") == set()


def test_parts_and_sources_up_to_a_version_in_order(store):
    commit(store, "loans", 10, "a", quarantine="qa")
    commit(store, "loans", 5, "b", expected=SCHEMA)
    commit(store, "other", 1, "z")
    parts = store.dataset_parts("loans", 2)
    assert [(p["digest"], p["version"], p["rows"]) for p in parts] == [
        (digest("a"), 1, 10),
        (digest("b"), 2, 5),
    ]
    assert [p["digest"] for p in store.dataset_parts("loans", 1)] == [digest("a")]
    assert [p["digest"] for p in store.dataset_parts("loans", 2, kind="quarantine")] == [
        digest("qa")
    ]
    sources = store.dataset_sources("loans", 2)
    assert [(s["path"], s["version"]) for s in sources] == [("a.csv", 1), ("b.csv", 2)]
    assert [s["sha256"] for s in store.dataset_sources("loans", 1)] == [digest("src-a")]
    assert store.known_source_hashes("loans") == {digest("src-a"), digest("src-b")}


def test_parts_within_a_window_of_version_times(store):
    commit(store, "loans", 1, "a")
    second = commit(store, "loans", 1, "b", expected=SCHEMA)
    created = second["created_at"]
    assert [p["digest"] for p in store.dataset_parts("loans", 2, since=created)] == [digest("b")]
    assert [p["digest"] for p in store.dataset_parts("loans", 2, until=created)] == [digest("a")]


def test_list_gives_each_dataset_its_latest_version_by_name(store):
    commit(store, "zebra", 3, "z")
    commit(store, "loans", 10, "a")
    commit(store, "loans", 5, "b", expected=SCHEMA)
    listed = store.list_datasets()
    assert [(d["name"], d["latest_version"], d["row_count"]) for d in listed] == [
        ("loans", 2, 15),
        ("zebra", 1, 3),
    ]
    assert listed[0]["schema_json"] == SCHEMA and listed[0]["updated_at"].tzinfo is not None
    assert listed[0]["quarantined_rows"] == 0


def test_event_time_range_accumulates(store):
    commit(store, "loans", 1, "a", tmin=at(10), tmax=at(20), time_column="ts")
    v2 = commit(store, "loans", 1, "b", expected=SCHEMA, tmin=at(5), tmax=at(15), time_column="ts")
    assert (v2["event_time_min"], v2["event_time_max"]) == (at(5), at(20))
    assert store.get_dataset("loans")["event_time_column"] == "ts"


def test_commit_clears_the_writers_pending_blobs_and_appends_an_event(store):
    store.add_pending_blobs("w1", [digest("a")])
    store.add_pending_blobs("w2", [digest("x")])
    commit(store, "loans", 4, "a", txn="w1")
    assert [t["txn"] for t in store.pending_transactions()] == ["w2"]
    (event,) = store.list_events(kind="dataset.version_created")
    assert event["subject"] == "loans@1"
    assert event["payload"]["row_count"] == 4 and event["payload"]["version"] == 1


def test_a_changed_schema_is_a_conflict_and_writes_nothing(store):
    commit(store, "loans", 1, "a")
    store.add_pending_blobs("w", [digest("b")])
    with pytest.raises(Conflict, match="changed schema"):
        commit(store, "loans", 1, "b", expected='{"other": 1}', txn="w")
    assert [v["version"] for v in store.list_dataset_versions("loans")] == [1]
    assert [p["digest"] for p in store.dataset_parts("loans", 9)] == [digest("a")]
    assert len(store.list_events(kind="dataset.version_created")) == 1
    assert [t["txn"] for t in store.pending_transactions()] == ["w"]  # kept for clean-up


def test_a_source_already_ingested_is_a_conflict(store):
    commit(store, "loans", 1, "a")
    with pytest.raises(Conflict, match="ingested"):
        commit(store, "loans", 1, "a", expected=SCHEMA)
    assert store.get_dataset_version("loans")["version"] == 1


def test_a_dataset_deleted_meanwhile_is_a_conflict(store):
    with pytest.raises(Conflict, match="deleted"):
        commit(store, "loans", 1, "a", expected=SCHEMA)
    assert store.get_dataset("loans") is None


def test_delete_the_latest_version(store):
    commit(store, "loans", 1, "a")
    commit(store, "loans", 1, "b", expected=SCHEMA)
    done = store.delete_dataset_versions("loans", 2, and_later=False, force=False, actor="ann",
                                         reason=None)  # fmt: skip
    assert done["versions"] == [2] and done["digests"] == [digest("b")]
    assert (done["models"], done["baselines_deleted"], done["baselines_kept"]) == ([], [], [])
    assert [v["version"] for v in store.list_dataset_versions("loans")] == [1]
    assert store.known_source_hashes("loans") == {digest("src-a")}
    (event,) = store.list_events(kind="dataset.version_deleted")
    assert event["subject"] == "loans@2" and event["payload"]["actor"] == "ann"
    # the number is free again
    assert commit(store, "loans", 1, "c", expected=SCHEMA)["version"] == 2


def test_delete_needs_and_later_for_earlier_versions(store):
    for i, label in enumerate("abc"):
        commit(store, "loans", 1, label, expected=SCHEMA if i else None)
    with pytest.raises(InvalidInput, match="loans@2, loans@3"):
        store.delete_dataset_versions("loans", 1, and_later=False, force=False, actor="a",
                                      reason=None)  # fmt: skip
    assert len(store.list_dataset_versions("loans")) == 3
    done = store.delete_dataset_versions("loans", 2, and_later=True, force=False, actor="a",
                                         reason=None)  # fmt: skip
    assert done["versions"] == [2, 3]
    assert sorted(done["digests"]) == sorted([digest("b"), digest("c")])
    assert [v["version"] for v in store.list_dataset_versions("loans")] == [1]


def test_deleting_version_one_frees_the_name(store):
    commit(store, "loans", 1, "a")
    store.delete_dataset_versions("loans", 1, and_later=True, force=False, actor="a", reason=None)
    assert store.get_dataset("loans") is None and store.list_datasets() == []
    assert commit(store, "loans", 1, "a")["version"] == 1


def test_delete_unknown_dataset_or_version(store):
    with pytest.raises(NotFound):
        store.delete_dataset_versions("nope", 1, and_later=False, force=False, actor="a",
                                      reason=None)  # fmt: skip
    commit(store, "loans", 1, "a")
    with pytest.raises(NotFound, match="no version 3"):
        store.delete_dataset_versions("loans", 3, and_later=False, force=False, actor="a",
                                      reason=None)  # fmt: skip


def test_data_that_trained_a_registered_model_needs_force_and_a_reason(store):
    commit(store, "loans", 1, "a")
    job = store.create_job(kind="train", name=None, spec={}, params={},
                           inputs=[{"kind": "dataset", "ref": "loans@1"}])  # fmt: skip
    register(store, "churn", job_id=job)
    with pytest.raises(InvalidInput, match="churn@1"):
        store.delete_dataset_versions("loans", 1, and_later=False, force=False, actor="a",
                                      reason=None)  # fmt: skip
    with pytest.raises(InvalidInput, match="reason"):
        store.delete_dataset_versions("loans", 1, and_later=False, force=True, actor="a",
                                      reason=None)  # fmt: skip
    assert store.get_dataset_version("loans", 1) is not None
    done = store.delete_dataset_versions("loans", 1, and_later=False, force=True, actor="a",
                                         reason="GDPR request")  # fmt: skip
    assert done["models"] == ["churn@1"]
    assert store.list_events(kind="dataset.version_deleted")[0]["payload"]["forced"] is True


def test_baselines_of_deleted_versions_are_deleted_unless_a_monitor_uses_them(store):
    commit(store, "loans", 1, "a")
    commit(store, "loans", 1, "b", expected=SCHEMA)
    for name, version in (("loans-v1", 1), ("loans-v2", 2), ("watched-v2", 2)):
        store.add_baseline(name=name, dataset="loans", dataset_version=version, source="dataset",
                           digest=digest(name), n_rows=1, schema={})  # fmt: skip
    store.add_monitor(name="m", baseline="watched-v2", dataset="loans", config={})
    done = store.delete_dataset_versions("loans", 2, and_later=False, force=False, actor="a",
                                         reason=None)  # fmt: skip
    assert done["baselines_deleted"] == ["loans-v2"] and done["baselines_kept"] == ["watched-v2"]
    assert digest("loans-v2") in done["digests"]
    assert store.get_baseline("loans-v2") is None
    kept = store.get_baseline("watched-v2")
    assert (kept["dataset"], kept["dataset_version"]) == (None, None)
    assert store.get_baseline("loans-v1")["dataset_version"] == 1
