"""``modelloop loop apply|status|delete`` through the CLI and the SDK: idempotent apply, one
change for one edit, deletion of what the spec drops, status, delete keeping versions and data,
and bad input as one line."""

from __future__ import annotations

import pytest

from modelloop.data.agrawal import write_days
from modelloop.errors import InvalidInput, NotFound

SPEC = """\
name: loans
data:
  dataset: loans
  event_time_column: applied_at
target: approved
split: {{method: time, fraction: 0.25}}
quality:
  ignore: [application_id, applied_at]
train:
  algorithm: hist_gradient_boosting
  params: {{max_iter: 10}}
deploy:
  endpoint: loans-ep
monitors:
  - name: loans-drift
    kind: data_drift
    alarm: {{threshold: {threshold}, evaluation_periods: 2, datapoints_to_alarm: 1}}
{extra}"""

QUALITY = """\
  - name: loans-checks
    kind: data_quality
    alarm: {}
"""


def write_spec(folder, threshold=0.3, extra=QUALITY, name="loop.yaml"):
    path = folder / name
    path.write_text(SPEC.format(threshold=threshold, extra=extra))
    return path


@pytest.fixture
def ws(local_workspace):
    files = write_days(local_workspace.root / "incoming", 1, 300)
    local_workspace.datasets.ingest("loans", files, event_time_column="applied_at")
    return local_workspace


def apply(cli, ws, spec):
    return cli("-w", ws.root, "loop", "apply", spec)


def actions(changes):
    return {(c["kind"], c["name"]): c["action"] for c in changes}


def test_apply_creates_what_the_spec_declares_and_twice_changes_nothing(ws, cli):
    spec = write_spec(ws.root)
    first = apply(cli, ws, spec)
    assert "loop/loans created" in first.out
    assert "monitor/loans-drift created" in first.out and "alarm/loans-drift created" in first.out
    assert "endpoint/loans-ep waiting" in first.out  # no champion yet
    mon = ws.monitoring.monitor("loans-drift")
    assert mon["dataset"] == "loans" and mon["after_ingest"] and mon["baseline"] == "loans-v1"
    assert mon["config"]["exclude"] == ["application_id", "applied_at"]
    alarm = ws.alarms.get("loans-drift")
    assert (alarm["metric"], alarm["threshold"], alarm["comparison"]) == (
        "drift_share", 0.3, "GreaterThanOrEqualToThreshold")
    assert alarm["dimensions"] == {"monitor": "loans-drift"}
    assert (alarm["evaluation_periods"], alarm["datapoints_to_alarm"]) == (2, 1)
    assert ws.alarms.get("loans-checks")["metric"] == "violations"
    applied_at = ws.loops.get("loans")["applied_at"]

    again = cli("-w", ws.root, "loop", "apply", spec, "--json").json()
    assert {c["action"] for c in again} <= {"unchanged", "waiting"}, again
    assert ws.loops.get("loans")["applied_at"] == applied_at  # nothing written either
    assert "no changes" in apply(cli, ws, spec).out


def test_one_threshold_edit_is_one_change_and_a_dropped_monitor_is_deleted(ws, cli):
    apply(cli, ws, write_spec(ws.root))
    changes = ws.loops.apply(write_spec(ws.root, threshold=0.2))
    changed = [c for c in changes if c["action"] not in ("unchanged", "waiting")]
    kinds = [(c["kind"], c["name"], c["action"]) for c in changed]
    assert kinds == [("loop", "loans", "updated"), ("alarm", "loans-drift", "updated")], changes
    assert changed[1]["diff"] == ["threshold: 0.3 -> 0.2"]
    assert changed[0]["diff"] == ["monitors.loans-drift.alarm.threshold: 0.3 -> 0.2"]
    assert ws.alarms.get("loans-drift")["threshold"] == 0.2

    shown = apply(cli, ws, write_spec(ws.root, threshold=0.2, extra=""))
    assert "monitor/loans-checks deleted" in shown.out and "alarm/loans-checks deleted" in shown.out
    with pytest.raises(NotFound):
        ws.monitoring.monitor("loans-checks")
    with pytest.raises(NotFound):
        ws.alarms.get("loans-checks")
    assert ws.monitoring.monitor("loans-drift")["name"] == "loans-drift"


def test_a_monitor_option_edit_updates_the_monitor_in_place(ws):
    ws.loops.apply(write_spec(ws.root))
    before = ws.monitoring.monitor("loans-drift")
    extra = QUALITY.replace("alarm: {}", "schedule: '0 * * * *'\n    alarm: {}")
    changes = actions(ws.loops.apply(write_spec(ws.root, extra=extra)))
    assert changes[("monitor", "loans-checks")] == "updated"
    assert changes[("monitor", "loans-drift")] == "unchanged"
    checks = ws.monitoring.monitor("loans-checks")
    assert checks["schedule"] == "0 * * * *" and not checks["after_ingest"]
    assert ws.monitoring.monitor("loans-drift")["id"] == before["id"]


@pytest.mark.slow
def test_status_run_by_name_and_delete_keeping_versions_and_data(ws, cli):
    apply(cli, ws, write_spec(ws.root))
    waiting = cli("-w", ws.root, "loop", "status", "loans").out
    assert "champion  none yet" in waiting and "loans-ep: waiting" in waiting
    assert "loans-drift" in waiting and "INSUFFICIENT_DATA" in waiting

    ran = cli("-w", ws.root, "loop", "run", "loans", "--json").json()
    assert ran["status"] == "succeeded", ran
    assert ran["champion"] == "loans@1" and ran["deployed"]["deployed"] is True

    s = cli("-w", ws.root, "loop", "status", "loans", "--json").json()
    assert s["champion"] == "loans@1" and s["trained_on"].startswith("loans@1")
    assert [(v["model"], v["traffic"]) for v in s["endpoint"]["variants"]] == [("loans@1", 100.0)]
    assert [r["id"] for r in s["runs"]] == [ran["run_id"]] and s["runs"][0]["status"] == "succeeded"
    assert {a["name"]: a["state"] for a in s["alarms"]} == {
        "loans-drift": "INSUFFICIENT_DATA", "loans-checks": "INSUFFICIENT_DATA"}
    shown = cli("-w", ws.root, "loop", "status", "loans").out
    assert "champion  loans@1" in shown and "loans@1 100%" in shown
    listed = cli("-w", ws.root, "loop", "list", "--json").json()
    assert [(r["name"], r["resources"]["endpoint"]["name"]) for r in listed] == [
        ("loans", "loans-ep")]
    assert "loans-ep" in cli("-w", ws.root, "loop", "list").out

    assert "no changes" in apply(cli, ws, write_spec(ws.root)).out  # the run left it in line

    gone = cli("-w", ws.root, "loop", "delete", "loans", "--yes").out
    for line in ("endpoint/loans-ep deleted", "monitor/loans-drift deleted",
                 "alarm/loans-checks deleted", "loop/loans deleted"):
        assert line in gone, gone
    assert [v["version"] for v in ws.models.versions("loans")] == [1]  # versions kept
    assert ws.datasets.get("loans").version == 1  # data kept
    with pytest.raises(NotFound):
        ws.endpoints.get("loans-ep")
    assert ws.monitoring.monitors() == [] and ws.alarms.list() == []
    missing = cli("-w", ws.root, "loop", "status", "loans", check=False)
    assert missing.code != 0 and "no loop named 'loans'" in missing.err


def test_bad_input_is_one_line_and_a_typed_error(ws, cli):
    spec = write_spec(ws.root)
    spec.write_text(spec.read_text().replace("dataset: loans", "dataset: laons"))
    bad = cli("-w", ws.root, "loop", "apply", spec, check=False)
    assert bad.code != 0 and bad.out == ""
    assert "loop.yaml:3 data.dataset: unknown dataset 'laons'; did you mean 'loans'?" in bad.err
    assert len(bad.err.strip().splitlines()) <= 2  # the error (and its hint)
    assert ws.loops.list() == []  # nothing stored

    quality = "  - name: q\n    kind: model_quality\n    alarm: {comparison: '<'}\n"
    with pytest.raises(InvalidInput, match=r"monitors\.2\.alarm\.threshold: a model_quality "
                                           r"alarm needs a threshold"):
        ws.loops.apply(write_spec(ws.root, extra=QUALITY + quality))
    no_deploy = write_spec(ws.root, extra=QUALITY + quality.replace("{comparison: '<'}",
                                                                    "{threshold: 0.7}"))
    no_deploy.write_text(no_deploy.read_text().replace("deploy:\n  endpoint: loans-ep\n", ""))
    with pytest.raises(InvalidInput, match="watches the endpoint, and the loop has no deploy"):
        ws.loops.apply(no_deploy)
    typo = write_spec(ws.root)
    typo.write_text(typo.read_text().replace("evaluation_periods", "evaluation_period"))
    with pytest.raises(InvalidInput, match="unknown key; did you mean 'evaluation_periods'"):
        ws.loops.apply(typo)
    assert ws.loops.list() == [] and ws.monitoring.monitors() == []


@pytest.mark.all_backends
def test_apply_update_and_delete_on_each_backend(workspace):
    files = write_days(workspace.root / "incoming", 1, 300)
    workspace.datasets.ingest("loans", files, event_time_column="applied_at")
    first = actions(workspace.loops.apply(write_spec(workspace.root)))
    assert first[("monitor", "loans-drift")] == first[("alarm", "loans-checks")] == "created"
    assert set(actions(workspace.loops.apply(write_spec(workspace.root))).values()) <= {
        "unchanged", "waiting"}
    edited = actions(workspace.loops.apply(write_spec(workspace.root, threshold=0.25, extra="")))
    assert edited[("alarm", "loans-drift")] == "updated"
    assert edited[("monitor", "loans-checks")] == edited[("alarm", "loans-checks")] == "deleted"
    assert workspace.loops.get_spec("loans")["monitors"][0]["alarm"]["threshold"] == 0.25
    gone = actions(workspace.loops.delete("loans"))
    assert gone[("loop", "loans")] == gone[("monitor", "loans-drift")] == "deleted"
    assert workspace.loops.list() == [] and workspace.datasets.get("loans").version == 1


def test_run_takes_what_the_loops_runner_takes(ws):
    ws.loops.apply(write_spec(ws.root))
    with pytest.raises(InvalidInput, match="unexpected keyword argument 'executr'"):
        ws.loops.run("loans", executr="threads")


@pytest.mark.slow
def test_the_endpoint_follows_the_deploy_section_and_an_adopted_one_is_kept(ws, cli):
    spec = write_spec(ws.root, extra="")
    ws.loops.apply(spec)
    assert ws.loops.run("loans").status == "succeeded"
    assert ws.endpoints.get("loans-ep")["spec"]["capture"]["enabled"] is False
    captured = spec.read_text().replace("  endpoint: loans-ep\n",
                                        "  endpoint: loans-ep\n  capture: {enabled: true}\n")
    spec.write_text(captured)
    changes = {(c["kind"], c["name"]): c for c in ws.loops.apply(spec)}
    assert changes[("endpoint", "loans-ep")]["diff"] == ["capture.enabled: false -> true"]
    assert ws.endpoints.get("loans-ep")["spec"]["capture"]["enabled"] is True

    ws.endpoints.create("theirs", "loans@1")  # made by a person before the loop named it
    spec.write_text(captured.replace("endpoint: loans-ep", "endpoint: theirs"))
    moved = actions(ws.loops.apply(spec))
    assert moved[("endpoint", "loans-ep")] == "deleted"  # the loop's own
    assert moved[("endpoint", "theirs")] == "updated"  # capture on
    ws.loops.delete("loans")
    assert ws.endpoints.get("theirs")["name"] == "theirs"  # adopted: kept


def test_a_loop_deployed_online_learns_with_its_champion_as_shadow(ws, cli):
    spec = write_spec(ws.root, extra="")
    online = spec.read_text().replace(
        "  endpoint: loans-ep\n",
        "  endpoint: loans-ep\n  mode: online\n  online: {model: 'preprocessing.StandardScaler"
        "|linear_model.LogisticRegression', guard: {margin: 0.1}}\n")
    spec.write_text(online)
    ws.loops.apply(spec)
    assert ws.loops.run("loans").status == "succeeded"
    variants = {v["name"]: v for v in ws.endpoints.get("loans-ep")["spec"]["variants"]}
    assert variants["champion"] == {**variants["champion"], "model": "loans@1", "role": "shadow"}
    learned = variants["online"]["online"]
    assert learned["guard"]["margin"] == 0.1 and learned["label"] == "class"
    champion = ws.models.get("loans@1")["manifest"]["signature"]["columns"]
    assert [f["name"] for f in learned["features"]] == [c["name"] for c in champion]
    assert actions(ws.loops.apply(spec))[("endpoint", "loans-ep")] == "unchanged"
