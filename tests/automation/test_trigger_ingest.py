"""``do: ingest``: a watch trigger that only ingests (the closed-loop demo's watched folder), so
what reacts to the new version is the after-ingest monitors and their alarms' triggers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from modelloop.pipelines.loop_triggers import TriggerSection


def test_a_watch_trigger_that_only_ingests_makes_one_version_per_file(workspace, tmp_path):
    ws = workspace
    folder = tmp_path / "landing"
    folder.mkdir()
    ws.triggers.create("landing", cause={"on": "watch", "location": str(folder),
                                         "dataset": "loans", "pattern": "*.csv",
                                         "settle_seconds": 0},
                       action={"do": "ingest"})
    (folder / "a.csv").write_text("x,y\n1,2\n3,4\n")
    later = datetime.now(UTC) + timedelta(seconds=5)
    for _ in range(2):  # a file seen, then settled; looked at again: nothing new
        ws.triggers.due(later)
        ws.triggers.run_pending(later, wait=True)
    (done,) = ws.triggers.history("landing")
    assert done["status"] == "succeeded", done
    assert done["cause"]["ref"] == "loans@1" and ws.datasets.get("loans").row_count == 2
    assert ws.runs.list() == []  # nothing but the ingest ran


def test_ingest_is_an_action_of_watch_triggers_only():
    with pytest.raises(ValueError, match="do: ingest is for watch triggers"):
        TriggerSection.model_validate({"on": "alarm", "alarm": "a", "do": "ingest"})
    made = TriggerSection.model_validate({"on": "watch", "location": "in/", "do": "ingest"})
    assert made.resolve(loop="l", dataset="d", model="m", endpoint=None)["action"] == {
        "do": "ingest"}


def test_a_loop_whose_data_comes_through_its_watch_trigger_applies_before_any_data(
        workspace, tmp_path):
    ws = workspace
    (tmp_path / "incoming").mkdir()
    spec = tmp_path / "loop.yaml"
    spec.write_text(
        "name: loans\n"
        "data: {dataset: loans}\n"
        "target: approved\n"
        "triggers:\n"
        "  - {name: incoming, on: watch, location: incoming/, pattern: '*.csv', do: ingest}\n"
        "  - {name: retrain-now, on: manual}\n")
    changes = {(c["kind"], c["name"]): c["action"] for c in ws.loops.apply(spec)}
    assert changes[("loop", "loans")] == "created"
    assert changes[("trigger", "incoming")] == changes[("trigger", "retrain-now")] == "created"
    watched = ws.triggers.get("incoming")["cause"]
    # relative to the spec's folder, as data.ingest is, not to where apply happened to run
    assert Path(watched["location"]) == tmp_path / "incoming" and watched["dataset"] == "loans"
    assert all(c["action"] == "unchanged" for c in ws.loops.apply(spec))
