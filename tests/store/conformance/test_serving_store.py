"""Conformance: ServingStore (store/interfaces/serving.py)."""

from __future__ import annotations

import pytest
from records import at, digest

from modelloop.errors import AlreadyExists, InvalidInput, NotFound

SPEC = {"variants": [{"name": "a", "model": "churn@1", "weight": 1.0}]}


def test_endpoints_round_trip_and_revisions_go_up(store):
    created = store.create_endpoint("web", SPEC, actor="ann")
    assert (created["name"], created["revision"], created["status"], created["updated_by"]) == (
        "web", 1, "in_service", "ann")  # fmt: skip
    assert created["spec"] == SPEC and created["created_at"].tzinfo is not None
    store.create_endpoint("api", {"variants": []})
    assert [e["name"] for e in store.list_endpoints()] == ["api", "web"]
    updated = store.update_endpoint("web", {"variants": []}, actor="bob", status="updating")
    assert (updated["revision"], updated["status"], updated["updated_by"]) == (2, "updating", "bob")
    assert updated["spec"] == {"variants": []}
    assert store.endpoint_revisions() == {"web": 2, "api": 1}
    assert store.get_endpoint("nope") is None


def test_endpoint_names_are_unique_and_updates_compare_revisions(store):
    store.create_endpoint("web", SPEC)
    with pytest.raises(AlreadyExists):
        store.create_endpoint("web", {})
    with pytest.raises(InvalidInput, match="changed"):
        store.update_endpoint("web", {}, expected_revision=5)
    assert store.get_endpoint("web")["spec"] == SPEC
    assert store.update_endpoint("web", {"x": 1}, expected_revision=1)["revision"] == 2
    with pytest.raises(NotFound):
        store.update_endpoint("nope", {})
    with pytest.raises(NotFound):
        store.delete_endpoint("nope")


def test_deleting_an_endpoint_drops_its_stats_and_fails_its_rollout(store):
    store.create_endpoint("web", SPEC)
    store.create_endpoint("api", SPEC)
    store.put_endpoint_stats("s1", [("web", "a", {"n": 1}), ("api", "a", {"n": 2})])
    rollout = store.create_rollout(endpoint="web", strategy="canary", model="churn@2", state={})
    store.delete_endpoint("web")
    assert store.get_endpoint("web") is None and list(store.endpoint_revisions()) == ["api"]
    assert [s["endpoint"] for s in store.read_endpoint_stats()] == ["api"]
    after = store.get_rollout(rollout["id"])
    assert (after["status"], after["reason"]) == ("failed", "endpoint deleted")
    (event,) = store.list_events(kind="rollout.finished")
    assert event["payload"] == {"rollout_id": rollout["id"], "endpoint": "web",
                                "strategy": "canary", "model": "churn@2", "status": "failed",
                                "reason": "endpoint deleted"}


def test_a_rollout_that_ends_appends_rollout_finished(store):
    store.create_endpoint("web", SPEC)
    rid = store.create_rollout(endpoint="web", strategy="canary", model="m@2", state={})["id"]
    store.advance_rollout(rid, state={"step": 1})
    assert store.list_events(kind="rollout.finished") == []
    assert store.advance_rollout(rid, state={"step": 2}, status="completed", reason="ok")
    assert not store.advance_rollout(rid, state={"step": 3}, status="failed")  # over already
    (event,) = store.list_events(kind="rollout.finished")
    assert event["subject"] == f"web#{rid}"
    assert {k: event["payload"][k] for k in ("rollout_id", "endpoint", "status", "reason")} == {
        "rollout_id": rid, "endpoint": "web", "status": "completed", "reason": "ok"}


def test_one_running_rollout_per_endpoint(store):
    store.create_endpoint("web", SPEC)
    first = store.create_rollout(endpoint="web", strategy="canary", model="churn@2",
                                 state={"step": 0}, actor="ann")  # fmt: skip
    assert (first["status"], first["state"], first["created_by"]) == ("running", {"step": 0}, "ann")
    with pytest.raises(InvalidInput, match="already rolling out"):
        store.create_rollout(endpoint="web", strategy="blue_green", model="churn@3", state={})
    assert store.advance_rollout(first["id"], state={"step": 1}, status="completed", reason="done")
    second = store.create_rollout(endpoint="web", strategy="blue_green", model="churn@3", state={})
    assert [r["id"] for r in store.list_rollouts()] == [second["id"], first["id"]]
    assert [r["id"] for r in store.list_rollouts(status="completed")] == [first["id"]]
    assert [r["id"] for r in store.list_rollouts(endpoint="web", limit=1)] == [second["id"]]
    assert store.list_rollouts(endpoint="api") == []
    assert store.get_rollout(second["id"] + 1000) is None


def test_leases_on_a_running_rollout(store):
    store.create_endpoint("web", SPEC)
    rid = store.create_rollout(endpoint="web", strategy="canary", model="m@1", state={})["id"]
    far = at(60 * 24 * 365 * 10)  # ten years on: unexpired
    assert store.claim_rollout(rid, "driver-1", far)
    assert store.claim_rollout(rid, "driver-1", far)  # extending one's own lease
    assert not store.claim_rollout(rid, "driver-2", far)
    assert store.get_rollout(rid)["lease_owner"] == "driver-1"
    store.advance_rollout(rid, state={}, status="running")
    assert not store.claim_rollout(rid, "driver-2", far)


def test_an_expired_lease_can_be_taken_over(store):
    store.create_endpoint("web", SPEC)
    rid = store.create_rollout(endpoint="web", strategy="canary", model="m@1", state={})["id"]
    assert store.claim_rollout(rid, "driver-1", at(0))  # expired long ago
    assert store.claim_rollout(rid, "driver-2", at(1))
    assert store.get_rollout(rid)["lease_owner"] == "driver-2"


def test_advancing_moves_the_endpoint_in_the_same_transaction(store):
    store.create_endpoint("web", SPEC)
    rid = store.create_rollout(endpoint="web", strategy="canary", model="m@2", state={})["id"]
    store.claim_rollout(rid, "d", at(10**7))
    new_spec = {"variants": [{"name": "b", "model": "m@2", "weight": 1.0}]}
    assert store.advance_rollout(rid, state={"step": 1}, spec=new_spec, endpoint_status="updating",
                                 actor="d")  # fmt: skip
    endpoint = store.get_endpoint("web")
    assert (endpoint["spec"], endpoint["revision"], endpoint["status"]) == (new_spec, 2, "updating")
    assert store.get_rollout(rid)["state"] == {"step": 1}
    assert store.advance_rollout(rid, state={"step": 2}, status="completed", reason="ok",
                                 endpoint_status="in_service")  # fmt: skip
    done = store.get_rollout(rid)
    assert (done["status"], done["reason"], done["lease_owner"]) == ("completed", "ok", None)
    assert done["ended_at"] is not None
    assert store.get_endpoint("web")["revision"] == 2  # a status alone is no new revision
    # a finished rollout does not move again, and leaves the endpoint alone
    assert not store.advance_rollout(rid, state={"step": 3}, spec={"x": 1})
    assert store.get_endpoint("web")["spec"] == new_spec
    assert not store.claim_rollout(rid, "d", at(10**7))
    store.mark_rollout(rid, status="rolled_back", reason="undone")
    assert (store.get_rollout(rid)["status"], store.get_rollout(rid)["reason"]) == (
        "rolled_back",
        "undone",
    )


def _file(endpoint, variant, first, last, label, ids=None):
    f = {"endpoint": endpoint, "variant": variant, "hour": at(0), "digest": digest(label),
         "records": 2, "first_time": first, "last_time": last}  # fmt: skip
    if ids is not None:
        f["ids"] = ids
    return f


def test_capture_files_and_their_inference_ids(store):
    store.add_capture_files([
        _file("web", "a", at(10), at(20), "f1", ids=[("i1", 1), ("i2", 3)]),
        _file("web", "b", at(5), at(15), "f2", ids=[("i1", 2)]),
        _file("api", "a", at(0), at(1), "f3", ids=[("i9", 1)]),
    ])  # fmt: skip
    store.add_capture_files([])
    assert store.find_capture_ids("web", ["i1", "i2", "i9", "none"]) == {"i1": {1, 2}, "i2": {3}}
    assert store.find_capture_ids("web", []) == {}
    many = [f"x{i}" for i in range(1100)] + ["i2"]
    assert store.find_capture_ids("web", many) == {"i2": {3}}
    files = store.list_capture_files("web")
    assert [f["digest"] for f in files] == [digest("f2"), digest("f1")]  # by first record's time
    assert [f["digest"] for f in store.list_capture_files("web", variant="a")] == [digest("f1")]
    assert [f["digest"] for f in store.list_capture_files("web", since=at(16))] == [digest("f1")]
    assert [f["digest"] for f in store.list_capture_files("web", until=at(7))] == [digest("f2")]
    assert store.list_capture_files("web", since=at(30)) == []
    assert store.unindexed_capture_files("web") == []


def test_older_capture_files_are_indexed_once(store):
    store.add_capture_files([_file("web", "a", at(0), at(1), "old")])
    (old,) = store.unindexed_capture_files("web")
    assert old["digest"] == digest("old")
    store.index_capture_file(old["id"], "web", [("i1", 1)])
    store.index_capture_file(old["id"], "web", [("i1", 5), ("i2", 1)])  # a racing indexer
    assert store.find_capture_ids("web", ["i1", "i2"]) == {"i1": {1}}
    assert store.unindexed_capture_files("web") == []


def test_stats_are_upserted_per_server_endpoint_and_variant(store):
    store.put_endpoint_stats("s1", [("web", "a", {"n": 1}), ("web", "b", {"n": 2})])
    store.put_endpoint_stats("s1", [("web", "a", {"n": 5})])
    store.put_endpoint_stats("s2", [("web", "a", {"n": 7}), ("api", "a", {"n": 1})])
    rows = {
        (r["server"], r["endpoint"], r["variant"]): r["data"] for r in store.read_endpoint_stats()
    }
    assert rows == {("s1", "web", "a"): {"n": 5}, ("s1", "web", "b"): {"n": 2},
                    ("s2", "web", "a"): {"n": 7}, ("s2", "api", "a"): {"n": 1}}  # fmt: skip
    assert {r["server"] for r in store.read_endpoint_stats("api")} == {"s2"}
    assert store.read_endpoint_stats("none") == []
