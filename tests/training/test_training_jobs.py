"""train / tune / evaluate as tracked jobs, driven through the CLI and the SDK."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from modelloop.errors import InvalidInput, NotFound


def _generators():
    """The generated tasks of this folder's conftest (a conftest is not importable by name)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "training_tasks", Path(__file__).with_name("conftest.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_binary, module.make_nonlinear


make_binary, make_nonlinear = _generators()


def _ingest(ws, tmp_path, name, frame, **kwargs):
    path = tmp_path / f"{name}-{len(list(tmp_path.iterdir()))}.csv"
    frame.to_csv(path, index=False)
    return ws.datasets.ingest(name, [path], **kwargs).version.ref


@pytest.mark.all_backends
def test_train_job_records_lineage_split_code_and_a_registrable_package(workspace, tmp_path):
    ws = workspace
    ref = _ingest(ws, tmp_path, "credit", make_binary(500))
    job = ws.training.train("credit", "y", "logistic_regression", {"C": 0.5}, seed=7)
    assert job["status"] == "succeeded" and job["kind"] == "train"
    (data,) = job["inputs"]
    assert data["ref"] == ref and data["content_hash"] == ws.datasets.get(ref).content_hash
    assert job["params"]["C"] == 0.5 and job["params"]["seed"] == 7
    split = job["info"]["split"]
    assert split["method"] == "stratified" and split["n_train"] + split["n_valid"] == 500
    code = job["info"]["code"]
    assert code["packages"]["scikit-learn"] and code["python"]
    assert 0.5 < job["metrics"]["roc_auc"] <= 1.0
    names = {a["name"] for a in ws.jobs.artifacts_of(job["id"])}
    assert {"model/model.json", "model/model.skops"} <= names  # the whole package: manifest, model
    # the report's data is recorded; the report is drawn when first asked for, and kept
    assert "report/data.json" in names and "report/report.html" not in names
    html = ws.jobs.report(job["id"])
    assert b"<h1>logistic_regression on" in html and b"data:image/png;base64," in html
    names = {a["name"] for a in ws.jobs.artifacts_of(job["id"])}
    assert "report/report.html" in names and "report/roc.png" in names
    assert ws.jobs.report(job["id"]) == html
    record = ws.models.register_from_job("credit", job["id"])
    assert record["manifest"]["lineage"]["inputs"][0]["ref"] == ref
    # the training dataset version got its baseline (the reference for monitors)
    assert job["outputs"]["baseline"]
    assert ws.monitoring.ensure_baseline(ref) is not None


def test_same_seed_same_data_same_metrics_and_time_split(local_workspace, tmp_path):
    ws = local_workspace
    _ingest(ws, tmp_path, "credit", make_binary(400), event_time_column="when")
    a = ws.training.train("credit", "y", "random_forest", {"n_estimators": 15}, seed=3)
    b = ws.training.train("credit", "y", "random_forest", {"n_estimators": 15}, seed=3)
    assert a["metrics"]["roc_auc"] == b["metrics"]["roc_auc"]
    assert a["info"]["split"]["valid_index_sha256"] == b["info"]["split"]["valid_index_sha256"]
    timed = ws.training.train("credit", "y", "logistic_regression", split="time", report=False)
    assert timed["info"]["split"]["method"] == "time"
    assert timed["info"]["split"]["time_column"] == "when" and timed["info"]["split"]["cutoff"]
    # report=False (a loop's train: {report: false}): no report data, so no report
    assert not [a for a in ws.jobs.artifacts_of(timed["id"]) if a["name"].startswith("report/")]
    with pytest.raises(NotFound, match="has no HTML report"):
        ws.jobs.report(timed["id"])


def test_holdout_dataset_version_is_the_validation_set(local_workspace, tmp_path):
    ws = local_workspace
    _ingest(ws, tmp_path, "credit", make_binary(400, seed=1))
    hold = _ingest(ws, tmp_path, "credit_holdout", make_binary(150, seed=2))
    job = ws.training.train("credit", "y", "logistic_regression", holdout=hold)
    split = job["info"]["split"]
    assert split["method"] == "holdout" and split["holdout_ref"] == hold
    assert split["n_valid"] == 150 and split["n_train"] == 400
    assert [i.get("role") for i in job["inputs"]] == [None, "holdout"]


def test_model_reloaded_in_a_new_process_predicts_what_the_job_measured(local_workspace, tmp_path):
    """No train/serve skew: the registered package, loaded elsewhere, gives the job's metrics."""
    ws = local_workspace
    _ingest(ws, tmp_path, "credit", make_binary(500, seed=5))
    hold = _ingest(ws, tmp_path, "credit_holdout", make_binary(200, seed=6))
    job = ws.training.train("credit", "y", "hist_gradient_boosting", {"max_iter": 30},
                            holdout=hold)
    ws.models.register_from_job("credit", job["id"])
    code = (
        "import sys, json\n"
        "from modelloop import Workspace\n"
        "from modelloop.training.evaluation import evaluate\n"
        "ws = Workspace(sys.argv[1])\n"
        "m = ws.models.load('credit@1')\n"
        "f = ws.datasets.to_pandas(sys.argv[2])\n"
        "cols = m.manifest.input_signature.names\n"
        "print(json.dumps(evaluate(m, f[cols + ['y']], 'y').metrics))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(ws.root), hold], capture_output=True,
                         text=True, check=True).stdout
    reloaded = json.loads(out)
    for metric in ("roc_auc", "accuracy", "log_loss"):
        assert reloaded[metric] == pytest.approx(job["metrics"][metric], rel=1e-12)


def test_tuned_model_beats_the_untuned_one_and_trials_are_child_jobs(local_workspace, tmp_path):
    ws = local_workspace
    _ingest(ws, tmp_path, "wiggle", make_nonlinear(800))
    plain = ws.training.train("wiggle", "y", "decision_tree", seed=0)
    space = tmp_path / "space.yaml"
    space.write_text("max_depth: {type: int, low: 2, high: 8}\n"
                     "min_samples_leaf: {type: int, low: 1, high: 40}\n")
    tuned = ws.training.tune("wiggle", "y", "decision_tree", str(space), n_trials=6, cv=3,
                             seed=0)
    assert tuned["metrics"]["roc_auc"] > plain["metrics"]["roc_auc"]
    trials = ws.jobs.list(parent_id=tuned["id"], limit=None)
    assert len(trials) == 6 and {t["kind"] for t in trials} == {"trial"}
    assert tuned["outputs"]["best"]["params"].keys() == {"max_depth", "min_samples_leaf"}
    # warm start reads the earlier job's trials
    warm = ws.training.tune("wiggle", "y", "decision_tree", str(space), n_trials=2,
                            warm_start=tuned["id"])
    assert "warm start from job" in ws.jobs.logs(warm["id"])


@pytest.mark.worker_processes
def test_killed_train_job_is_failed_with_its_log(local_workspace, tmp_path):
    ws = local_workspace
    _ingest(ws, tmp_path, "credit", make_binary(2000))
    started: list[int] = []
    raised: list[BaseException] = []

    def caller():  # the job's caller, on a workspace of its own; the job runs in a worker process
        from modelloop import Workspace

        other = Workspace(ws.root)
        try:
            other.training.train("credit", "y", "random_forest", {"n_estimators": 3000})
        except BaseException as exc:  # noqa: BLE001 - what the caller saw is the check
            raised.append(exc)
        finally:
            other.close()

    thread = threading.Thread(target=caller)
    thread.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not started:
        running = ws.jobs.list(kind="train", status="running")
        if running and "training random_forest" in ws.jobs.logs(running[0]["id"]):
            started.append(running[0]["id"])
            os.kill(running[0]["pid"], signal.SIGKILL)  # kill the worker mid-fit
        time.sleep(0.1)
    thread.join(120)
    assert started, "the train job never started"
    job = ws.jobs.get(started[0])
    assert job["status"] == "failed" and "killed by signal 9" in job["error"]
    assert "training random_forest" in ws.jobs.logs(job["id"])
    assert not thread.is_alive() and raised, "the caller's train returned as if it had succeeded"


def test_evaluate_against_a_baseline_with_a_gate(local_workspace, tmp_path):
    ws = local_workspace
    _ingest(ws, tmp_path, "credit", make_binary(500, seed=1))
    _ingest(ws, tmp_path, "credit", make_binary(300, seed=9))
    weak = ws.training.train("credit", "y", "decision_tree", {"max_depth": 1})
    strong = ws.training.train("credit", "y", "hist_gradient_boosting", {"max_iter": 40})
    _ingest(ws, tmp_path, "credit", make_binary(300, seed=11))
    hold = "credit@2..3"  # only rows neither model read (versions are cumulative)
    ws.models.register_from_job("credit", weak["id"])
    ws.models.register_from_job("credit", strong["id"])
    ws.models.approve("credit@1")
    ws.models.set_alias("credit", "champion", 1)
    conditions = [{"metric": "roc_auc", "min_absolute_change": 0.01},
                  {"metric": "log_loss", "threshold": 0.9}]
    passed = ws.training.evaluate("credit@2", hold, baseline="credit@champion", gate=conditions)
    assert passed["outputs"]["gate"]["passed"], passed["outputs"]["gate"]
    assert passed["outputs"]["baseline"]["ref"] == "credit@1"
    failed = ws.training.evaluate("credit@1", hold, baseline="credit@2", gate=conditions +
                                  [{"metric": "accuracy", "threshold": 0.99}])
    reasons = failed["outputs"]["gate"]["reasons"]
    assert len(reasons) >= 2 and any("roc_auc" in r for r in reasons)
    assert any("accuracy" in r and "threshold" in r for r in reasons)


@pytest.mark.slow
def test_cli_train_tune_evaluate(local_workspace, tmp_path, cli):
    ws = local_workspace
    root = ws.root
    csv = tmp_path / "credit.csv"
    make_binary(400).to_csv(csv, index=False)
    cli("-w", root, "data", "ingest", "credit", csv)
    out = cli("-w", root, "train", "credit", "-t", "y", "-a", "logistic_regression",
              "-p", "C=0.3", "--register", "credit")
    assert "succeeded" in out.out and "registered credit@1" in out.out
    job = cli("-w", root, "train", "credit", "-t", "y", "-a", "random_forest",
              "-p", "n_estimators=10", "--json").json()
    assert job["params"]["n_estimators"] == 10 and job["metrics"]["roc_auc"] > 0.5
    tuned = cli("-w", root, "tune", "credit", "-t", "y", "-a", "logistic_regression",
                "--trials", "2", "--cv", "2", "--json").json()
    assert tuned["outputs"]["best"]["metric"] == "roc_auc"
    cli("-w", root, "models", "register", "credit", "--job", tuned["id"])
    make_binary(200, seed=5).to_csv(tmp_path / "later.csv", index=False)
    cli("-w", root, "data", "ingest", "credit", tmp_path / "later.csv")
    ev = cli("-w", root, "evaluate", "credit@2", "credit@1..2", "--baseline", "credit@1",
             "--gate", "roc_auc>=0.5", check=False)
    assert ev.code == 0 and "gate: passed" in ev.out, ev
    bad_gate = cli("-w", root, "evaluate", "credit@2", "credit@1..2", "--gate",
                   "roc_auc>=0.999999", check=False)
    assert bad_gate.code == 3 and "gate: failed" in bad_gate.out
    assert "below the threshold" in bad_gate.out
    searched = cli("-w", root, "jobs", "search", "metrics.roc_auc > 0.5", "--kind", "train",
                   "--json").json()
    assert len(searched) == 2


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("train", "credit", "-t", "y", "-a", "xgbost"), "xgboost"),
        (("train", "credit", "-t", "yy"), "did you mean 'y'"),
        (("train", "nope", "-t", "y"), "no dataset named 'nope'"),
        (("train", "credit@9", "-t", "y"), "no version 9"),
        (("train", "one", "-t", "y"), "one class"),
        (("tune", "credit", "-t", "y", "--space", "SPACE"), "space"),
        (("train", "credit", "-t", "y", "-a", "TRAINER:fit"), "custom trainer"),
        (("train", "credit", "-t", "y", "-p", "nonsense"), "KEY=VALUE"),
        (("evaluate", "ghost@1", "credit"), "no model named 'ghost'"),
    ],
)
def test_cli_bad_input_is_one_clear_line(local_workspace, tmp_path, cli, args, needle):
    ws = local_workspace
    csv = tmp_path / "credit.csv"
    make_binary(200).to_csv(csv, index=False)
    ws.datasets.ingest("credit", [csv])
    one = make_binary(100)
    one["y"] = 1
    one.to_csv(tmp_path / "one.csv", index=False)
    ws.datasets.ingest("one", [tmp_path / "one.csv"])
    space = tmp_path / "space.yaml"
    space.write_text("max_iter: {type: integer, low: 10}\n")
    trainer = tmp_path / "trainer.py"
    trainer.write_text("def fit(frame, target, params):\n    raise ValueError('no luck')\n")
    args = [str(space) if a == "SPACE" else a.replace("TRAINER", str(trainer)) for a in args]
    r = cli("-w", ws.root, *args, check=False)
    assert r.code != 0 and "Traceback" not in r.err, r
    # one error line (a job that started says so first; click adds its usage lines)
    errors = [line for line in r.err.splitlines() if line.startswith(("modelloop: error", "Error:"))]
    assert len(errors) == 1 and needle in errors[0], r.err


def test_sdk_errors_name_the_fix(local_workspace, tmp_path):
    ws = local_workspace
    _ingest(ws, tmp_path, "credit", make_binary(200))
    with pytest.raises(NotFound):
        ws.training.train("credit@5", "y")
    with pytest.raises(InvalidInput, match="no column 'target'"):
        ws.training.train("credit", "target")
    with pytest.raises(InvalidInput, match="function cannot be sent"):
        ws.training.tune("credit", "y", space=lambda trial: {})
