"""A controller killed (SIGKILL) anywhere between an event and its action's end, then started
again, fires the action once; two controllers on one PostgreSQL workspace, the leader killed
mid-action: the other takes over and nothing fires twice. The crash scenario runs on the embedded
event stream and on Redis Streams (``[events] url = "redis://…"``), where the dead controller's
unacknowledged delivery comes back from Redis's pending entries.

Actions are the trigger tests' marker pipeline (tests/automation/trigger_pipes.py), which leaves
one file per run: 'ran once' is counted."""

from __future__ import annotations

import os
import signal
import uuid

import pytest
from tests.automation.processes import Command
from tests.foreground import wait_for

PIPES = os.path.join(os.path.dirname(__file__), "trigger_pipes.py")


@pytest.fixture
def marks(tmp_path, monkeypatch):
    folder = tmp_path / "marks"
    folder.mkdir()
    monkeypatch.setenv("TRIGGER_TEST_DIR", str(folder))
    return folder


def _controller(ws, fault: str | None = None) -> Command:
    env = {"MODELLOOP_FAULT": fault} if fault else {}
    return Command(ws.root, "controller", "--interval", "0.3", "--lease-seconds", "2", env=env)


def _on_approval(ws, name="on-approval", tag="x"):
    ws.triggers.create(name, cause={"on": "approval", "model": "loans"},
                       action={"do": "run_pipeline", "pipeline": f"{PIPES}:marker",
                               "params": {"tag": tag}})  # fmt: skip


def _approve(ws, version: int) -> int:
    return ws.store.append_event("model.approved", f"loans@{version}",
                                 {"model": "loans", "version": version})


def _done(ws, trigger: str, n: int = 1):
    def check():
        firings = ws.triggers.history(trigger)
        return len(firings) == n and all(f["status"] == "succeeded" for f in firings) and firings

    return wait_for(check)


def _runs_started_by(ws, firing_id: int) -> list[dict]:
    return [r for r in ws.runs.list(limit=100)
            if (r.get("started_by") or {}).get("firing") == firing_id]  # fmt: skip


@pytest.fixture(params=["embedded", "redis"])
def stream_workspace(request, tmp_path, monkeypatch):
    """A workspace on each event stream; for Redis, a stream key of its own, whose URL the
    environment carries to the controller processes."""
    from modelloop import Workspace
    from modelloop.events.redis_stream import RedisStream

    if request.param == "embedded":
        yield request.getfixturevalue("local_workspace")
        return
    redis_url = request.getfixturevalue("redis_url")
    monkeypatch.setenv("MODELLOOP_EVENTS_URL", f"{redis_url}?stream=t:{uuid.uuid4().hex[:12]}")
    ws = Workspace.init(tmp_path / "ws")
    assert isinstance(ws.events_stream, RedisStream)
    yield ws
    ws.events_stream.client.delete(ws.events_stream.key)
    ws.close()


@pytest.mark.parametrize("fault", ["controller.before_ack", "trigger.claimed", "trigger.acted"])
def test_killed_mid_action_and_restarted_fires_once(stream_workspace, marks, fault):
    ws = stream_workspace
    _on_approval(ws)
    _approve(ws, 3)
    first = _controller(ws, fault)
    assert first.proc.wait(120) == -signal.SIGKILL, first.output  # died at the fault point
    first.reader.join(30)
    second = _controller(ws)
    try:
        (firing,) = _done(ws, "on-approval")
        # the dead controller's delivery is claimed once idle for a lease, handled, acknowledged
        wait_for(lambda: not any(ws.events_stream.group_info("controller")["pending"].values()))
    finally:
        assert second.stop() == 0, second.output
    assert len(ws.triggers.history("on-approval")) == 1
    assert len(list(marks.glob("ran-x-*"))) == 1
    assert len(_runs_started_by(ws, firing["id"])) == 1


def test_two_controllers_on_postgres_the_leader_killed_mid_action(tmp_path, postgres_url, marks):
    from modelloop import Workspace

    ws = Workspace.init(tmp_path / "ws", store_url=postgres_url)
    _on_approval(ws)
    ws.triggers.create("by-hand", cause={"on": "manual"},
                       action={"do": "run_pipeline", "pipeline": f"{PIPES}:marker",
                               "params": {"tag": "manual"}})  # fmt: skip
    leader = _controller(ws, "trigger.claimed")  # dies once it claimed a firing's action
    standby = None
    try:
        leader.wait_for_line("leading (term 1)")
        standby = _controller(ws)
        standby.wait_for_line("standby (leader ")
        _approve(ws, 3)
        assert leader.proc.wait(120) == -signal.SIGKILL, leader.output
        standby.wait_for_line("leading (term 2)")
        (approved,) = _done(ws, "on-approval")
        ws.triggers.fire("by-hand")
        (manual,) = _done(ws, "by-hand")
    finally:
        leader.stop(signal.SIGKILL)
        if standby is not None:
            assert standby.stop() == 0, standby.output
        ws.close()
    assert len(list(marks.glob("ran-x-*"))) == 1
    assert len(list(marks.glob("ran-manual-*"))) == 1
    assert approved["claimed_by"].split(":")[1] == str(standby.pid)  # adopted, run once
    assert "started on-approval (event:" in standby.output
