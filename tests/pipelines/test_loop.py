"""Loops end to end through the CLI: a champion, a worse candidate kept out, caching, approval."""

from __future__ import annotations

import pytest

from modelloop.data.agrawal import write_days

SPEC = """\
name: loans
data:
  dataset: loans
  ingest: [incoming/]
  event_time_column: applied_at
target: approved
split: {{method: time, fraction: 0.25}}
quality:
  ignore: [application_id, applied_at]
train:
  algorithm: hist_gradient_boosting
  params: {params}
evaluate:
  metric: roc_auc
  gate:
    - min_absolute_change: 0.0
register:
  approval: {approval}
deploy:
  endpoint: loans
"""

GOOD = "{max_iter: 30}"
WORSE = "{max_iter: 1, max_depth: 1, learning_rate: 0.01}"


def write_spec(folder, params=GOOD, approval="auto", name="loop.yaml"):
    path = folder / name
    path.write_text(SPEC.format(params=params, approval=approval))
    return path


def run_loop(cli, ws, spec, *extra, check=True):
    result = cli("-w", ws.root, "loop", "run", spec, "--json", *extra, check=check)
    return result.json()


@pytest.mark.all_backends
@pytest.mark.slow
def test_first_run_makes_a_champion_a_worse_candidate_is_not_promoted(workspace, cli):
    folder = workspace.root
    write_days(folder / "incoming", 2, 400)
    first = run_loop(cli, workspace, write_spec(folder))
    assert first["status"] == "succeeded", first
    assert first["data"]["ref"] == "loans@1" and first["data"]["rows"] == 800
    assert first["evaluation"]["champion"] is None and first["evaluation"]["passed"] is True
    assert first["promoted"]["ref"] == "loans@1" and first["champion"] == "loans@1"
    assert first["steps"]["validate"] == "succeeded"
    record = workspace.models.get("loans@champion")
    assert record["status"] == "approved" and record["version"] == 1
    assert first["deployed"]["deployed"] is True, first["deployed"]
    assert workspace.endpoints.get("loans") is not None

    worse = run_loop(cli, workspace, write_spec(folder, WORSE, name="worse.yaml"))
    assert worse["status"] == "succeeded", worse
    ev = worse["evaluation"]
    assert ev["passed"] is False and ev["candidate"] < ev["champion"]
    assert ev["reasons"] and "roc_auc improved by -" in ev["reasons"][0]
    # both models were scored on the same holdout rows
    assert ev["holdout_rows"] == first["evaluation"]["holdout_rows"]
    assert ev["holdout_sha256"] == first["evaluation"]["holdout_sha256"]
    for step in ("register", "promote", "deploy"):
        assert worse["steps"][step] == "skipped"
    assert worse["champion"] == "loans@1"
    assert [v["version"] for v in workspace.models.versions("loans")] == [1]

    shown = cli("-w", workspace.root, "loop", "run", write_spec(folder, WORSE, name="w2.yaml"))
    assert "gate failed" in shown.out and "champion  loans@1" in shown.out


@pytest.mark.slow
def test_unchanged_rerun_is_cached_and_new_data_retrains(local_workspace, cli):
    ws, folder = local_workspace, local_workspace.root
    write_days(folder / "incoming", 2, 300)
    spec = write_spec(folder)
    first = run_loop(cli, ws, spec)
    assert first["status"] == "succeeded" and first["champion"] == "loans@1"
    second = run_loop(cli, ws, spec)
    assert second["steps"]["train"] == "cached", second["steps"]
    # the champion changed since the first run, so the evaluation ran again: same model
    assert second["evaluation"]["reasons"] == [
        f"the candidate (job {second['evaluation']['job']}) is already loans@1"
    ]
    assert second["steps"]["register"] == "skipped" and second["champion"] == "loans@1"
    third = run_loop(cli, ws, spec)
    for step in ("validate", "train", "evaluate"):
        assert third["steps"][step] == "cached", third["steps"]
    why = cli("-w", ws.root, "runs", "explain", third["run_id"], "train", "--json").json()
    assert why["decision"] == "hit"
    assert len(ws.jobs.list(kind="train")) == 1  # one training job for three runs

    write_days(folder / "incoming", 3, 300)  # a new day arrives
    fourth = run_loop(cli, ws, spec)
    assert fourth["data"]["ref"] == "loans@2"
    assert fourth["steps"]["train"] == "succeeded"  # new data: trained again
    assert fourth["steps"]["validate"] == "succeeded"
    assert len(ws.jobs.list(kind="train")) == 2


def test_manual_approval_waits_then_continues(local_workspace, cli):
    ws, folder = local_workspace, local_workspace.root
    write_days(folder / "incoming", 1, 300)
    spec = write_spec(folder, approval="manual")
    waiting = run_loop(cli, ws, spec)
    assert waiting["status"] == "waiting", waiting
    assert waiting["waiting_for"] == "approve"
    assert waiting["steps"]["register"] == "succeeded"
    assert waiting["steps"]["promote"] == "pending"
    assert waiting["champion"] is None
    assert ws.models.get("loans@1")["status"] == "pending"
    text = cli("-w", ws.root, "runs", "show", waiting["run_id"]).out
    assert "waiting" in text

    cli("-w", ws.root, "runs", "approve", waiting["run_id"], "--reason", "looks good")
    run = ws.runs.get(waiting["run_id"])
    assert run["status"] == "succeeded"
    assert ws.models.get("loans@champion")["version"] == 1
    assert ws.models.get("loans@1")["status"] == "approved"
    steps = {s["name"]: s["status"] for s in ws.runs.steps(waiting["run_id"])}
    assert steps["approve"] == "succeeded" and steps["promote"] == "succeeded"


def test_manual_approval_rejected_keeps_the_champion_unset(local_workspace, cli):
    ws, folder = local_workspace, local_workspace.root
    write_days(folder / "incoming", 1, 300)
    waiting = run_loop(cli, ws, write_spec(folder, approval="manual"))
    result = cli("-w", ws.root, "runs", "reject", waiting["run_id"], "--reason", "not today",
                 check=False)
    assert "rejected" in result.out + result.err
    assert ws.runs.get(waiting["run_id"])["status"] == "failed"
    assert "loans" not in [m["name"] for m in ws.models.list()] or \
        "champion" not in ws.store.model_aliases("loans")


@pytest.mark.parametrize("executor", ["processes", pytest.param("ray", marks=pytest.mark.ray)])
def test_the_loop_runs_on_other_executors(local_workspace, cli, executor, request):
    if executor == "ray":
        request.getfixturevalue("local_ray")  # the suite's one local Ray (tests/conftest.py)
    ws, folder = local_workspace, local_workspace.root
    write_days(folder / "incoming", 1, 300)
    out = run_loop(cli, ws, write_spec(folder), "--executor", executor)
    assert out["status"] == "succeeded", out
    assert out["champion"] == "loans@1"
    assert ws.runs.get(out["run_id"])["executor"] == executor


def test_quality_check_stops_the_loop_on_a_schema_violation(local_workspace, cli):
    ws, folder = local_workspace, local_workspace.root
    write_days(folder / "incoming", 1, 300)
    spec = write_spec(folder)
    assert run_loop(cli, ws, spec)["champion"] == "loans@1"
    # the next day's file lost most salaries (an upstream system broke)
    import pandas as pd

    day2 = write_days(folder / "staging", 2, 300)[1]
    frame = pd.read_csv(day2)
    frame.loc[: len(frame) // 2, "salary"] = None
    frame.to_csv(folder / "incoming" / day2.name, index=False)
    out = run_loop(cli, ws, spec, check=False)
    assert out["status"] == "failed"
    assert "completeness_check on 'salary'" in out["error"]
    assert out["steps"]["validate"] == "failed" and out["steps"]["train"] == "pending"
    assert out["champion"] == "loans@1"


def test_before_any_champion_a_batch_is_checked_against_the_data_before_it(local_workspace, cli):
    import pandas as pd

    ws, folder = local_workspace, local_workspace.root
    day1, day2 = write_days(folder / "staging", 2, 300)
    ws.datasets.ingest("loans", [day1], event_time_column="applied_at")
    frame = pd.read_csv(day2)
    frame.loc[: len(frame) // 2, "salary"] = None
    (folder / "incoming").mkdir()
    frame.to_csv(folder / "incoming" / day2.name, index=False)
    out = run_loop(cli, ws, write_spec(folder), check=False)
    assert out["status"] == "failed" and out["steps"]["validate"] == "failed"
    assert "completeness_check on 'salary'" in out["error"]
    assert ws.jobs.list(kind="train") == []  # stopped before training


def test_a_tune_section_with_a_time_budget_and_no_count_uses_the_budget(local_workspace, cli):
    """A loop's tune section passes no default trial count: the time budget bounds the search
    (it used to stop at 20 trials whatever the budget)."""
    ws, folder = local_workspace, local_workspace.root
    write_days(folder / "incoming", 1, 300)
    spec = write_spec(folder).read_text().replace(
        "train:\n  algorithm: hist_gradient_boosting\n  params: {max_iter: 30}\n",
        "tune:\n  algorithm: logistic_regression\n  time_budget: 1\n  cv: 2\n")
    assert "tune:" in spec
    (folder / "tuned.yaml").write_text(spec)
    out = run_loop(cli, ws, folder / "tuned.yaml")
    assert out["status"] == "succeeded", out
    tunes = ws.jobs.list(kind="tune")  # its trials (child jobs) may outnumber a page of jobs
    assert len(tunes) == 1 and tunes[0]["params"].get("n_trials") is None, tunes
