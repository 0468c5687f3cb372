"""Conformance: JobStore (store/interfaces/jobs.py)."""

from __future__ import annotations

from datetime import UTC, datetime


def _job(store, kind="train", **kw):
    return store.create_job(kind=kind, name=kw.pop("name", None), spec=kw.pop("spec", {}),
                            params=kw.pop("params", {}), **kw)  # fmt: skip


def test_a_job_round_trips_with_its_json_fields(store):
    job_id = store.create_job(
        kind="train", name="first", spec={"algorithm": "rf", "nested": [1, {"a": 2}]},
        params={"n": 3}, inputs=[{"kind": "dataset", "ref": "loans@1"}],
    )  # fmt: skip
    job = store.get_job(job_id)
    assert job["id"] == job_id and job["kind"] == "train" and job["name"] == "first"
    assert job["status"] == "queued"
    assert job["spec"] == {"algorithm": "rf", "nested": [1, {"a": 2}]}
    assert job["params"] == {"n": 3}
    assert job["inputs"] == [{"kind": "dataset", "ref": "loans@1"}]
    assert (job["metrics"], job["outputs"], job["info"]) == ({}, {}, {})
    assert job["created_at"].tzinfo is not None and job["parent_id"] is None
    assert store.get_job(job_id + 1000) is None


def test_defaults_and_status_at_creation(store):
    parent = _job(store, "tune")
    child = _job(store, "trial", parent_id=parent, status="running")
    assert store.get_job(child)["parent_id"] == parent
    assert store.get_job(child)["status"] == "running"
    assert store.get_job(parent)["inputs"] == []
    assert child > parent


def test_update_sets_fields_and_compares_status(store):
    job_id = _job(store)
    now = datetime(2026, 2, 1, tzinfo=UTC)
    assert store.update_job(job_id, status="running", started_at=now, pid=42,
                            metrics={"auc": 0.5}, info={"split": {"seed": 1}})  # fmt: skip
    job = store.get_job(job_id)
    assert (job["status"], job["pid"], job["started_at"]) == ("running", 42, now)
    assert job["metrics"] == {"auc": 0.5} and job["info"] == {"split": {"seed": 1}}
    # compare-and-set: only from one of the given states
    assert not store.update_job(job_id, only_if_status=("queued",), status="cancelled")
    assert store.get_job(job_id)["status"] == "running"
    assert store.update_job(job_id, only_if_status=("queued", "running"), status="succeeded")
    assert store.get_job(job_id)["status"] == "succeeded"
    assert not store.update_job(job_id + 1000, status="failed")


def test_list_is_newest_first_with_filters_and_limit(store):
    a = _job(store, "train")
    b = _job(store, "tune")
    c = _job(store, "trial", parent_id=b)
    d = _job(store, "trial", parent_id=b)
    store.update_job(c, status="failed")
    assert [j["id"] for j in store.list_jobs()] == [d, c, b, a]
    assert [j["id"] for j in store.list_jobs(kind="trial")] == [d, c]
    assert [j["id"] for j in store.list_jobs(status="failed")] == [c]
    assert [j["id"] for j in store.list_jobs(parent_id=b)] == [d, c]
    assert [j["id"] for j in store.list_jobs(kind="trial", status="queued")] == [d]
    assert [j["id"] for j in store.list_jobs(limit=2, offset=1)] == [c, b]
    assert [j["id"] for j in store.list_jobs(limit=2)] == [d, c]
    assert store.list_jobs(kind="evaluate") == []


def test_metric_points_keep_their_order(store):
    job_id = _job(store)
    other = _job(store)
    store.log_job_metrics(job_id, [("loss", 1.0, 0), ("loss", 0.5, 1)])
    store.log_job_metrics(job_id, [("auc", 0.8, None)])
    store.log_job_metrics(other, [("loss", 9.0, 0)])
    store.log_job_metrics(job_id, [])  # nothing to log
    series = store.job_metric_series(job_id)
    assert [(m["key"], m["value"], m["step"]) for m in series] == [
        ("loss", 1.0, 0),
        ("loss", 0.5, 1),
        ("auc", 0.8, None),
    ]
    assert store.job_metric_series(other + 1000) == []


def test_artifacts_by_name_a_second_replaces_the_first(store):
    job_id = _job(store)
    store.add_job_artifact(job_id, "report", "b" * 64, 20)
    store.add_job_artifact(job_id, "model", "a" * 64, 10)
    store.add_job_artifact(job_id, "report", "c" * 64, 30)
    arts = store.job_artifacts(job_id)
    assert [(a["name"], a["digest"], a["size"]) for a in arts] == [
        ("model", "a" * 64, 10),
        ("report", "c" * 64, 30),
    ]
    assert store.job_artifacts(job_id + 1000) == []
