"""``modelloop demo``: the README's first command, run small to completion."""

from __future__ import annotations


def test_demo_runs_the_loop_day_after_day(tmp_path, cli):
    folder = tmp_path / "demo"
    out = cli("demo", folder, "--days", "3", "--rows", "300", "--drift-day", "3", "--json").json()
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


def test_demo_table_for_a_person_and_a_used_folder_refused(tmp_path, cli):
    folder = tmp_path / "demo"
    result = cli("demo", folder, "--days", "2", "--rows", "200")
    assert "Loop 'loans' over 2 days" in result.out
    assert "champion AUC" in result.out and "loans@1" in result.out
    again = cli("demo", folder, check=False)
    assert again.code != 0 and "already holds a workspace" in again.err
    assert "Traceback" not in again.err
