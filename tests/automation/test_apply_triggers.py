"""A loop's triggers through ``loop apply``: made with the loop as owner, unchanged on a second
apply, deleted when the spec drops them; a trigger runs the applied loop by name, and the run
shows what started it in ``loop status``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from tests.automation.test_apply import QUALITY as QUALITY_
from tests.automation.test_apply import write_spec

from modelloop.errors import NotFound

TRIGGERS = """\
triggers:
  - {on: alarm, alarm: loans-drift}
  - {on: manual}
"""
CRON = "  - {on: cron, schedule: '0 6 * * *', timezone: Europe/Paris}\n"


@pytest.fixture
def ws(local_workspace):
    from modelloop.data.agrawal import write_days

    files = write_days(local_workspace.root / "incoming", 1, 300)
    local_workspace.datasets.ingest("loans", files, event_time_column="applied_at")
    return local_workspace


def spec_with(ws, triggers):
    from tests.automation.test_apply import QUALITY

    return write_spec(ws.root, extra=QUALITY + triggers)


def test_triggers_are_the_loops_and_follow_the_spec(ws, cli):
    first = cli("-w", ws.root, "loop", "apply", spec_with(ws, TRIGGERS + CRON)).out
    for line in ("trigger/loans-alarm created", "trigger/loans-manual created",
                 "trigger/loans-cron created"):
        assert line in first, first
    alarm = ws.triggers.get("loans-alarm")
    assert alarm["owner"] == "loop:loans" and alarm["cause"]["alarm"] == "loans-drift"
    assert alarm["action"] == {"do": "run_loop", "loop": "loans"}
    assert "no changes" in cli("-w", ws.root, "loop", "apply", spec_with(ws, TRIGGERS + CRON)).out

    ws.triggers.pause("loans-cron")  # a person's pause survives an unrelated apply
    changes = ws.loops.apply(spec_with(ws, TRIGGERS + CRON.replace("6 *", "7 *")))
    updated = [c for c in changes if c["kind"] == "trigger" and c["action"] == "updated"]
    assert [(c["name"], c["diff"]) for c in updated] == [
        ("loans-cron", ["cause.schedule: \"0 6 * * *\" -> \"0 7 * * *\""])]
    assert ws.triggers.get("loans-cron")["paused"] is True

    status = cli("-w", ws.root, "loop", "status", "loans", "--json").json()
    assert {t["name"]: t.get("paused") for t in status["triggers"]} == {
        "loans-alarm": False, "loans-manual": False, "loans-cron": True}

    dropped = cli("-w", ws.root, "loop", "apply", spec_with(ws, TRIGGERS)).out
    assert "trigger/loans-cron deleted" in dropped
    with pytest.raises(NotFound):
        ws.triggers.get("loans-cron")
    assert sorted(t["name"] for t in ws.triggers.list(owner="loop:loans")) == [
        "loans-alarm", "loans-manual"]

    cli("-w", ws.root, "loop", "delete", "loans", "--yes")
    assert ws.triggers.list(owner="loop:loans") == []


@pytest.mark.slow
def test_a_trigger_runs_the_applied_loop_and_status_shows_what_started_it(ws, cli, tmp_path,
                                                                          monkeypatch):
    spec = spec_with(ws, TRIGGERS)
    ws.loops.apply(spec)
    monkeypatch.chdir(tmp_path)  # the stored loop does not depend on the caller's folder
    ws.triggers.fire("loans-manual")
    done = ws.triggers.run_pending(datetime.now(UTC), wait=True)
    assert [f["status"] for f in done] and ws.triggers.history("loans-manual")[0]["status"] == \
        "succeeded", ws.triggers.history("loans-manual")
    s = ws.loops.status("loans")
    assert s["champion"] == "loans@1"
    assert s["runs"][0]["started_by"]["trigger"] == "loans-manual"
    fired = {t["name"]: t["last_firing"] for t in s["triggers"]}
    assert fired["loans-manual"]["status"] == "succeeded" and fired["loans-alarm"] is None
    assert s["endpoint"]["variants"][0]["model"] == "loans@1"
    shown = cli("-w", ws.root, "loop", "status", "loans").out
    assert "loans-manual" in shown


def test_the_demos_loop_applies_and_reapplies_unchanged(local_workspace, cli):
    from modelloop.cli.demo_story import demo_spec
    from modelloop.data.agrawal import write_days

    ws = local_workspace
    files = write_days(ws.root / "incoming", 1, 300)
    ws.datasets.ingest("loans", files, event_time_column="applied_at")
    spec = ws.root / "loop.yaml"
    spec.write_text(demo_spec())
    changes = actions(cli("-w", ws.root, "loop", "apply", spec, "--json").json())
    assert set(changes.values()) == {"created", "waiting"}, changes
    assert changes[("endpoint", "loans")] == "waiting"  # until the first champion
    assert changes[("monitor", "loans-quality")] == "waiting"  # it scores the champion's answers
    assert changes[("monitor", "loans-drift")] == "created"
    assert {"loans-drift", "loans-quality"} <= {a["name"] for a in ws.alarms.list()}
    triggers = {t["name"]: t for t in ws.triggers.list(owner="loop:loans")}
    assert triggers["incoming"]["cause"]["location"] == str(ws.root / "incoming")
    assert triggers["retrain-on-drift"]["cause"]["alarm"] == "loans-drift"
    again = cli("-w", ws.root, "loop", "apply", spec).out
    assert "no changes" in again, again


def actions(changes):
    return {(c["kind"], c["name"]): c["action"] for c in changes}


def test_a_trigger_naming_an_unknown_alarm_changes_nothing(ws, cli):
    spec = spec_with(ws, "triggers:\n  - {on: alarm, alarm: loans-drfit}\n")
    bad = cli("-w", ws.root, "loop", "apply", spec, check=False)
    assert bad.code != 0 and bad.out == ""
    assert "trigger 'loans-alarm': no alarm named 'loans-drfit'" in bad.err
    assert ws.loops.list() == [] and ws.monitoring.monitors() == [] and ws.alarms.list() == []


def test_what_the_first_run_makes_is_waited_for_then_made(local_workspace, cli):
    from modelloop.data.agrawal import write_days

    ws = local_workspace
    write_days(ws.root / "incoming", 1, 300)
    spec = write_spec(ws.root, extra=QUALITY_ + "triggers:\n  - {on: new_data, min_new_rows: 100}\n")
    spec.write_text(spec.read_text().replace("  dataset: loans\n",
                                             "  dataset: loans\n  ingest: [incoming/]\n"))
    first = actions(ws.loops.apply(spec))
    assert first[("trigger", "loans-new_data")] == first[("monitor", "loans-drift")] == "waiting"
    missing = spec.read_text().replace("ingest: [incoming/]", "ingest: [incoming/]\n  window: 1")
    spec.with_name("watch.yaml").write_text(missing + "  - {on: watch, location: nowhere/, "
                                            "dataset: loans}\n")
    with pytest.raises(NotFound, match="no folder .*nowhere"):
        ws.loops.apply(spec.with_name("watch.yaml"))

    ran = cli("-w", ws.root, "loop", "run", "loans").out
    assert "applied   trigger/loans-new_data created" in ran, ran
    assert "applied   monitor/loans-drift created" in ran
    assert ws.triggers.get("loans-new_data")["cause"] == {
        "on": "new_data", "dataset": "loans", "min_new_rows": 100}
    assert "no changes" in cli("-w", ws.root, "loop", "apply", spec).out
