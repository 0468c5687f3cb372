"""Stopping a controller while an action runs: the action gets ``--grace`` seconds to end; one
still running when the controller exits is continued by the next controller (its run resumed,
never a second run)."""

from __future__ import annotations

import os

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


def _held_action(ws, marks):
    (marks / "HOLD").touch()  # the marker step waits while this exists
    ws.triggers.create("by-hand", cause={"on": "manual"},
                       action={"do": "run_pipeline", "pipeline": f"{PIPES}:marker",
                               "params": {"tag": "x"}})  # fmt: skip
    return ws.triggers.fire("by-hand")


def _runs_of(ws, firing: dict) -> list[dict]:
    return [r for r in ws.runs.list(limit=100)
            if (r.get("started_by") or {}).get("firing") == firing["id"]]  # fmt: skip


def _controller(ws, grace: str) -> Command:
    return Command(ws.root, "controller", "--interval", "0.3", "--lease-seconds", "2",
                   "--grace", grace)


def test_a_running_action_finishes_within_the_grace(local_workspace, marks):
    ws = local_workspace
    firing = _held_action(ws, marks)
    ctl = _controller(ws, "120")
    try:
        wait_for(lambda: list(marks.glob("ran-x-*")))  # the step is running (held)
        os.kill(ctl.pid, 15)
        ctl.wait_for_line("released")  # leadership let go; the action still runs
        assert ws.triggers.firing(firing["id"])["status"] == "running"
        (marks / "HOLD").unlink()
        code = ctl.proc.wait(120)
    finally:
        ctl.stop()
    assert code == 0, ctl.output
    done = ws.triggers.firing(firing["id"])
    assert done["status"] == "succeeded", done
    assert len(list(marks.glob("ran-x-*"))) == 1


def test_an_action_running_at_exit_is_resumed_by_the_next_controller(local_workspace, marks):
    ws = local_workspace
    firing = _held_action(ws, marks)
    ctl = _controller(ws, "0")
    try:
        wait_for(lambda: list(marks.glob("ran-x-*")))
        os.kill(ctl.pid, 15)
        code = ctl.proc.wait(120)  # not held up by the running action
    finally:
        ctl.stop()
    assert code == 0, ctl.output
    assert "1 action(s) still running after --grace (by-hand)" in ctl.output
    (run,) = _runs_of(ws, firing)
    assert run["status"] == "interrupted"  # its runner is gone
    (marks / "HOLD").unlink()
    again = _controller(ws, "30")
    try:
        wait_for(lambda: ws.triggers.firing(firing["id"])["status"] == "succeeded")
    finally:
        assert again.stop() == 0, again.output
    assert [r["status"] for r in _runs_of(ws, firing)] == ["succeeded"]  # the same run, resumed
    assert ws.triggers.firing(firing["id"])["started"]["run_id"] == run["id"]
