"""Triggers through the SDK: each cause fires its action once, concurrency policies, missed
schedules, retries, bad input. Actions are small pipelines (tests/automation/trigger_pipes.py)
that leave a mark per run, so 'ran once' is counted, not assumed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.foreground import wait_for

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


@pytest.mark.all_backends
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


# -- concurrency per target --------------------------------------------------------------------------
def _hold(marks: Path):
    (marks / "HOLD").touch()


def _release(ws, marks: Path):
    (marks / "HOLD").unlink()
    ws.triggers.wait(60)


@pytest.mark.all_backends
@pytest.mark.parametrize("policy", ["skip", "queue", "cancel-previous"])
def test_overlapping_causes_follow_the_concurrency_policy(workspace, marks, policy):
    ws = workspace
    t = ws.triggers
    t.create("p", cause={"on": "manual"}, action=pipe_action(), concurrency=policy)
    now = datetime.now(UTC)
    _hold(marks)
    first = t.fire("p")
    t.run_pending(now)  # starts the first in a thread, where it holds
    assert t.history("p")[0]["status"] == "running"
    wait_for(lambda: ran(marks) == 1)  # inside its first step (a busy machine may take a while)
    second, third = t.fire("p"), t.fire("p")
    t.run_pending(now)
    seen = {f["id"]: f["status"] for f in t.history("p")}
    assert seen[first["id"]] == "running"  # never two runs of one target at once
    if policy == "skip":
        assert seen[second["id"]] == seen[third["id"]] == "skipped"
    elif policy == "queue":
        assert seen[second["id"]] == seen[third["id"]] == "pending"
    else:
        assert seen[second["id"]] == "cancelled" and seen[third["id"]] == "pending"
    _release(ws, marks)
    for _ in range(3):
        t.run_pending(now, wait=True)
    seen = {f["id"]: f for f in t.history("p")}
    assert ran(marks) == {"skip": 1, "queue": 3, "cancel-previous": 2}[policy]
    succeeded = {"skip": 1, "queue": 3, "cancel-previous": 1}[policy]
    assert sum(f["status"] == "succeeded" for f in seen.values()) == succeeded
    if policy != "skip":
        assert seen[third["id"]]["status"] == "succeeded"
    if policy == "cancel-previous":  # the running one stopped at its next step, not retried
        stopped = seen[first["id"]]
        assert stopped["status"] == "cancelled" and stopped["attempts"] == 1
        assert f"replaced by firing {third['id']}" in stopped["error"]
        run = ws.runs.get(stopped["started"]["run_id"])
        assert run["status"] == "failed" and "stopped: replaced by firing" in run["error"]
        steps = {s["name"]: s["status"] for s in ws.runs.steps(run["id"])}
        assert steps == {"note": "succeeded", "finish": "pending"}
    # each firing started at most one run, and each run names its firing
    runs = ws.runs.list(pipeline="marker")
    assert sorted(r["started_by"]["firing"] for r in runs) == sorted(
        f["id"] for f in seen.values() if f["started"])


def test_a_failing_action_is_recorded_and_retried_with_backoff(workspace, marks):
    t = workspace.triggers
    t.create("flaky", cause={"on": "manual"}, action=pipe_action(),
             retry={"max_attempts": 2, "backoff_seconds": 10})
    (marks / "FAIL").touch()
    t.fire("flaky")
    now = datetime.now(UTC)
    t.run_pending(now, wait=True)  # never raises
    (f,) = t.history("flaky")
    assert f["status"] == "pending" and f["attempts"] == 1
    assert "asked to fail" in f["error"] and f["not_before"] >= now + timedelta(seconds=10)
    assert t.run_pending(now + timedelta(seconds=1), wait=True) == []  # backing off
    t.run_pending(now + timedelta(seconds=60), wait=True)
    (f,) = t.history("flaky")
    assert f["status"] == "failed" and f["attempts"] == 2 and "asked to fail" in f["error"]
    # the second attempt resumed the failed run instead of starting another
    assert len(workspace.runs.list(pipeline="marker")) == 1


# -- watched folders ---------------------------------------------------------------------------------
def test_a_watched_file_is_ingested_once_after_it_settled(workspace, marks, tmp_path):
    ws = workspace
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    ws.triggers.create("inbox", cause={"on": "watch", "location": str(inbox), "dataset": "d",
                                       "pattern": "*.csv", "settle_seconds": 5},
                       action=pipe_action())
    t0 = datetime.now(UTC)
    f = inbox / "day1.csv"
    f.write_text("a,b\n1,2\n")  # half written
    (inbox / ".day2.csv").write_text("a,b\n")  # a temporary name: never seen
    assert ws.triggers.due(t0) == []
    f.write_text("a,b\n1,2\n3,4\n5,6\n")  # the writer goes on: its clock restarts
    assert ws.triggers.due(t0 + timedelta(seconds=4)) == []
    assert ws.triggers.due(t0 + timedelta(seconds=8)) == []  # 4 s unchanged: not yet
    (fired,) = ws.triggers.due(t0 + timedelta(seconds=10))
    assert fired["cause"]["file"] == str(f)
    ws.triggers.run_pending(t0 + timedelta(seconds=10), wait=True)
    done = ws.triggers.history("inbox")[0]
    assert done["status"] == "succeeded", done
    assert done["cause"]["ref"] == "d@1" and ws.datasets.get("d").row_count == 3
    assert ran(marks) == 1
    # a restarted controller (a fresh workspace) sees the file again, and leaves it
    from modelloop import Workspace

    with Workspace(ws.root) as again:
        assert again.triggers.due(t0 + timedelta(seconds=60)) == []
        assert again.triggers.due(t0 + timedelta(seconds=120)) == []
    assert [v.version for v in ws.datasets.versions("d")] == [1]


# -- deploy and roll back ----------------------------------------------------------------------------
def test_an_approval_deploys_that_version_once_and_an_alarm_rolls_back(workspace):
    from tests.serving.conftest import register_model

    ws = workspace
    first = register_model(ws, "clf")
    ws.endpoints.create("web", first)
    ws.triggers.create("ship", cause={"on": "approval", "model": "clf"},
                       action={"do": "deploy", "endpoint": "web"})
    ws.monitoring.alarms.create("errors", "errors", threshold=1.0)
    ws.triggers.create("undo", cause={"on": "alarm", "alarm": "errors"},
                       action={"do": "rollback", "endpoint": "web"})
    after = ws.store.last_event_id()
    second = register_model(ws, "clf", seed=1)  # registered and approved: one event each
    now = datetime.now(UTC)
    for _ in range(2):
        for event in ws.events(after_id=after):
            ws.triggers.on_event(event)
        ws.triggers.run_pending(now, wait=True)
    (shipped,) = ws.triggers.history("ship")
    assert shipped["status"] == "succeeded", shipped["error"]
    assert shipped["result"]["model"] == second
    assert [v["model"] for v in ws.endpoints.get("web")["spec"]["variants"]] == [second]
    ws.store.append_event("alarm.triggered", "errors", {"alarm": "errors", "reason": "test"})
    for event in ws.events(kind="alarm.triggered"):
        ws.triggers.on_event(event)
    ws.triggers.run_pending(now, wait=True)
    (undone,) = ws.triggers.history("undo")
    assert undone["status"] == "succeeded", undone["error"]
    assert [v["model"] for v in ws.endpoints.get("web")["spec"]["variants"]] == [first]


def test_a_watched_s3_prefix_ingests_each_object_once(workspace, s3_bucket):
    import boto3

    ws = workspace
    bucket = s3_bucket.split("://", 1)[1].split("/", 1)[0]
    prefix = f"s3://{bucket}/landing/"
    ws.triggers.create("s3-inbox", cause={"on": "watch", "location": prefix, "dataset": "s3d",
                                          "pattern": "*.csv", "settle_seconds": 0},
                       action={"do": "ingest"})
    s3 = boto3.client("s3")
    s3.put_object(Bucket=bucket, Key="landing/a.csv", Body=b"x,y\n1,2\n3,4\n")
    s3.put_object(Bucket=bucket, Key="landing/_SUCCESS", Body=b"")
    now = datetime.now(UTC)
    for _ in range(2):
        ws.triggers.due(now)
        ws.triggers.run_pending(now, wait=True)
    (done,) = ws.triggers.history("s3-inbox")
    assert done["status"] == "succeeded", done["error"]
    assert done["cause"]["file"] == f"s3://{bucket}/landing/a.csv"
    s3.put_object(Bucket=bucket, Key="landing/b.csv", Body=b"x,y\n5,6\n")
    for _ in range(2):
        ws.triggers.due(now)
        ws.triggers.run_pending(now, wait=True)
    assert [f["cause"]["ref"] for f in ws.triggers.history("s3-inbox")] == ["s3d@2", "s3d@1"]
    assert ws.datasets.get("s3d").row_count == 3


def test_new_data_scores_the_new_version_with_a_batch_transform(workspace, tmp_path):
    import numpy as np
    import pandas as pd
    from tests.conftest import write_csv
    from tests.serving.conftest import FEATURES, register_model

    ws = workspace
    ref = register_model(ws, "clf")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(50, len(FEATURES))), columns=FEATURES)
    ws.datasets.ingest("feats", write_csv(tmp_path / "a.csv", frame))
    out = tmp_path / "scores"
    ws.triggers.create("score", cause={"on": "new_data", "dataset": "feats"},
                       action={"do": "transform", "model": ref, "output": str(out)})
    ws.datasets.ingest("feats", write_csv(tmp_path / "b.csv", frame.head(20)))
    for event in ws.events(kind="dataset.version_created"):
        ws.triggers.on_event(event)
    ws.triggers.run_pending(datetime.now(UTC), wait=True)
    (done,) = ws.triggers.history("score")
    assert done["status"] == "succeeded", done["error"]
    assert done["cause"]["ref"] == "feats@2" and done["started"]["job_id"]
    assert done["result"]["transform"]["rows"] == 70  # the version: every row up to it


def test_an_alias_moving_is_a_cause_with_its_version(workspace, marks):
    ws = workspace
    ws.triggers.create("moved", cause={"on": "approval", "model": "m", "alias": "champion"},
                       action=pipe_action())
    ws.store.append_event("model.approved", "m@2", {"model": "m", "version": 2})
    ws.store.append_event("model.alias_moved", "m@staging",
                          {"model": "m", "alias": "staging", "version": 2})
    ws.store.append_event("model.alias_moved", "m@champion",
                          {"model": "m", "alias": "champion", "version": 2})
    fired = [f for e in ws.events() for f in ws.triggers.on_event(e)]
    assert [f["cause"]["ref"] for f in fired] == ["m@2"]
    assert fired[0]["cause_text"] == "m@champion moved to 2"
