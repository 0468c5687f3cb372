"""``modelloop demo``: the README's first command, run small to completion as a person reads it
(the stages line by line on a pipe, the table), its story read back from the summary it keeps;
``demo --online`` as a script reads it (``--json``).

The story must hold with no command typed: the drifted day's file is ingested and found drifted,
an alarm fires, its trigger retrains, the candidate passes the gate, a canary moves traffic to it,
it becomes the champion serving all traffic, and no request fails meanwhile."""

from __future__ import annotations

import json

import pytest

from modelloop.cli.demo import SUMMARY_FILE


@pytest.mark.slow
def test_demo_closes_the_loop_with_no_command_typed(demo_workspace, cli):
    # watched as a person watches it: the stages line by line (piped: no live view), the table;
    # the story read back from the summary the demo keeps (what --json prints). The demo ran
    # once for the session (conftest.demo_workspace: the console's browser tests walk it too).
    folder, result = demo_workspace.folder, demo_workspace
    out = json.loads((folder / SUMMARY_FILE).read_text())
    days = {d["day"]: d for d in out["days"]}
    assert sorted(days) == [1, 2, 3] and out["drift_day"] == 3
    assert all(d["rows"] == 600 for d in days.values()), out
    # day 1 trained the first champion; day 2 is the same population: no alarm
    assert days[1]["promoted"] == "loans@1"
    # (a column may move by chance; the alarm asks for a fifth of them)
    assert len(days[2]["drifted_columns"]) <= 1 and not days[2]["alarms"], days[2]
    drifted = days[3]
    # the drift found, its alarm, the retrain it triggered, the promotion
    assert drifted["drift"].startswith(("drift:", "dataset drift:")), drifted
    assert "loans-drift" in drifted["alarms"], drifted
    assert drifted["runs"] and drifted["promoted"] == "loans@2", drifted
    assert drifted["candidate_auc"] > drifted["holdout_champion_auc"] + 0.005
    reaction = out["reaction"]
    assert reaction["alarm"] in ("loans-drift", "loans-quality") and reaction["run"]
    assert all(v is not None for v in reaction["stages"].values()), reaction
    assert drifted["reaction_seconds"] == reaction["total"] > 0
    # the canary: a first step on part of the traffic, then all of it; completed
    canary = [r for r in out["rollouts"] if r["model"] == "loans@2"]
    assert canary and canary[0]["strategy"] == "canary" and canary[0]["status"] == "completed"
    assert [s[0] for s in canary[0]["steps"]] == [25.0, 100.0]
    assert out["champion"] == "loans@2"
    # requests kept flowing, none failed, and the new champion answers better than the old did
    assert out["requests"] > 0 and out["failures"] == 0, [d["errors"] for d in out["days"]]
    assert all(d["requests"] > 0 for d in out["days"])
    assert days[3]["champion_auc"] < 0.8 < (days[3]["live_auc_by_variant"].get("loans-v2") or 0)
    # what the triggers did: each file ingested once, the first champion by hand, the retrain by
    # an alarm; nothing failed
    fired = {(f["trigger"], f["status"]) for f in out["firings"]}
    assert ("retrain-now", "succeeded") in fired, out["firings"]
    starters = {f["trigger"] for f in out["firings"]
                if (f["started"] or {}).get("run_id") == reaction["run"]}
    assert len(starters) == 1 and starters <= {"retrain-on-drift", "retrain-on-quality"}
    files = [f["cause"]["file"] for f in out["firings"] if f["trigger"] == "incoming"]
    assert len(files) == len(set(files)) == 3
    assert not [f for f in out["firings"] if f["status"] == "failed"], out["firings"]

    # a used folder is refused
    refused = cli("demo", folder, check=False)
    assert refused.code != 0 and "already holds a workspace" in refused.err
    assert "Traceback" not in refused.err

    assert "The loop, day by day" in result.out and "drift → champion" in result.out
    assert "0 failed" in result.out
    for stage in ("ingest", "check", "alarm", "trigger", "train", "evaluate", "rollout",
                  "serving"):
        assert any(line.split("] ", 1)[-1].startswith(stage) for line in result.err.splitlines()
                   ), (stage, result.err)


@pytest.mark.slow
def test_online_demo_recovers_after_the_switch_while_the_frozen_model_does_not(tmp_path, cli):
    """``demo --online``, small: a real server and its learner process, events over HTTP."""
    out = cli("demo", tmp_path / "online", "--online", "--events", "1200", "--switch-at", "400",
              "--window", "200", "--event-rate", "100000", "--json", timeout=300).json()
    # --json prints what the demo keeps in its folder
    assert json.loads((tmp_path / "online" / SUMMARY_FILE).read_text()) == out
    assert out["events"] == out["events_accepted"] == 1200 and out["events_rejected"] == 0
    assert out["requests"] > 0 and out["failures"] == 0, out["errors"]
    assert [w["concept"] for w in out["windows"]] == ["before"] * 2 + ["after"] * 4
    assert out["champion"] == "loans@1" and out["guard_reverts"] == 0
    before, recovered = out["before"], out["recovered"]
    # before the switch both models know the rule; after it the frozen one is a coin, the
    # online one learned the new rule (the learner's own window metrics, scored on one stream)
    assert before["frozen"] > 0.85 and before["online"] > 0.7, before
    assert recovered["frozen"] < 0.6 and recovered["online"] > recovered["frozen"] + 0.2
    assert out["recovered_within_events"]["online"] is not None
    assert out["recovered_within_events"]["frozen"] is None
    # the endpoint answered with what was learned (at most a step or two behind: timing)
    assert recovered["served"] > recovered["frozen"] + 0.05, out["windows"]

    mixed = cli("demo", tmp_path / "mixed", "--online", "--days", "3", check=False)
    assert mixed.code != 0 and "--days goes without --online" in mixed.err
    assert "Traceback" not in mixed.err
