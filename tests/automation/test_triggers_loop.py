"""Triggers of a loop spec (its ``triggers:`` section) and the run_loop action end to end: a file
lands in the watched folder, is ingested once, its new rows fire the loop, the run says which
firing started it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from modelloop.data.agrawal import write_days
from modelloop.errors import InvalidInput
from modelloop.pipelines.loop_triggers import resolve_all

SPEC = """\
name: loans
data:
  dataset: loans
  event_time_column: applied_at
target: approved
split: {method: time, fraction: 0.25}
quality:
  ignore: [application_id, applied_at]
train:
  algorithm: hist_gradient_boosting
  params: {max_iter: 10}
triggers:
  - name: incoming
    on: watch
    location: incoming/
    pattern: "*.csv"
    settle_seconds: 0
  - on: new_data
    min_new_rows: 100
    concurrency: queue
  - {on: cron, schedule: "0 6 * * *", timezone: Europe/Paris, missed: catch-up-once}
"""


def _spec(ws, tmp_path):
    path = tmp_path / "loop.yaml"
    path.write_text(SPEC)
    (tmp_path / "incoming").mkdir(exist_ok=True)
    return path


def test_the_triggers_section_old_and_new_forms(workspace, tmp_path):
    spec_path = _spec(workspace, tmp_path)
    write_days(tmp_path / "first", 1, 200)
    workspace.datasets.ingest("loans", tmp_path / "first")
    spec = workspace.loops.validate(spec_path)
    made = resolve_all(spec.triggers, loop="loans", dataset="loans", model="loans",
                       endpoint=None, spec_path=str(spec_path), base_dir=str(tmp_path))
    assert [m["name"] for m in made] == ["incoming", "loans-new_data", "loans-cron"]
    assert made[0]["cause"] == {"on": "watch", "location": str(tmp_path / "incoming"),
                                "dataset": "loans", "pattern": "*.csv", "settle_seconds": 0.0}
    assert made[0]["action"] == {"do": "ingest"}
    assert made[1]["action"] == {"do": "run_loop", "loop": "loans", "spec": str(spec_path)}
    assert made[1]["concurrency"] == "queue" and made[2]["missed"] == "catch-up-once"
    for kwargs in made:
        workspace.triggers.create(**kwargs, owner="loop:loans")
    assert len(workspace.triggers.list(owner="loop:loans")) == 3
    # the old forms still validate
    old = SPEC.split("triggers:")[0] + "triggers: [{on: new_data}, {on: manual}]\n"
    (tmp_path / "old.yaml").write_text(old)
    assert [t.on for t in workspace.loops.validate(tmp_path / "old.yaml").triggers] == [
        "new_data", "manual"]


@pytest.mark.parametrize("section, message", [
    ("{on: cron, schedule: '0 6 * * *', timezone: Mars/Base}", "unknown time zone 'Mars/Base'"),
    ("{on: cron, schedule: 'often'}", "not a cron schedule"),
    ("{on: alarm}", "needs the alarm's name"),
    ("{on: alarm, alarm: a, url: 'http://x'}", "url: not used by an on: alarm trigger"),
    ("{on: new_data, do: ingest}", "do: ingest is for watch triggers"),
    ("{on: new_data, concurrency: sometimes}", "concurrency"),
])
def test_a_bad_triggers_section_names_its_line(workspace, tmp_path, section, message):
    path = tmp_path / "bad.yaml"
    path.write_text(SPEC.split("triggers:")[0] + f"triggers:\n  - {section}\n")
    write_days(tmp_path / "first", 1, 50)
    workspace.datasets.ingest("loans", tmp_path / "first")
    with pytest.raises(InvalidInput, match="bad.yaml:13 triggers.0") as err:
        workspace.loops.validate(path)
    assert message in str(err.value) + " ".join(err.value.details)


@pytest.mark.slow
def test_a_file_landing_runs_the_loop_once(workspace, tmp_path):
    ws = workspace
    spec_path = _spec(ws, tmp_path)
    write_days(tmp_path / "first", 1, 300)
    ws.datasets.ingest("loans", tmp_path / "first", event_time_column="applied_at")
    made = resolve_all(ws.loops.validate(spec_path).triggers, loop="loans", dataset="loans",
                       model="loans", endpoint=None, spec_path=str(spec_path),
                       base_dir=str(tmp_path))
    for kwargs in made[:2]:
        ws.triggers.create(**kwargs, owner="loop:loans")
    write_days(tmp_path / "incoming", 1, 300, seed=7)
    now = datetime.now(UTC)
    for _ in range(3):  # controller ticks
        for event in ws.events():
            ws.triggers.on_event(event)
        ws.triggers.due(now)
        ws.triggers.run_pending(now, wait=True)
        now += timedelta(seconds=1)
    history = {f["trigger"]: f for f in ws.triggers.history()}
    assert history["incoming"]["status"] == "succeeded"
    assert history["incoming"]["cause"]["ref"] == "loans@2"
    fired = history["loans-new_data"]
    assert fired["status"] == "succeeded", (fired["error"], fired["attempts"], fired["not_before"])
    assert fired["cause"]["ref"] == "loans@2" and fired["cause"]["new_rows"] == 300
    run = ws.runs.get(fired["started"]["run_id"])
    assert run["status"] == "succeeded"
    assert run["started_by"] == {"firing": fired["id"], "trigger": "loans-new_data",
                                 "cause": "new data loans@2 (+300 rows)"}
    assert fired["result"]["champion"] == "loans@1"
    assert len(ws.runs.list()) == 1 and len(ws.datasets.versions("loans")) == 2
