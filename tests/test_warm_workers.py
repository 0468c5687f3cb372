"""Warm job workers (``[jobs] runner = "warm"``) keep what a worker process of its own gives: a
killed, crashed, timed-out or cancelled job is marked with its log, the caller survives, the
worker follows its caller, workspaces never share a process; and a stale socket, a server of other
code, or a server gone between two jobs is replaced, the job still running.

Each test drives the SDK or the CLI as a user does, in workspaces of its own (each has its own
server, which the fixture shuts down).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading

import pytest
from tests.foreground import alive, foreground, stop_command, wait_for

from modelloop import Workspace
from modelloop.data.samples import loan_applications
from modelloop.training import warm_workers
from modelloop.training.jobs import JobFailed

pytestmark = [
    pytest.mark.worker_processes,
    pytest.mark.skipif(not warm_workers.available(), reason="warm workers fork: Linux only"),
]


@pytest.fixture
def warm(tmp_path, monkeypatch):
    """``open(name)``: a new workspace whose jobs run warm; its server is shut down afterwards."""
    monkeypatch.setenv("MODELLOOP_JOB_RUNNER", "warm")
    monkeypatch.setenv(warm_workers.ENV_IDLE, "300")
    opened = []

    def open_workspace(name: str = "ws") -> Workspace:
        root = tmp_path / name
        Workspace.init(root).close()
        ws = Workspace(root)
        assert ws.config.job_runner == "warm"
        opened.append(ws)
        return ws

    yield open_workspace
    for ws in opened:
        warm_workers.shutdown(ws.config.state_dir)
        ws.close()


def _ppid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as fh:
        return int(fh.read().rsplit(")", 1)[1].split()[1])






def _start_sleeping(ws, steps: int = 1000):
    """A ``sleep`` job run in a thread, returned once it reports progress: (thread, job record
    while running, [the JobFailed's job if it ended so])."""
    started, ended = [], []

    def run():
        try:
            ws.jobs.run("sleep", {"steps": steps, "seconds": 0.05}, on_start=started.append)
        except JobFailed as exc:
            ended.append(exc.job)

    waiter = threading.Thread(target=run)
    waiter.start()
    wait_for(lambda: started and ws.jobs.metric_series(started[0]))
    return waiter, ws.jobs.get(started[0]), ended


def test_a_job_runs_in_a_worker_forked_from_the_workspace_server(warm):
    ws = warm()
    first = ws.jobs.run("sleep", {"steps": 2, "seconds": 0}, params={"steps": 2})
    assert first["status"] == "succeeded" and first["pid"] != os.getpid()
    assert "step 1" in ws.jobs.logs(first["id"]) and first["log_digest"]
    waiter, job, _ = _start_sleeping(ws)
    server = _ppid(job["pid"])
    assert server != os.getpid() and os.getsid(job["pid"]) == job["pid"]  # its own session
    assert os.getsid(server) == server  # the server outlives its caller: a session of its own
    ws.jobs.cancel(job["id"])
    waiter.join(60)
    # the next job is forked from the same server, warm
    waiter, job, _ = _start_sleeping(ws)
    assert _ppid(job["pid"]) == server
    ws.jobs.cancel(job["id"])
    waiter.join(60)


def test_a_server_warmed_up_before_the_caller_imports_scikit_learn_takes_its_jobs(
    warm, monkeypatch
):
    """``jobs.warm_up()`` (what ``modelloop demo`` does first) starts the server in the background;
    the caller then imports scikit-learn, which sets ``KMP_*`` variables in its environment, and
    its first job still runs on that server instead of replacing it."""
    for key in warm_workers.SET_ON_IMPORT:
        monkeypatch.delenv(key, raising=False)  # as before the caller imported scikit-learn
    ws = warm()
    assert ws.jobs.warm_up()
    wait_for(lambda: warm_workers.wait_ready(ws.config.state_dir, ws.root))
    path = warm_workers.socket_path(ws.config.state_dir)
    server = os.stat(path).st_ino
    monkeypatch.setenv("KMP_DUPLICATE_LIB_OK", "True")  # what importing scikit-learn does
    monkeypatch.setenv("KMP_INIT_AT_FORK", "FALSE")
    job = ws.jobs.run("sleep", {"steps": 1, "seconds": 0})
    assert job["status"] == "succeeded" and "starting a fresh" not in ws.jobs.logs(job["id"])
    assert os.stat(path).st_ino == server  # the same server: not replaced
    monkeypatch.setenv("MODELLOOP_JOB_RUNNER", "inline")
    assert Workspace(ws.root).jobs.warm_up() is False  # nothing to warm up for inline jobs


def test_kill_9_of_the_worker_marks_the_job_failed_with_its_log(warm):
    ws = warm()
    waiter, job, ended = _start_sleeping(ws)
    os.kill(job["pid"], signal.SIGKILL)
    waiter.join(60)
    assert ended[0]["status"] == "failed"
    assert ended[0]["error"] == "its worker process was killed by signal 9"
    assert "step 0" in ws.jobs.logs(job["id"]) and ended[0]["log_digest"]


def test_cancel_and_timeout_stop_the_worker(warm, cli):
    ws = warm()
    waiter, job, ended = _start_sleeping(ws)
    shown = cli("-w", ws.root, "jobs", "cancel", job["id"], "--json").json()
    waiter.join(60)
    assert shown["status"] == "cancelled" and ended[0]["status"] == "cancelled"
    assert ws.jobs.logs(job["id"]).rstrip().endswith(f"job {job['id']} cancelled")
    wait_for(lambda: not alive(job["pid"]))
    with pytest.raises(JobFailed) as info:
        ws.jobs.run("sleep", {"steps": 1000, "seconds": 0.05}, timeout=2)
    timed_out = info.value.job
    assert timed_out["error"] == "timed out after 2 s and was killed" and timed_out["log_digest"]
    wait_for(lambda: not alive(timed_out["pid"]))


def test_a_crash_in_a_job_ends_its_worker_not_the_caller_nor_the_server(warm):
    ws = warm()
    with pytest.raises(JobFailed) as info:
        ws.jobs.run("crash", {"how": "exit", "status": 7})
    assert info.value.job["error"] == "its worker process exited with status 7"
    assert "about to crash" in info.value.log_tail
    with pytest.raises(JobFailed) as info:
        ws.jobs.run("crash", {"how": "segfault"})
    assert info.value.job["error"] == f"its worker process was killed by signal {signal.SIGSEGV}"
    with pytest.raises(JobFailed) as info:  # what a job prints, and its traceback, are its log's
        ws.jobs.run("fail", {"message": "bad things"})
    assert "said on stderr" in info.value.log_tail and "Traceback" in info.value.log_tail
    waiter, job, _ = _start_sleeping(ws)  # the server still forks workers
    ws.jobs.cancel(job["id"])
    waiter.join(60)


def test_jobs_of_two_workspaces_never_share_a_process(warm):
    one, two = warm("one"), warm("two")
    jobs = [_start_sleeping(ws) for ws in (one, two)]
    servers = [_ppid(job["pid"]) for _, job, _ in jobs]
    assert servers[0] != servers[1] and os.getpid() not in servers
    # a server refuses a job of another workspace, even when asked directly
    path = warm_workers.socket_path(one.config.state_dir)
    with socket.socket(socket.AF_UNIX) as conn:
        conn.connect(str(path))
        conn.sendall(b'{"ping": "%s", "root": "%s"}\n' % (warm_workers.fingerprint().encode(),
                                                          str(two.root).encode()))  # fmt: skip
        assert b"another workspace" in conn.recv(1000)
    for (waiter, job, _), ws in zip(jobs, (one, two), strict=True):
        ws.jobs.cancel(job["id"])
        waiter.join(60)


def test_a_stale_socket_or_a_server_of_other_code_is_replaced(warm, monkeypatch):
    ws = warm()
    path = warm_workers.socket_path(ws.config.state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))  # a socket file nobody listens on: its server died
    stale.close()
    assert ws.jobs.run("sleep", {"steps": 1, "seconds": 0})["status"] == "succeeded"
    waiter, job, _ = _start_sleeping(ws)
    old = _ppid(job["pid"])
    ws.jobs.cancel(job["id"])
    waiter.join(60)
    # another import-time environment (as another version of the code): a new server
    monkeypatch.setenv("PYTHONWARMTEST", "1")
    waiter, job, _ = _start_sleeping(ws)
    assert _ppid(job["pid"]) not in (old, os.getpid())
    wait_for(lambda: not alive(old))  # the old server left once its socket was replaced
    ws.jobs.cancel(job["id"])
    waiter.join(60)


def test_a_server_gone_between_or_during_jobs(warm):
    ws = warm()
    waiter, job, ended = _start_sleeping(ws, steps=40)
    server = _ppid(job["pid"])
    os.kill(server, signal.SIGKILL)  # during a job: the job goes on and its end is recorded
    waiter.join(120)
    assert not ended and ws.jobs.get(job["id"])["status"] == "succeeded"
    wait_for(lambda: not alive(server))
    # between jobs: the next job starts a new server (its socket is stale now)
    waiter, job, _ = _start_sleeping(ws)
    assert _ppid(job["pid"]) not in (server, os.getpid())
    ws.jobs.cancel(job["id"])
    waiter.join(60)


SLOW_TRAINER = """\
import time


def fit(frame, target, params):
    print("trainer started", flush=True)
    time.sleep(600)
"""


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_the_worker_follows_the_command_that_started_it(warm, tmp_path, sig):
    """``modelloop train`` killed, terminated or interrupted: its warm worker stops, the job is
    recorded with the reason, nothing is registered."""
    ws = warm()
    csv = tmp_path / "day1.csv"
    loan_applications(300, seed=1).to_csv(csv, index=False)
    (tmp_path / "slow.py").write_text(SLOW_TRAINER)
    ws.datasets.ingest("loans", [csv])
    train = subprocess.Popen(
        [sys.executable, "-m", "modelloop", "train", "loans", "-t", "approved",
         "-a", f"{tmp_path / 'slow.py'}:fit", "--register", "loans"],
        cwd=ws.root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        preexec_fn=foreground,  # Ctrl-C reaches it, however the suite was started
    )  # fmt: skip
    try:
        job = wait_for(
            lambda: next(
                (
                    j
                    for j in ws.jobs.list()
                    if j["status"] == "running" and "trainer started" in ws.jobs.log_tail(j["id"])
                ),
                None,
            )
        )
        assert _ppid(job["pid"]) != train.pid  # forked from the server, yet it follows the command
        ended = stop_command(train, sig, ws, job)
    finally:
        train.kill()
    assert ended["status"] in ("cancelled", "failed"), ended
    assert "started it" in ended["error"] or "interrupted" in ended["error"], ended["error"]
    assert ws.models.list() == []


def test_the_process_runner_stays_cold(warm, monkeypatch):
    ws = warm()
    monkeypatch.setenv("MODELLOOP_JOB_RUNNER", "process")
    cold = Workspace(ws.root)
    assert cold.jobs.run("sleep", {"steps": 1, "seconds": 0})["status"] == "succeeded"
    assert not warm_workers.socket_path(cold.config.state_dir).exists()
    cold.close()


def test_a_server_that_cannot_start_leaves_the_job_to_a_fresh_worker(warm, monkeypatch):
    ws = warm()
    monkeypatch.setenv(warm_workers.ENV_IDLE, "never")  # the server fails on it at start-up
    waiter, job, _ = _start_sleeping(ws)
    assert _ppid(job["pid"]) == os.getpid()  # a cold worker, the caller's child
    ws.jobs.cancel(job["id"])
    waiter.join(60)
    assert "the warm server did not start" in ws.jobs.logs(job["id"])


MODULE_TRAINER = """\
from sklearn.dummy import DummyClassifier


def fit(frame, target, params):
    return DummyClassifier().fit(frame.drop(columns=[target]), frame[target])
"""


def test_a_trainer_module_of_the_callers_folder_is_found(warm, tmp_path, cli):
    """A warm worker imports from the caller's folder, as ``python -m`` started there would."""
    ws = warm()
    csv = tmp_path / "day1.csv"
    loan_applications(200, seed=1).to_csv(csv, index=False)
    ws.datasets.ingest("loans", [csv])
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / "my_module_trainer.py").write_text(MODULE_TRAINER)
    ws.jobs.run("sleep", {"steps": 1, "seconds": 0})  # the server is up, started from the root
    done = subprocess.run(
        [sys.executable, "-m", "modelloop", "-w", str(ws.root), "train", "loans", "-t",
         "approved", "-a", "my_module_trainer:fit", "--json"],
        cwd=folder, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    job = ws.jobs.list(kind="train", limit=1)[0]
    assert job["status"] == "succeeded"
