"""The controller on Redis Streams (``[events] url = "redis://…"``): the trigger tests' crash
scenario (tests/automation/test_controller_crash.py) passes as on the embedded stream. A
controller killed (SIGKILL) between handling an event and acknowledging it, or mid-action, then
started again, fires the action once; its unacknowledged delivery comes back from Redis's pending
entries."""

from __future__ import annotations

import signal
import uuid

import pytest
from tests.automation.test_controller_crash import (
    _approve,
    _controller,
    _done,
    _on_approval,
    _runs_started_by,
    marks,  # noqa: F401 - the fixture
)
from tests.foreground import wait_for

from modelloop import Workspace
from modelloop.events.redis_stream import RedisStream


@pytest.fixture
def redis_workspace(tmp_path, redis_url, monkeypatch):
    """A workspace whose event stream is Redis (a stream key of its own); the environment
    carries the URL to the controller processes."""
    monkeypatch.setenv("MODELLOOP_EVENTS_URL", f"{redis_url}?stream=t:{uuid.uuid4().hex[:12]}")
    ws = Workspace.init(tmp_path / "ws")
    yield ws
    if "events_stream" in ws.__dict__:
        ws.events_stream.client.delete(ws.events_stream.key)
    ws.close()


@pytest.mark.parametrize("fault", ["controller.before_ack", "trigger.claimed"])
def test_killed_mid_action_and_restarted_fires_once_on_redis(redis_workspace, marks, fault):  # noqa: F811
    ws = redis_workspace
    assert isinstance(ws.events_stream, RedisStream)
    _on_approval(ws)
    _approve(ws, 3)
    first = _controller(ws, fault)
    assert first.proc.wait(120) == -signal.SIGKILL, first.output
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
