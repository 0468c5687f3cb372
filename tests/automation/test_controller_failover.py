"""Several controllers on one PostgreSQL workspace: one leads; when it is killed (SIGKILL, no
chance to let its lease go) another takes over within the lease, and the killed one, restarted,
stands by."""

from __future__ import annotations

import signal

import pytest
from tests.automation.processes import Command
from tests.foreground import wait_for

LEASE = "2"  # seconds: a standby takes over at most about this long after the leader died


@pytest.fixture
def pg_workspace(tmp_path, postgres_url):
    from modelloop import Workspace

    ws = Workspace.init(tmp_path / "ws", store_url=postgres_url)
    yield ws
    ws.close()


def _controller(ws) -> Command:
    return Command(ws.root, "controller", "--interval", "0.3", "--lease-seconds", LEASE)


def test_the_leader_killed_another_takes_over_and_the_first_comes_back_as_standby(pg_workspace):
    ws = pg_workspace
    first = _controller(ws)
    second = third = None
    try:
        first.wait_for_line("leading (term 1)")
        second = _controller(ws)
        second.wait_for_line("standby (leader ")
        assert ws.store.get_lease("controller")["holder"].split(":")[1] == str(first.pid)
        first.stop(signal.SIGKILL)
        second.wait_for_line("leading (term 2)")
        lease = ws.store.get_lease("controller")
        assert (lease["holder"].split(":")[1], lease["term"]) == (str(second.pid), 2)
        assert "leading (term 1)" not in second.output  # never led while the first did
        third = _controller(ws)  # the killed one, restarted
        third.wait_for_line("standby (leader ")
        assert "leading" not in third.output.replace("standby (leader", "")
        assert wait_for(lambda: ws.store.get_lease("controller")["term"] == 2)
    finally:
        for cmd in (first, second, third):
            if cmd is not None:
                cmd.stop(signal.SIGTERM)
    assert second.proc.returncode == 0 and third.proc.returncode == 0
