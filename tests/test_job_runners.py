"""The inline runner records a job as a worker process does: status, log, metrics, artifacts,
children, failures, timeouts and cancels. Each test runs the same jobs through both runners."""

from __future__ import annotations

import threading
import time

import numpy as np
import pandas as pd
import pytest

from modelloop import Workspace
from modelloop.errors import ConfigError, InvalidInput
from modelloop.training import worker_start
from modelloop.training.job_kinds import register_job_kind
from modelloop.training.jobs import JobFailed

pytestmark = pytest.mark.worker_processes  # each test picks its runners itself

RUNNERS = ("process", "inline")
#: Facts of the process that ran the job, not of the job.
PROCESS_FACTS = ("id", "parent_id", "host", "pid", "created_at", "started_at", "ended_at",
                 "log_digest")  # fmt: skip


def _open(root, runner, monkeypatch) -> Workspace:
    monkeypatch.setenv("MODELLOOP_JOB_RUNNER", runner)
    ws = Workspace(root)
    assert ws.config.job_runner == runner
    return ws


def _timeless(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if not k.endswith("seconds")}  # durations vary


def _record(ws, job: dict) -> dict:
    """What a job recorded, without the facts of the process that ran it, nor durations."""
    out = {k: v for k, v in job.items() if k not in PROCESS_FACTS}
    out["metrics"] = _timeless(job["metrics"])
    out["outputs"] = {k: v for k, v in job["outputs"].items() if k != "artifacts"}
    out["series"] = [(m["key"], m["value"], m["step"]) for m in ws.jobs.metric_series(job["id"])]
    out["artifacts"] = sorted(a["name"] for a in ws.jobs.artifacts_of(job["id"]))
    # the first and last lines name the job's id, host and pid
    out["log"] = [line for line in ws.jobs.logs(job["id"]).splitlines() if
                  not line.startswith(f"job {job['id']} ")]  # fmt: skip
    children = ws.jobs.list(parent_id=job["id"], limit=None)
    out["children"] = sorted(
        ({k: c[k] for k in ("kind", "name", "status", "params")} | {"metrics": _timeless(c["metrics"])}
         for c in children),
        key=lambda c: c["name"],
    )
    return out


def _both(tmp_path, monkeypatch, run) -> dict:
    """``run(ws)`` in one workspace per runner; the records it returns, by runner."""
    records = {}
    for runner in RUNNERS:
        root = tmp_path / runner
        Workspace.init(root).close()
        ws = _open(root, runner, monkeypatch)
        try:
            records[runner] = run(ws)
        finally:
            ws.close()
    return records


def test_a_succeeding_job_is_recorded_the_same(tmp_path, monkeypatch):
    """The process runner's worker here is one started early (``prepare_job``, what ``modelloop
    train`` does before its checks): the job runs in it, its log is the job's log."""
    early = []

    def run(ws):
        ws.prepare_job("sleep")  # nothing for the inline runner
        early.extend(w.proc.pid for w in worker_start._EARLY.values())
        job = ws.jobs.run("sleep", {"steps": 3, "seconds": 0}, name="nap", params={"steps": 3})
        assert not worker_start._EARLY
        return job["pid"], _record(ws, job)

    (worker, process), (caller, inline) = _both(tmp_path, monkeypatch, run).values()
    assert process == inline and inline["status"] == "succeeded"
    assert inline["log"] == ["step 0", "step 1", "step 2"]
    assert worker != caller == __import__("os").getpid()
    assert early == [worker]
    assert not list(tmp_path.glob("*/.modelloop/logs/.early-*"))  # renamed to the job's log


def test_an_early_worker_no_job_was_given_ends_with_the_workspace(tmp_path, monkeypatch):
    Workspace.init(tmp_path).close()
    ws = _open(tmp_path, "process", monkeypatch)
    ws.prepare_job("train")  # then the request is refused: no job
    (early,) = worker_start._EARLY.values()
    ws.close()
    assert early.proc.returncode is not None and not worker_start._EARLY
    assert not list(tmp_path.glob(".modelloop/logs/.early-*"))


def test_a_failing_job_is_recorded_the_same_with_its_log(tmp_path, monkeypatch):
    def run(ws):
        with pytest.raises(JobFailed) as info:
            ws.jobs.run("fail", {"message": "bad things"})
        assert "modelloop jobs logs" in str(info.value)
        assert "about to fail" in info.value.log_tail
        return _record(ws, info.value.job)

    process, inline = _both(tmp_path, monkeypatch, run).values()
    assert process == inline
    assert inline["status"] == "failed" and inline["error"] == "RuntimeError: bad things"
    # what the job printed itself, and its traceback, are in the log
    for line in ("about to fail", "said on stderr", "Traceback (most recent call last):"):
        assert line in inline["log"]


def test_train_and_tune_jobs_are_recorded_the_same(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=200), "z": rng.normal(size=200)})
    frame["y"] = (frame.x + 0.3 * rng.normal(size=200) > 0).astype(int)
    data = tmp_path / "d.csv"
    frame.to_csv(data, index=False)
    space = tmp_path / "space.yaml"
    space.write_text("max_depth: {type: int, low: 1, high: 4}\n")

    def run(ws):
        ws.datasets.ingest("d", [data])
        train = ws.training.train("d", "y", "logistic_regression")
        tune = ws.training.tune("d", "y", "decision_tree", str(space), n_trials=3, cv=2,
                                sampler="random", seed=1)  # fmt: skip
        return _record(ws, train), _record(ws, tune)

    process, inline = _both(tmp_path, monkeypatch, run).values()
    for p, i in zip(process, inline, strict=True):
        assert {k: v for k, v in p.items() if k not in ("info", "outputs", "log")} == {
            k: v for k, v in i.items() if k not in ("info", "outputs", "log")
        }
        assert p["info"].keys() == i["info"].keys() and p["outputs"].keys() == i["outputs"].keys()
        assert [line.split(" in ")[0] for line in p["log"]] == [
            line.split(" in ")[0] for line in i["log"]
        ]  # a trial's line ends with its duration
    train, tune = inline
    assert "model/model.json" in train["artifacts"] and train["metrics"]
    assert [(c["kind"], c["name"], c["status"]) for c in tune["children"]] == [
        ("trial", f"trial {n}", "succeeded") for n in range(3)
    ]


@pytest.mark.parametrize("runner", RUNNERS)
def test_a_job_over_its_time_limit_is_stopped_and_failed(tmp_path, monkeypatch, runner):
    Workspace.init(tmp_path / "ws").close()
    ws = _open(tmp_path / "ws", runner, monkeypatch)
    with pytest.raises(JobFailed) as info:
        ws.jobs.run("sleep", {"steps": 1000, "seconds": 0.05}, timeout=1.5)
    job = info.value.job
    assert job["status"] == "failed" and job["error"] == "timed out after 1.5 s and was killed"
    assert job["log_digest"] and ws.jobs.get(job["id"]) == job
    ws.close()


@pytest.mark.parametrize("runner", RUNNERS)
def test_cancelling_a_running_job(tmp_path, monkeypatch, runner):
    Workspace.init(tmp_path / "ws").close()
    ws = _open(tmp_path / "ws", runner, monkeypatch)
    waiter, started, ended = _start_sleeping(ws)
    job = ws.jobs.cancel(started[0])
    waiter.join(60)
    assert job["status"] == "cancelled" and job["error"] == "cancelled by user"
    assert ended[0]["status"] == "cancelled" and "step 0" in ws.jobs.logs(job["id"])
    assert ended[0]["metrics"] == {}  # it never reached its end
    ws.close()


def test_cancelling_an_inline_job_from_another_process(local_workspace, monkeypatch, cli):
    """``modelloop jobs cancel`` records it; the inline runner of the process running the job
    sees that and stops it, without a signal to that process (not a worker: it is this test)."""
    ws = _open(local_workspace.root, "inline", monkeypatch)
    waiter, started, ended = _start_sleeping(ws)
    shown = cli("-w", ws.root, "jobs", "cancel", started[0], "--json").json()
    waiter.join(60)
    assert shown["status"] == "cancelled" and ended[0]["status"] == "cancelled"
    log = ws.jobs.logs(started[0])
    assert log.rstrip().endswith(f"job {started[0]} cancelled")  # it stopped, and said so
    ws.close()


def test_the_runner_is_a_workspace_setting(tmp_path, monkeypatch):
    monkeypatch.delenv("MODELLOOP_JOB_RUNNER", raising=False)
    root = tmp_path / "ws"
    Workspace.init(root).close()
    assert Workspace(root).config.job_runner == "warm"  # see tests/test_warm_workers.py
    config = root / "modelloop.toml"
    config.write_text(config.read_text() + '\n[jobs]\nrunner = "inline"\n')
    ws = Workspace(root)
    assert ws.config.job_runner == "inline"
    assert ws.jobs.run("sleep", {"steps": 1, "seconds": 0})["pid"] == __import__("os").getpid()
    monkeypatch.setenv("MODELLOOP_JOB_RUNNER", "threads")  # the variable wins over the file
    with pytest.raises(ConfigError, match="unknown job runner 'threads'"):
        Workspace(root).jobs  # noqa: B018


def test_an_unknown_kind_is_refused_before_it_is_recorded(local_workspace):
    ws = local_workspace
    with pytest.raises(InvalidInput, match="unknown job kind 'slep'") as info:
        ws.jobs.run("slep", {})
    assert "sleep" in info.value.hint and "train" in info.value.hint
    assert ws.jobs.list() == []


def test_a_kind_name_belongs_to_one_function():
    import modelloop.training.service  # noqa: F401 - registers train

    def run_other(ctx, spec):
        pass

    with pytest.raises(ValueError, match="'train' is already registered"):
        register_job_kind("train", run_other)


def _start_sleeping(ws):
    """Run a long ``sleep`` job in a thread; return once it is running and reporting progress:
    (the thread, [job id], [the job's record if it ended failed or cancelled])."""
    started, ended = [], []

    def run():
        try:
            ws.jobs.run("sleep", {"steps": 1000, "seconds": 0.05}, on_start=started.append)
        except JobFailed as exc:
            ended.append(exc.job)

    waiter = threading.Thread(target=run)
    waiter.start()
    deadline = time.monotonic() + 60
    while not (started and ws.jobs.metric_series(started[0])) and time.monotonic() < deadline:
        time.sleep(0.05)
    return waiter, started, ended
