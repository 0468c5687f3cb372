"""``modelloop demo``: the README's first command, run small to completion — once as a script
reads it (``--json``), once as a person reads it (a table, progress lines on a pipe)."""

from __future__ import annotations

import pytest

from modelloop.training import warm_workers


@pytest.mark.slow
def test_demo_runs_the_loop_day_after_day_for_a_script_and_for_a_person(tmp_path, cli):
    folder = tmp_path / "demo"
    out = cli("demo", folder, "--days", "3", "--rows", "300", "--drift-day", "3", "--json",
              timeout=900).json()
    days = out["days"]
    assert [d["day"] for d in days] == [1, 2, 3]
    assert all(d["status"] == "succeeded" for d in days), days
    assert days[0]["promoted"] and days[0]["champion_version"] == "loans@1"
    assert days[0]["champion"] is None and days[1]["champion"] is not None
    assert [d["rows"] for d in days] == [300, 300, 300]
    # the champion moves exactly when a candidate was promoted
    version = 0
    for d in days:
        version += d["promoted"]
        assert d["champion_version"] == f"loans@{version}", days
        if not d["promoted"]:
            assert d["why"], d  # the gate says why
    # the workspace stays usable: the loop file runs again, fully reusing the last training
    again = cli("-w", folder, "loop", "run", folder / "loop.yaml", "--json").json()
    assert again["steps"]["train"] == "cached" and again["champion"] == days[-1]["champion_version"]
    # a used folder is refused
    refused = cli("demo", folder, check=False)
    assert refused.code != 0 and "already holds a workspace" in refused.err
    assert "Traceback" not in refused.err

    # for a person: a table at the end and, piped (no terminal), progress line by line
    result = cli("demo", tmp_path / "table", "--days", "2", "--rows", "200", timeout=900)
    assert "Loop 'loans' over 2 days" in result.out
    assert "champion AUC" in result.out and "loans@1" in result.out
    lines = result.err.splitlines()
    for day in (1, 2):
        assert f"day {day}: new applications" in lines, result.err
        assert f"day {day}: train" in lines, result.err
        assert any(line.startswith(f"day {day}: succeeded; candidate AUC") for line in lines)
    assert lines.index("day 1: train") < lines.index("day 2: new applications")
    for used in (folder, tmp_path / "table"):  # the warm job servers the demos started
        warm_workers.shutdown(used / ".modelloop")
