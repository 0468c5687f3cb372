"""``modelloop trigger …`` as a user types it: create, list, show, fire, history, pause,
resume, delete; bad input is one line on stderr and a non-zero exit."""

from __future__ import annotations

import pytest
from tests.automation.test_triggers import PIPES, ran


@pytest.fixture
def marks(tmp_path, monkeypatch):
    folder = tmp_path / "marks"
    folder.mkdir()
    monkeypatch.setenv("TRIGGER_TEST_DIR", str(folder))
    return folder


def test_the_trigger_commands(workspace, cli, marks):
    w = ("-w", workspace.root)
    made = cli(*w, "trigger", "create", "nightly", "--cron", "0 2 * * *", "--timezone",
               "America/New_York", "--run-pipeline", f"{PIPES}:marker", "--concurrency", "queue",
               "--missed", "catch-up-once")
    assert "Created trigger nightly" in made.out and "cron" in made.out
    listed = cli(*w, "trigger", "list", "--json").json()
    assert [t["name"] for t in listed] == ["nightly"] and listed[0]["next_firing"]
    assert listed[0]["target"] == f"pipeline:{PIPES}:marker"
    fired = cli(*w, "trigger", "fire", "nightly", "--payload", '{"why": "test"}')
    assert "succeeded" in fired.out and ran(marks) == 1
    history = cli(*w, "trigger", "history", "nightly", "--json").json()
    assert history[0]["cause"]["payload"] == {"why": "test"}
    assert history[0]["status"] == "succeeded"
    run_id = history[0]["started"]["run_id"]
    shown = cli(*w, "runs", "show", str(run_id))
    assert f"started by: trigger nightly (firing {history[0]['id']})" in shown.out
    assert "paused" not in cli(*w, "trigger", "show", "nightly").out.split("\n")[0]
    cli(*w, "trigger", "pause", "nightly")
    assert cli(*w, "trigger", "show", "nightly", "--json").json()["paused"] is True
    assert cli(*w, "trigger", "show", "nightly", "--json").json()["next_firing"] is None
    cli(*w, "trigger", "resume", "nightly")
    assert "nightly" in cli(*w, "trigger", "history").out
    cli(*w, "trigger", "delete", "nightly")
    assert cli(*w, "trigger", "list", "--json").json() == []


@pytest.mark.parametrize("args, message", [
    (["--on-new-data", "nope", "--run-pipeline", "x.py:p"], "no dataset named 'nope'"),
    (["--on-alarm", "nope", "--run-pipeline", "x.py:p"], "nope"),
    (["--run-loop", "nope"], "no loop named 'nope'"),
    (["--deploy", "nope", "--model", "m@1"], "nope"),
    (["--cron", "every day", "--run-pipeline", "x.py:p"], "not a cron schedule"),
    (["--cron", "0 6 * * *", "--timezone", "Paris", "--run-pipeline", "x.py:p"],
     "unknown time zone 'Paris'"),
    (["--cron", "0 6 * * *"], "say what the trigger does"),
    (["--cron", "0 6 * * *", "--on-alarm", "a", "--webhook", "http://x"], "give one cause"),
    (["--watch", "/nowhere/at/all", "--dataset", "d", "--webhook", "http://x"], "no folder"),
    (["--webhook", "ftp://x"], "http"),
])
def test_bad_input_is_one_line_on_stderr(workspace, cli, args, message):
    result = cli("-w", workspace.root, "trigger", "create", "t", *args, check=False)
    assert result.code != 0
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result
    assert "Traceback" not in result.err


def test_unknown_trigger(workspace, cli):
    for cmd in (["show", "nope"], ["fire", "nope"], ["pause", "nope"], ["delete", "nope"],
                ["history", "nope"]):
        result = cli("-w", workspace.root, "trigger", *cmd, check=False)
        assert result.code != 0 and "no trigger named 'nope'" in result.err, result
