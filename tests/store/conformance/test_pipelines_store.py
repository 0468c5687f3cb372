"""Conformance: PipelineStore (store/interfaces/pipelines.py)."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest
from records import at, digest

STEPS = [{"name": "load", "kind": "step"}, {"name": "train", "kind": "step"},
         {"name": "gate", "kind": "approval"}]  # fmt: skip


def _run(store, pipeline="p", pid=None, steps=STEPS):
    return store.create_pipeline_run(pipeline=pipeline, params={"n": 1}, spec={"edges": [["load", "train"]]},
                                     executor="local", steps=steps, host="h", pid=pid or os.getpid())  # fmt: skip


def _out(name, label):
    return {"name": name, "digest": digest(label), "format": "json", "type": "dict", "size": 3}


def test_a_run_and_its_pending_steps_are_created_together(store):
    run_id, ids = _run(store)
    run = store.get_pipeline_run(run_id)
    assert (run["pipeline"], run["status"], run["attempt"], run["executor"]) == (
        "p",
        "running",
        1,
        "local",
    )
    assert run["params"] == {"n": 1} and run["spec"] == {"edges": [["load", "train"]]}
    assert run["started_at"].tzinfo is not None
    steps = store.pipeline_step_runs(run_id)
    assert [(s["name"], s["kind"], s["status"], s["outputs"]) for s in steps] == [
        ("load", "step", "pending", []), ("train", "step", "pending", []),
        ("gate", "approval", "pending", []),
    ]  # fmt: skip
    assert ids == {s["name"]: s["id"] for s in steps}
    assert store.get_step_run(ids["load"])["inputs"] == {}
    assert store.get_pipeline_run(run_id + 1000) is None
    assert store.get_step_run(max(ids.values()) + 1000) is None
    assert store.pipeline_step_runs(run_id + 1000) == []


def test_a_failing_creation_leaves_no_run(store):
    with pytest.raises(KeyError):
        _run(store, steps=[{"name": "load"}])  # no kind
    assert store.list_pipeline_runs() == []


def test_list_and_update_runs(store):
    a, _ = _run(store, "p")
    b, _ = _run(store, "q")
    c, _ = _run(store, "p")
    assert store.update_pipeline_run(b, status="succeeded", ended_at=at(1))
    assert not store.update_pipeline_run(a, only_if_status=("waiting",), status="failed")
    assert store.update_pipeline_run(a, only_if_status=("running",), status="failed", error="x",
                                     params={"n": 2})  # fmt: skip
    assert [r["id"] for r in store.list_pipeline_runs()] == [c, b, a]
    assert [r["id"] for r in store.list_pipeline_runs(pipeline="p")] == [c, a]
    assert [r["id"] for r in store.list_pipeline_runs(status="failed")] == [a]
    assert [r["id"] for r in store.list_pipeline_runs(limit=1)] == [c]
    assert store.get_pipeline_run(a)["params"] == {"n": 2}
    assert store.get_pipeline_run(b)["ended_at"] == at(1)


def test_step_updates_apply_together_and_replace_outputs(store):
    run_id, ids = _run(store)
    store.update_step_runs(
        [{"id": ids["load"], "status": "succeeded", "cache_key": "k1", "recipe": {"code": "a"},
          "outputs": [_out("rows", "r1"), _out("schema", "s1")], "info": {"why": "ok"}},
         {"id": ids["train"], "status": "running", "started_at": at(2)}],
        run={"id": run_id, "status": "waiting"},
    )  # fmt: skip
    steps = {s["name"]: s for s in store.pipeline_step_runs(run_id)}
    assert steps["load"]["status"] == "succeeded" and steps["load"]["recipe"] == {"code": "a"}
    assert [o["name"] for o in steps["load"]["outputs"]] == ["rows", "schema"]
    assert steps["load"]["info"] == {"why": "ok"}
    assert (steps["train"]["status"], steps["train"]["started_at"]) == ("running", at(2))
    assert store.get_pipeline_run(run_id)["status"] == "waiting"
    store.update_step_runs([{"id": ids["load"], "outputs": [_out("rows", "r2")]}])
    (load,) = [s for s in store.pipeline_step_runs(run_id) if s["name"] == "load"]
    assert [o["digest"] for o in load["outputs"]] == [digest("r2")]


def test_step_updates_compare_status(store):
    run_id, ids = _run(store)
    store.update_step_runs(
        [{"id": ids["load"], "only_if_status": ("running",), "status": "failed",
          "outputs": [_out("x", "x")]},
         {"id": ids["gate"], "only_if_status": ("pending",), "status": "waiting", "token": "tok"}],
        run={"id": run_id, "only_if_status": ("pending",), "status": "failed"},
    )  # fmt: skip
    steps = {s["name"]: s for s in store.pipeline_step_runs(run_id)}
    assert steps["load"]["status"] == "pending" and steps["load"]["outputs"] == []
    assert steps["gate"]["status"] == "waiting"
    assert store.get_pipeline_run(run_id)["status"] == "running"
    assert store.step_run_by_token("tok")["id"] == ids["gate"]
    assert store.step_run_by_token("nope") is None


def test_interrupting_a_run_of_a_dead_runner(store):
    run_id, ids = _run(store, pid=4242)
    store.update_step_runs([{"id": ids["load"], "status": "running"}])
    assert not store.interrupt_pipeline_run(run_id, 999, "gone")  # another runner's run
    assert store.get_pipeline_run(run_id)["status"] == "running"
    assert store.interrupt_pipeline_run(run_id, 4242, "runner died")
    run = store.get_pipeline_run(run_id)
    assert (run["status"], run["error"]) == ("interrupted", "runner died")
    steps = {s["name"]: s for s in store.pipeline_step_runs(run_id)}
    assert (steps["load"]["status"], steps["load"]["error"]) == ("failed", "runner died")
    assert steps["train"]["status"] == "pending"
    assert not store.interrupt_pipeline_run(run_id, 4242, "again")  # already ended


def test_resuming_resets_the_named_steps(store):
    run_id, ids = _run(store)
    store.update_step_runs(
        [{"id": ids["load"], "status": "succeeded", "outputs": [_out("rows", "r")]},
         {"id": ids["train"], "status": "failed", "error": "boom", "cache_key": "k",
          "outputs": [_out("m", "m")]}],
        run={"id": run_id, "status": "failed", "error": "boom"},
    )  # fmt: skip
    assert not store.resume_pipeline_run(run_id, reset=["train"], host="h2", pid=7, executor="threads",
                                         allowed_from=("interrupted",))  # fmt: skip
    assert store.resume_pipeline_run(run_id, reset=["train"], host="h2", pid=7, executor="threads",
                                     allowed_from=("failed", "interrupted"))  # fmt: skip
    run = store.get_pipeline_run(run_id)
    assert (run["status"], run["attempt"], run["pid"], run["host"], run["executor"], run["error"]) == (
        "running", 2, 7, "h2", "threads", None)  # fmt: skip
    steps = {s["name"]: s for s in store.pipeline_step_runs(run_id)}
    assert (steps["train"]["status"], steps["train"]["error"], steps["train"]["cache_key"]) == (
        "pending", None, None)  # fmt: skip
    assert steps["train"]["outputs"] == []
    assert steps["load"]["status"] == "succeeded" and len(steps["load"]["outputs"]) == 1


def test_cache_candidates_are_the_newest_success_per_key(store):
    old_run, old = _run(store)
    new_run, new = _run(store)
    other_run, other = _run(store, "other")
    store.update_step_runs([
        {"id": old["load"], "status": "succeeded", "cache_key": "k1", "ended_at": at(1),
         "outputs": [_out("rows", "old")]},
        {"id": new["load"], "status": "succeeded", "cache_key": "k1", "ended_at": at(2),
         "outputs": [_out("rows", "new"), _out("schema", "s")]},
        {"id": old["train"], "status": "succeeded", "cache_key": "k2", "ended_at": at(1)},
        {"id": new["train"], "status": "failed", "cache_key": "k3"},
        {"id": other["load"], "status": "succeeded", "cache_key": "k4"},
    ])  # fmt: skip
    found = store.cache_candidates("p", ["load", "train"])
    assert set(found) == {"k1", "k2"}
    assert (found["k1"]["id"], found["k1"]["run_id"], found["k1"]["ended_at"]) == (
        new["load"], new_run, at(2))  # fmt: skip
    assert sorted(o["digest"] for o in found["k1"]["outputs"]) == sorted(
        [digest("new"), digest("s")]
    )
    assert found["k2"]["outputs"] == []
    assert set(store.cache_candidates("p", ["train"])) == {"k2"}
    assert store.cache_candidates("p", []) == {}


def test_step_history_for_explaining_a_miss(store):
    runs = [_run(store)[1] for _ in range(4)]
    statuses = ["succeeded", "cached", "failed", "succeeded"]
    store.update_step_runs([
        {"id": ids["train"], "status": s, "recipe": {"i": i}} for i, (ids, s) in enumerate(zip(runs, statuses, strict=True))
    ])  # fmt: skip
    history = store.step_run_history("p", "train", before_id=runs[3]["train"])
    assert [h["recipe"] for h in history] == [{"i": 1}, {"i": 0}]
    assert len(store.step_run_history("p", "train", before_id=runs[3]["train"], limit=1)) == 1
    assert store.step_run_history("p", "load", before_id=runs[3]["train"]) == []


def test_the_store_clock_is_utc(store):
    now = store.now()
    assert now.tzinfo is not None and abs((now - datetime.now(UTC)).total_seconds()) < 60


def test_a_run_that_ends_appends_run_finished_once(store):
    run_id, _ = _run(store, pipeline="loop-churn")
    store.update_pipeline_run(run_id, status="waiting")  # waiting on an approval: not finished
    assert store.list_events(kind="run.finished") == []
    store.update_pipeline_run(run_id, status="succeeded", error=None)
    store.update_pipeline_run(run_id, status="succeeded")  # written again: no second event
    (event,) = store.list_events(kind="run.finished")
    assert event["subject"] == f"loop-churn#{run_id}"
    assert event["payload"] == {"run_id": run_id, "pipeline": "loop-churn", "loop": None,
                                "status": "succeeded", "error": None, "attempt": 1}
    loop_spec = {"source": {"loader": "loop", "args": {"spec": {"name": "churn"}}}}
    other, _ = store.create_pipeline_run(pipeline="loop-churn", params={}, spec=loop_spec,
                                         executor="local", steps=STEPS, host="h", pid=4242)
    assert store.interrupt_pipeline_run(other, 4242, "runner died")
    last = store.list_events(kind="run.finished")[-1]["payload"]
    assert (last["run_id"], last["loop"], last["status"]) == (other, "churn", "interrupted")
    refused = store.update_pipeline_run(other, only_if_status=("running",), status="failed")
    assert not refused and len(store.list_events(kind="run.finished")) == 2
