"""Conformance: TriggerStore (store/interfaces/triggers.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from modelloop.errors import AlreadyExists


def _trigger(store, name="t", **extra):
    return store.create_trigger({
        "name": name, "cause": {"on": "manual"}, "action": {"do": "webhook", "url": "http://x"},
        "target": f"trigger:{name}", "concurrency": "skip", "missed": "skip",
        "retry": {"max_attempts": 3, "backoff_seconds": 30.0}, "paused": False, "owner": None,
        "cursor": {"n": 0}, "after_event": 0, **extra})  # fmt: skip


def test_triggers_are_named_once_listed_by_owner_updated_and_deleted(store):
    made = _trigger(store, owner="loop:a")
    assert made["cause"] == {"on": "manual"} and made["cursor"] == {"n": 0}
    with pytest.raises(AlreadyExists):
        _trigger(store)
    _trigger(store, "u")
    assert [t["name"] for t in store.list_triggers()] == ["t", "u"]
    assert [t["name"] for t in store.list_triggers(owner="loop:a")] == ["t"]
    assert store.update_trigger("t", {"paused": True})["paused"] is True
    assert store.update_trigger("nope", {"paused": True}) is None
    assert store.delete_trigger("t") and not store.delete_trigger("t")
    assert store.get_trigger("t") is None


def test_a_cause_is_recorded_once_with_its_cursor(store):
    _trigger(store)
    first = store.record_firing("t", "event:1", {"e": 1}, cursor=({"n": 0}, {"n": 1}))
    assert first["status"] == "pending" and first["action"]["do"] == "webhook"
    assert first["target"] == "trigger:t" and first["attempts"] == 0
    assert store.record_firing("t", "event:1", {"e": 1}) is None  # the same cause again
    assert store.get_trigger("t")["cursor"] == {"n": 1}
    # a cursor that moved meanwhile: nothing recorded, nothing moved
    assert store.record_firing("t", "event:2", {}, cursor=({"n": 0}, {"n": 2})) is None
    assert store.get_trigger("t")["cursor"] == {"n": 1}
    assert store.record_firing("gone", "event:3", {}) is None
    skipped = store.record_firing("t", "cron:x", {}, status="skipped", error="missed")
    assert skipped["ended_at"] is not None and skipped["error"] == "missed"
    assert [f["id"] for f in store.list_firings(trigger="t")] == [skipped["id"], first["id"]]
    assert [f["id"] for f in store.list_firings(statuses=["pending"], oldest_first=True)] == [
        first["id"]]


def test_a_firing_is_claimed_by_one_conditional_update(store):
    _trigger(store)
    f = store.record_firing("t", "manual:1", {})
    assert store.update_firing(f["id"], only_if_status=["pending"], status="running",
                               claimed_by="a", attempts=1)
    assert not store.update_firing(f["id"], only_if_status=["pending"], status="running",
                                   claimed_by="b")
    assert not store.update_firing(f["id"], only_if_claimed_by="b", started={"run_id": 1})
    assert store.update_firing(f["id"], only_if_claimed_by="a", started={"run_id": 1},
                               result={"ok": True})
    got = store.get_firing(f["id"])
    assert (got["claimed_by"], got["started"], got["result"]) == ("a", {"run_id": 1}, {"ok": True})


def test_watched_files_remember_size_version_and_firing(store):
    _trigger(store)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    store.see_file("t", "/in/a.csv", 10, "v1", t0)
    store.see_file("t", "/in/a.csv", 10, "v1", t0 + timedelta(seconds=5))  # unchanged: kept
    assert store.watched_files("t")["/in/a.csv"]["seen_at"] == t0
    store.see_file("t", "/in/a.csv", 20, "v2", t0 + timedelta(seconds=6))  # grew: clock restarts
    row = store.watched_files("t")["/in/a.csv"]
    assert (row["size"], row["seen_at"]) == (20, t0 + timedelta(seconds=6))
    f = store.record_firing("t", "file:/in/a.csv:20:v2", {}, watched_file=row["id"])
    assert store.watched_files("t")["/in/a.csv"]["firing_id"] == f["id"]
    store.see_file("t", "/in/a.csv", 30, "v3", t0 + timedelta(seconds=9))  # fired: left alone
    assert store.watched_files("t")["/in/a.csv"]["size"] == 20


def test_the_last_event_id(store):
    assert store.last_event_id() == 0
    eid = store.append_event("x", "y", {})
    assert store.last_event_id() == eid


def test_a_firing_starts_one_pipeline_run(store):
    def start(firing):
        return store.create_pipeline_run(
            pipeline="p", params={}, spec={}, executor="threads", steps=[{"name": "a",
                                                                          "kind": "step"}],
            host="h", pid=1, started_by={"firing": firing, "trigger": "t", "cause": "c"})

    run_id, _ = start(7)
    assert store.pipeline_run_of_firing(7)["id"] == run_id
    assert store.get_pipeline_run(run_id)["started_by"] == {"firing": 7, "trigger": "t",
                                                           "cause": "c"}
    with pytest.raises(AlreadyExists):
        start(7)
    assert store.pipeline_run_of_firing(8) is None
    other, _ = store.create_pipeline_run(pipeline="p", params={}, spec={}, executor="threads",
                                         steps=[{"name": "a", "kind": "step"}], host="h", pid=1)
    assert store.get_pipeline_run(other)["started_by"] is None
