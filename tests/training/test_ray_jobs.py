"""Jobs on Ray (``--executor ray``): the same records, lineage and log as a local job, tuning
trials in parallel, cancel, a failing job, a dead Ray worker, and the errors for a missing Ray
or an unreachable cluster.

The tests share the suite's one local Ray instance (``local_ray`` and ``RAY_TESTS`` in
``tests/conftest.py``: Ray takes seconds to start on 2 cores, so one xdist worker runs every Ray
test on one instance).
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from tests.conftest import write_csv

from modelloop.common.status import JobStatus
from modelloop.training.jobs import JobFailed
from modelloop.training.rows import VALIDATION_ARTIFACT

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.ray


@pytest.fixture
def ws(workspace, tmp_path, binary):
    write_csv(tmp_path / "d.csv", binary)
    workspace.datasets.ingest("d", [tmp_path / "d.csv"])
    return workspace


def _comparable_log(text: str) -> list[str]:
    """The log lines a job writes whatever ran it (not the runner's own lines, not who ran it)."""
    skip = ("sent to Ray", "started on", "job ")
    return [line for line in text.splitlines() if not line.startswith(skip)]


@pytest.mark.all_backends
def test_a_train_job_on_ray_has_the_records_of_a_local_one(local_ray, ws, cli):
    local = ws.training.train("d", "y", "logistic_regression", seed=3)
    remote = ws.training.train("d", "y", "logistic_regression", seed=3, executor="ray")

    assert remote["status"] == JobStatus.SUCCEEDED
    assert remote["pid"] != os.getpid()  # it ran in a Ray worker, not here
    timeless = [{k: v for k, v in j["metrics"].items() if k != "fit_seconds"}
                for j in (local, remote)]  # fmt: skip
    assert timeless[1] == timeless[0]
    assert remote["params"] == local["params"]
    assert remote["inputs"] == local["inputs"]  # lineage: the same version and parts
    assert remote["info"]["split"] == local["info"]["split"]
    arts = {j["id"]: {a["name"]: a["digest"] for a in ws.jobs.artifacts_of(j["id"])}
            for j in (local, remote)}  # fmt: skip
    assert arts[remote["id"]].keys() == arts[local["id"]].keys()
    assert arts[remote["id"]][VALIDATION_ARTIFACT] == arts[local["id"]][VALIDATION_ARTIFACT]
    shown = cli("-w", ws.root, "jobs", "logs", remote["id"]).out
    assert f"job {remote['id']} sent to Ray" in shown
    assert _comparable_log(shown) == _comparable_log(ws.jobs.logs(local["id"]))
    assert "stored the model package" in shown
    # the model registers and loads like any other
    record = ws.models.register_from_job("m", remote["id"])
    assert ws.models.load(record["ref"]).task == "binary"


def test_a_tune_on_ray_runs_its_trials_in_parallel_with_the_same_study(local_ray, ws, cli):
    grid = {"C": [0.01, 0.1, 1.0, 10.0]}
    options = dict(sampler="grid", pruner=None, n_trials=None, cv=2, seed=1)
    local = ws.training.tune("d", "y", "logistic_regression", grid, **options)
    out = cli("-w", ws.root, "tune", "d", "-t", "y", "-a", "logistic_regression", "--sampler", "grid",
              "--pruner", "none", "--cv", "2", "--seed", "1", "--jobs", "2", "--executor", "ray",
              "--space", _write_space(ws.root / "grid.yaml", grid), "--json")
    remote = out.json()

    def by_params(job):
        return {t["params"]["C"]: t["value"] for t in job["outputs"]["trials"]}

    assert by_params(remote) == by_params(local)  # the same grid, scored the same
    assert remote["outputs"]["best"] == local["outputs"]["best"]
    trials = ws.jobs.list(parent_id=remote["id"], limit=None)
    assert len(trials) == len(remote["outputs"]["trials"]) >= 4
    assert {t["kind"] for t in trials} == {"trial"}
    assert {t["status"] for t in trials} == {JobStatus.SUCCEEDED}
    assert all(t["metrics"].get("roc_auc") is not None for t in trials)
    spans = sorted((t["started_at"], t["ended_at"]) for t in trials)
    assert any(b[0] < a[1] for a, b in zip(spans, spans[1:], strict=False)), spans  # overlap
    assert "trial 3 complete" in ws.jobs.logs(remote["id"])


def _write_space(path, grid):
    path.write_text("".join(f"{k}: {v}\n" for k, v in grid.items()))
    return path


def _start(ws, spec: dict, **kwargs):
    """Run a ``sleep`` job on Ray in a thread; return the thread, its outcome and the job id
    once the job is running."""
    outcome: dict = {}
    ids: list[int] = []

    def run():
        try:
            outcome["job"] = ws.jobs.run("sleep", spec, executor="ray", on_start=ids.append,
                                         **kwargs)
        except BaseException as exc:  # noqa: BLE001 - looked at by the test
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if ids and "step 0" in _log_file(ws, ids[0]):  # running, and its log reaches us
            return thread, outcome, ids[0]
        assert thread.is_alive(), outcome
        time.sleep(0.1)
    raise AssertionError("the job did not start on Ray")


def _log_file(ws, job_id: int) -> str:
    path = ws.jobs.log_path(job_id)
    return path.read_text() if path.exists() else ""


@pytest.mark.parametrize("seconds", [0.1, 60.0], ids=["between-steps", "stuck-in-a-call"])
def test_cancel_stops_the_ray_task_and_the_job_ends_cancelled(local_ray, ws, cli, seconds):
    """A job between steps stops itself; one stuck in a call has its Ray task force-cancelled
    once the grace period is over (the job waits 60 s, the test much less)."""
    thread, outcome, job_id = _start(ws, {"steps": 600, "seconds": seconds})
    started = time.monotonic()
    cli("-w", ws.root, "jobs", "cancel", job_id)
    thread.join(60)
    assert not thread.is_alive()
    assert time.monotonic() - started < 50
    assert isinstance(outcome.get("error"), JobFailed)
    job = ws.jobs.get(job_id)
    assert job["status"] == JobStatus.CANCELLED
    assert job["error"] == "cancelled by user"
    assert "step 0" in ws.jobs.logs(job_id)
    # the Ray worker is free for the next job
    assert ws.jobs.run("sleep", {"steps": 1, "seconds": 0}, executor="ray")["status"] == "succeeded"


def test_a_failing_job_on_ray_keeps_its_error_and_log(local_ray, ws, cli):
    with pytest.raises(JobFailed) as failed:
        ws.jobs.run("fail", {"message": "no luck on Ray"}, executor="ray")
    job = failed.value.job
    assert job["status"] == JobStatus.FAILED
    assert job["error"] == "RuntimeError: no luck on Ray"
    log = cli("-w", ws.root, "jobs", "logs", job["id"]).out
    assert "about to fail" in log
    assert "said on stderr" in log  # the job's own stderr
    assert "Traceback" in log and "RuntimeError: no luck on Ray" in log


def test_a_dead_ray_worker_fails_the_job_and_its_children_with_a_reason(local_ray, ws):
    thread, outcome, job_id = _start(ws, {"steps": 600, "seconds": 0.1, "children": 2})
    os.kill(ws.store.get_job(job_id)["pid"], signal.SIGKILL)
    thread.join(60)
    assert not thread.is_alive()
    job = ws.store.get_job(job_id)  # not ws.jobs.get: its reaper would see the dead pid first
    assert job["status"] == JobStatus.FAILED
    assert job["error"].startswith("its Ray worker died"), job["error"]
    assert "step 0" in ws.jobs.logs(job_id)
    children = ws.store.list_jobs(parent_id=job_id)
    assert len(children) == 2
    assert {(c["status"], c["error"]) for c in children} == {
        (JobStatus.FAILED, f"its parent job {job_id} ended failed")}


def test_the_config_sends_train_and_tune_jobs_to_ray_and_no_others(local_ray, ws, monkeypatch):
    from modelloop import Workspace

    monkeypatch.setenv("MODELLOOP_JOB_EXECUTOR", "ray")  # as [jobs] executor = "ray" does
    with Workspace(ws.root) as configured:
        trained = configured.training.train("d", "y", "logistic_regression")
        other = configured.jobs.run("sleep", {"steps": 1, "seconds": 0})
        assert "sent to Ray" in configured.jobs.logs(trained["id"])
        assert "sent to Ray" not in configured.jobs.logs(other["id"])
    assert trained["pid"] != os.getpid()
    assert other["pid"] == os.getpid()  # the tests' inline runner: this process


def test_ray_not_installed_is_a_clear_error(ws, cli, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "ray", None)  # import ray fails
    before = len(ws.jobs.list())
    result = cli("-w", ws.root, "train", "d", "-t", "y", "--executor", "ray", check=False)
    assert result.code != 0
    assert "needs Ray" in result.err and "modelloop[ray]" in result.err
    assert len(ws.jobs.list()) == before  # no job was recorded for it


@pytest.mark.cli_subprocess
def test_an_unreachable_ray_address_fails_fast(ws, cli):
    started = time.monotonic()
    result = cli("-w", ws.root, "train", "d", "-t", "y", "--executor", "ray",
                 env={"RAY_ADDRESS": "127.0.0.1:9"}, check=False, timeout=120)
    assert result.code != 0
    assert "cannot reach the Ray cluster at 127.0.0.1:9" in result.err
    assert time.monotonic() - started < 60  # not Ray's own minutes of retrying
    assert ws.jobs.list() == []


def test_the_executor_comes_from_the_config(tmp_path, monkeypatch):
    from modelloop.config import Config
    from modelloop.errors import ConfigError

    (tmp_path / "modelloop.toml").write_text('[jobs]\nexecutor = "ray"\n')
    assert Config.load(tmp_path).job_executor == "ray"
    monkeypatch.setenv("MODELLOOP_JOB_EXECUTOR", "local")
    assert Config.load(tmp_path).job_executor == "local"
    monkeypatch.setenv("MODELLOOP_JOB_EXECUTOR", "threads")
    with pytest.raises(ConfigError, match="local, ray"):
        Config.load(tmp_path)
