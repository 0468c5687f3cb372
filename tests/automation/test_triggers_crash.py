"""Exactly once across crashes: a process is SIGKILLed between claiming a firing and finishing
it (MODELLOOP_FAULT, see modelloop._faults), then the same calls run again from a fresh
Workspace on the same store, as a restarted controller would make them."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.automation.test_triggers import pipe_action, ran

_TICK = """
import sys
from datetime import datetime, UTC
from modelloop import Workspace
ws = Workspace(sys.argv[1])
for event in ws.events():
    ws.triggers.on_event(event)
now = datetime.now(UTC)
ws.triggers.due(now)
ws.triggers.run_pending(now, wait=True)
print("finished")
"""


def tick_killed_at(ws, fault: str, marks: Path) -> None:
    """One controller tick in a process that SIGKILLs itself at ``fault``."""
    env = {**os.environ, "MODELLOOP_FAULT": fault, "TRIGGER_TEST_DIR": str(marks),
           "PYTHONPATH": os.pathsep.join(p for p in [str(Path(__file__).parents[2] / "src"),
                                                     os.environ.get("PYTHONPATH", "")] if p)}
    proc = subprocess.run([sys.executable, "-c", _TICK, str(ws.root)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, (proc.returncode, proc.stdout, proc.stderr[-3000:])
    assert "finished" not in proc.stdout


def tick(root) -> None:
    from modelloop import Workspace

    with Workspace(root) as ws:
        for event in ws.events():
            ws.triggers.on_event(event)
        now = datetime.now(UTC)
        ws.triggers.due(now)
        ws.triggers.run_pending(now, wait=True)


@pytest.fixture
def marks(tmp_path, monkeypatch):
    folder = tmp_path / "marks"
    folder.mkdir()
    monkeypatch.setenv("TRIGGER_TEST_DIR", str(folder))
    return folder


@pytest.mark.parametrize("fault", ["trigger.claimed", "pipeline.step_recorded", "trigger.acted"])
def test_an_event_fires_once_when_the_process_dies_midway(workspace, marks, fault):
    ws = workspace
    ws.triggers.create("approved", cause={"on": "approval", "model": "m"}, action=pipe_action())
    ws.store.append_event("model.approved", "m@1", {"model": "m", "version": 1})
    tick_killed_at(ws, fault, marks)
    (f,) = ws.triggers.history("approved")
    assert f["status"] == "running"  # claimed by the dead process
    before = ran(marks)
    tick(ws.root)
    tick(ws.root)
    (f,) = ws.triggers.history("approved")
    assert f["status"] == "succeeded", f
    assert f["attempts"] == 1  # adopted, not attempted again
    runs = ws.runs.list(pipeline="marker")
    assert len(runs) == 1  # started before the crash, or after it: once
    assert runs[0]["started_by"]["firing"] == f["id"] and f["started"]["run_id"] == runs[0]["id"]
    # the step ran once: before the crash when it was recorded, else after it
    assert ran(marks) == 1 and before == (0 if fault == "trigger.claimed" else 1)


@pytest.mark.all_backends
def test_a_watched_file_is_ingested_once_when_the_process_dies_midway(workspace, marks,
                                                                       tmp_path):
    ws = workspace
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    ws.triggers.create("inbox", cause={"on": "watch", "location": str(inbox), "dataset": "d",
                                       "settle_seconds": 0}, action=pipe_action())
    (inbox / "day1.csv").write_text("a,b\n1,2\n3,4\n")
    tick_killed_at(ws, "pipeline.step_recorded", marks)  # after the ingest and the step
    tick(ws.root)
    (f,) = ws.triggers.history("inbox")
    assert f["status"] == "succeeded" and f["cause"]["ref"] == "d@1"
    assert [v.version for v in ws.datasets.versions("d")] == [1] and ran(marks) == 1
