"""Triggers through the SDK: each cause fires its action once, concurrency policies, missed
schedules, retries, bad input. Actions are small pipelines (tests/automation/trigger_pipes.py)
that leave a mark per run, so 'ran once' is counted, not assumed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from modelloop.errors import InvalidInput, NotFound

PIPES = Path(__file__).with_name("trigger_pipes.py")


@pytest.fixture
def marks(tmp_path, monkeypatch):
    folder = tmp_path / "marks"
    folder.mkdir()
    monkeypatch.setenv("TRIGGER_TEST_DIR", str(folder))
    return folder


def ran(marks: Path, tag: str = "") -> int:
    return len(list(marks.glob(f"ran-{tag}*")))


def pipe_action(tag: str = "x") -> dict:
    return {"do": "run_pipeline", "pipeline": f"{PIPES}:marker", "params": {"tag": tag}}


def statuses(ws, name=None) -> list[str]:
    return [f["status"] for f in reversed(ws.triggers.history(name))]


@pytest.mark.all_backends
def test_a_manual_firing_runs_once_and_the_run_says_what_started_it(workspace, marks):
    ws = workspace
    ws.triggers.create("by-hand", cause={"on": "manual"}, action=pipe_action())
    firing = ws.triggers.fire("by-hand")
    assert firing["status"] == "pending" and firing["cause"]["on"] == "manual"
    now = datetime.now(UTC)
    (claimed,) = ws.triggers.run_pending(now, wait=True)
    assert claimed["id"] == firing["id"]
    assert ws.triggers.run_pending(now, wait=True) == []
    done = ws.triggers.history("by-hand")[0]
    assert done["status"] == "succeeded", done
    assert done["attempts"] == 1 and ran(marks) == 1
    run = ws.runs.get(done["started"]["run_id"])
    assert run["started_by"]["firing"] == firing["id"]
    assert run["started_by"]["trigger"] == "by-hand"


def test_an_event_fires_once_however_often_it_is_delivered(workspace, marks, tmp_path):
    ws = workspace
    ws.triggers.create("on-approval", cause={"on": "approval", "model": "loans"},
                       action=pipe_action())
    eid = ws.store.append_event("model.approved", "loans@3", {"model": "loans", "version": 3})
    other = ws.store.append_event("model.approved", "other@1", {"model": "other", "version": 1})
    (event,) = ws.events(after_id=eid - 1, limit=1)
    first = ws.triggers.on_event(event)
    assert [f["cause"]["ref"] for f in first] == ["loans@3"]
    assert ws.triggers.on_event(event) == []  # delivered again: nothing new
    assert ws.triggers.on_event(ws.events(after_id=eid)[0]) == []  # not its model
    assert other > eid
    now = datetime.now(UTC)
    ws.triggers.run_pending(now, wait=True)
    ws.triggers.run_pending(now, wait=True)
    assert statuses(ws) == ["succeeded"] and ran(marks) == 1


def test_new_data_fires_once_enough_rows_arrived(workspace, marks, tmp_path):
    import pandas as pd
    from tests.conftest import write_csv

    ws = workspace
    frame = pd.DataFrame({"a": range(10), "b": range(10)})
    ws.datasets.ingest("d", write_csv(tmp_path / "0.csv", frame))
    ws.triggers.create("grow", cause={"on": "new_data", "dataset": "d", "min_new_rows": 15},
                       action=pipe_action())
    fired = []
    for i in range(1, 4):
        ws.datasets.ingest("d", write_csv(tmp_path / f"{i}.csv", frame + i * 100))
        for event in ws.events(kind="dataset.version_created"):
            fired += ws.triggers.on_event(event)
    # 10 new rows: not yet; 20: fires; then 10 more: not yet
    assert [f["cause"]["ref"] for f in fired] == ["d@3"]
    assert fired[0]["cause"]["new_rows"] == 20


def test_bad_input_is_a_typed_error(workspace):
    t = workspace.triggers
    with pytest.raises(NotFound, match="no dataset named 'nope'"):
        t.create("a", cause={"on": "new_data", "dataset": "nope"}, action=pipe_action())
    with pytest.raises(NotFound, match="nope"):
        t.create("a", cause={"on": "alarm", "alarm": "nope"}, action=pipe_action())
    with pytest.raises(NotFound, match="no loop named 'nope'"):
        t.create("a", cause={"on": "manual"}, action={"do": "run_loop", "loop": "nope"})
    with pytest.raises(NotFound, match="nope"):
        t.create("a", cause={"on": "manual"}, action={"do": "rollback", "endpoint": "nope"})
    with pytest.raises(InvalidInput, match="not a cron schedule"):
        t.create("a", cause={"on": "cron", "schedule": "61 * * *"}, action=pipe_action())
    with pytest.raises(InvalidInput, match="unknown time zone 'Mars/Base'"):
        t.create("a", cause={"on": "cron", "schedule": "0 6 * * *", "timezone": "Mars/Base"},
                 action=pipe_action())
    with pytest.raises(InvalidInput, match="unknown cause 'sometimes'"):
        t.create("a", cause={"on": "sometimes"}, action=pipe_action())
    with pytest.raises(InvalidInput, match="concurrency"):
        t.create("a", cause={"on": "manual"}, action=pipe_action(), concurrency="often")
    assert t.list() == []


def test_a_cron_fires_each_slot_once_in_its_time_zone(workspace, marks):
    t = workspace.triggers
    t.create("daily", cause={"on": "cron", "schedule": "0 6 * * *", "timezone": "Europe/Paris"},
             action=pipe_action())
    nxt = t.next_firings()["daily"]
    assert nxt.astimezone(UTC).hour in (4, 5)  # 06:00 in Paris, summer or winter
    assert t.due(nxt - timedelta(seconds=1)) == []
    (fired,) = t.due(nxt + timedelta(seconds=5))
    assert fired["cause_key"] == f"cron:{nxt.isoformat()}"
    assert t.due(nxt + timedelta(seconds=6)) == []
    assert t.next_firings(nxt + timedelta(seconds=6))["daily"] == nxt + timedelta(days=1)


@pytest.mark.parametrize("policy", ["skip", "catch-up-once"])
def test_a_missed_cron_follows_its_policy(workspace, marks, policy):
    t = workspace.triggers
    t.create("hourly", cause={"on": "cron", "schedule": "0 * * * *"}, action=pipe_action(),
             missed=policy)
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    later = hour + timedelta(hours=5, minutes=30)  # down for hours: 5 slots, the last 30 min ago
    (fired,) = t.due(later)
    assert fired["cause"]["missed"] == 5
    assert fired["status"] == ("skipped" if policy == "skip" else "pending")
    assert t.due(later) == []  # once, not once per missed slot
    t.run_pending(later, wait=True)
    assert ran(marks) == (0 if policy == "skip" else 1)
