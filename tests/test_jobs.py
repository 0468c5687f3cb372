"""Jobs run in a worker process: success, failure with log, SIGKILL, cancel, search, compare."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from modelloop.errors import InvalidInput, NotFound
from modelloop.training.jobs import JobFailed


@pytest.mark.all_backends
def test_job_succeeds_with_metrics_series_and_log(workspace):
    job = workspace.jobs.run(
        "sleep", {"steps": 5, "seconds": 0.01}, name="nap", params={"steps": 5}
    )
    assert job["status"] == "succeeded" and job["metrics"] == {"steps": 5.0}
    assert job["started_at"] <= job["ended_at"]
    series = workspace.jobs.metric_series(job["id"])
    assert [(m["key"], m["value"], m["step"]) for m in series] == [
        ("heartbeat", float(i), i) for i in range(5)
    ]
    log = workspace.jobs.logs(job["id"])
    assert "step 4" in log and "succeeded" in log
    assert job["log_digest"]  # the log is kept in the artifact store


def test_failing_job_is_recorded_with_its_log(workspace):
    with pytest.raises(JobFailed) as info:
        workspace.jobs.run("fail", {"message": "bad things"})
    job = info.value.job
    assert job["status"] == "failed" and "RuntimeError: bad things" in job["error"]
    assert "modelloop jobs logs" in str(info.value)
    assert "Traceback" in workspace.jobs.logs(job["id"]) and "about to fail" in workspace.jobs.logs(
        job["id"]
    )


@pytest.mark.worker_processes
def test_sigkill_of_the_worker_marks_the_job_failed(local_workspace):
    ws = local_workspace
    started = {}
    result = {}

    def run():
        try:
            ws.jobs.run(
                "sleep",
                {"steps": 400, "seconds": 0.05},
                on_start=lambda i: started.setdefault("id", i),
            )
        except JobFailed as exc:
            result["job"] = exc.job

    t = threading.Thread(target=run)
    t.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = ws.store.get_job(started["id"]) if "id" in started else None
        if job and job["status"] == "running" and ws.jobs.metric_series(job["id"]):
            break
        time.sleep(0.05)
    os.kill(job["pid"], signal.SIGKILL)
    t.join(60)
    assert result["job"]["status"] == "failed"
    assert "killed by signal 9" in result["job"]["error"]
    assert "step 0" in ws.jobs.logs(result["job"]["id"])


@pytest.mark.worker_processes
def test_orphaned_running_job_is_reaped(local_workspace):
    ws = local_workspace
    job_id = ws.store.create_job(kind="sleep", name=None, spec={}, params={})
    proc = ws.jobs.start(job_id)
    deadline = time.monotonic() + 60
    while ws.store.get_job(job_id)["status"] != "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # nobody is waiting for it
    proc.wait()
    job = ws.jobs.get(job_id)
    assert job["status"] == "failed" and "died" in job["error"]


@pytest.mark.worker_processes
def test_cancel_a_running_job(local_workspace):
    ws = local_workspace
    job_id = ws.store.create_job(
        kind="sleep", name=None, spec={"steps": 1000, "seconds": 0.05}, params={}
    )
    proc = ws.jobs.start(job_id)
    deadline = time.monotonic() + 60
    while ws.store.get_job(job_id)["status"] != "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    job = ws.jobs.cancel(job_id)
    proc.wait(30)
    assert job["status"] == "cancelled"
    with pytest.raises(InvalidInput, match="already cancelled"):
        ws.jobs.cancel(job_id)


def test_search_and_compare(local_workspace):
    ws = local_workspace
    ids = []
    for steps in (1, 3, 5):
        ids.append(
            ws.jobs.run("sleep", {"steps": steps, "seconds": 0}, params={"steps": steps})["id"]
        )
    found = ws.jobs.search("metrics.steps > 2 and kind = sleep")
    assert sorted(j["id"] for j in found) == ids[1:]
    assert [j["id"] for j in ws.jobs.search("params.steps = 1")] == ids[:1]
    cmp = ws.jobs.compare(ids)
    assert cmp["metrics"]["steps"] == [1.0, 3.0, 5.0]
    with pytest.raises(InvalidInput, match="cannot read the search condition"):
        ws.jobs.search("roc_auc is high")
    with pytest.raises(NotFound):
        ws.jobs.get(999)


def test_jobs_cli(local_workspace, cli):
    ws = local_workspace
    job = ws.jobs.run("sleep", {"steps": 2, "seconds": 0}, params={"steps": 2})
    listed = cli("jobs", "list", "--json", cwd=ws.root).json()
    assert listed[0]["id"] == job["id"]
    assert "step 1" in cli("jobs", "logs", str(job["id"]), cwd=ws.root).out
    shown = cli("jobs", "show", str(job["id"]), "--json", cwd=ws.root).json()
    assert shown["status"] == "succeeded"
    assert (
        cli("jobs", "search", "metrics.steps = 2", "--json", cwd=ws.root).json()[0]["id"]
        == job["id"]
    )
    bad = cli("jobs", "show", "12345", cwd=ws.root, check=False)
    assert bad.code != 0 and "no job 12345" in bad.err and "Traceback" not in bad.err
