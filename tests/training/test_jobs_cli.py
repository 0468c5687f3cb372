"""Jobs from the command line: live progress of trials, pruned trials, artifacts, downloads, reports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from modelloop.errors import NotFound
from modelloop.registry.package import load_package


def _generators():
    """The generated tasks of this folder's conftest (a conftest is not importable by name)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "training_tasks", Path(__file__).with_name("conftest.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_binary, module.make_nonlinear


make_binary, make_nonlinear = _generators()

SPACE = (
    "max_depth: {type: int, low: 1, high: 8}\n"
    "min_samples_leaf: {type: int, low: 1, high: 60, log: true}\n"
)
TRIAL = re.compile(
    r"^trial (\d+) (complete|pruned|failed)(: roc_auc [0-9.]+)?.*; best [0-9.]+ \(trial \d+\); "
    r"decision_tree in [0-9.]+s$"
)


def _ingest(ws, tmp_path, name, frame):
    path = tmp_path / f"{name}.csv"
    frame.to_csv(path, index=False)
    return ws.datasets.ingest(name, [path]).version.ref


def test_tune_shows_each_trial_as_it_finishes_and_the_log_keeps_them(
    local_workspace, tmp_path, cli
):
    ws = local_workspace
    _ingest(ws, tmp_path, "wiggle", make_nonlinear(400))
    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    r = cli("-w", ws.root, "tune", "wiggle", "-t", "y", "-a", "decision_tree", "--space", space,
            "--trials", "3", "--cv", "2", "--json")  # fmt: skip
    job = r.json()
    shown = [line for line in r.err.splitlines() if line.startswith("trial ")]
    # every trial, in the terminal, with its number, state, value and the best so far
    assert sorted(int(TRIAL.match(line).group(1)) for line in shown) == [0, 1, 2], r.err
    assert all(TRIAL.match(line) for line in shown), shown
    best = job["outputs"]["best"]["value"]
    assert f"best {best:.6g}" in shown[-1]
    # the same lines are in the job's log, as written and when followed
    log = cli("-w", ws.root, "jobs", "logs", job["id"]).out
    assert [line for line in log.splitlines() if TRIAL.match(line)] == shown
    followed = cli("-w", ws.root, "jobs", "logs", job["id"], "--follow").out
    assert followed.rstrip("\n") == log.rstrip("\n")


def test_tune_with_a_time_budget_and_no_trial_count_uses_the_budget(local_workspace, tmp_path, cli):
    ws = local_workspace
    _ingest(ws, tmp_path, "wiggle", make_nonlinear(300))
    budget = 6
    job = cli("-w", ws.root, "tune", "wiggle", "-t", "y", "-a", "logistic_regression",
              "--time-budget", budget, "--cv", "2", "--json").json()  # fmt: skip
    assert job["params"]["n_trials"] is None  # not the default 20
    assert job["info"]["stopped_because"] == f"time budget of {budget} s used"
    trials = ws.jobs.list(parent_id=job["id"], limit=None)
    searched = max(t["ended_at"] for t in trials) - min(t["started_at"] for t in trials)
    assert searched.total_seconds() >= 0.7 * budget


def test_train_auto_shows_its_trials_too(local_workspace, tmp_path, cli):
    ws = local_workspace
    _ingest(ws, tmp_path, "credit", make_binary(200))
    r = cli("-w", ws.root, "train", "credit", "-t", "y", "-a", "auto", "--time-budget", "1.5",
            "--json")  # fmt: skip
    shown = [line for line in r.err.splitlines() if line.startswith("trial ")]
    assert shown and all(re.match(r"^trial \d+ (complete|pruned|failed)", s) for s in shown)
    assert (
        f"stopped (time budget of 1.5 s used) after {len(shown)} trials"
        in cli("-w", ws.root, "jobs", "logs", r.json()["id"]).out
    )


@pytest.mark.worker_processes
def test_logs_follow_prints_lines_until_the_job_ends(local_workspace, tmp_path, cli):
    ws = local_workspace
    job_id = ws.store.create_job(
        kind="sleep", name="nap", spec={"steps": 8, "seconds": 0.2}, params={}
    )
    proc = ws.jobs.start(job_id)
    r = cli("-w", ws.root, "jobs", "logs", job_id, "-f")  # returns when the job has ended
    proc.wait()
    lines = r.out.splitlines()
    assert [line for line in lines if line.startswith("step ")] == [f"step {i}" for i in range(8)]
    assert lines[-1] == f"job {job_id} succeeded"
    missing = cli("-w", ws.root, "jobs", "logs", "424242", "-f", check=False)
    assert missing.code != 0 and missing.err.startswith("modelloop: error: no job 424242")


def test_pruned_trials_are_pruned_jobs_not_cancelled(local_workspace, tmp_path, cli):
    ws = local_workspace
    _ingest(ws, tmp_path, "wiggle", make_nonlinear(800))
    space = tmp_path / "space.yaml"
    space.write_text(SPACE + "criterion: [gini, entropy]\n")
    # seed 1 prunes 5 of the 7 trials after the median pruner's 5 start-up ones (seeds 1-4: 2-5)
    job = ws.training.tune("wiggle", "y", "decision_tree", str(space), n_trials=12, cv=3,
                           pruner="median", sampler="random", seed=1)  # fmt: skip
    states = {t["state"] for t in job["outputs"]["trials"]}
    assert "pruned" in states, "a median pruner over 12 random trials prunes some"
    trials = cli("-w", ws.root, "jobs", "list", "--parent", job["id"], "-n", "100",
                 "--json").json()  # fmt: skip
    statuses = [t["status"] for t in trials]
    assert "cancelled" not in statuses
    assert statuses.count("pruned") == sum(t["state"] == "pruned" for t in job["outputs"]["trials"])
    pruned = cli("-w", ws.root, "jobs", "list", "--status", "pruned", "--json").json()
    assert pruned and {t["parent_id"] for t in pruned} == {job["id"]}
    assert "pruned" in cli("-w", ws.root, "jobs", "list", "--parent", job["id"], "-n", "100").out


def test_artifacts_are_listed_downloaded_and_the_report_written(local_workspace, tmp_path, cli):
    ws = local_workspace
    _ingest(ws, tmp_path, "credit", make_binary(300))
    job = ws.training.train("credit", "y", "logistic_regression")
    root, n = ws.root, str(job["id"])

    listed = cli("-w", root, "jobs", "artifacts", n, "--json").json()
    sizes = {a["name"]: a["size"] for a in listed}
    assert {"model/model.json", "report/data.json"} <= set(sizes)  # the report: when asked for
    assert "report/report.html" not in sizes
    table = cli("-w", root, "jobs", "artifacts", n).out
    assert "model/model.json" in table and f"{sizes['model/model.json']:,}" in table

    # a folder, then one file by name; each keeps its path and its bytes
    out = tmp_path / "got"
    cli("-w", root, "jobs", "download", n, "model", "-o", out)
    model_files = {a for a in sizes if a.startswith("model/")}
    assert {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} == model_files
    # the downloaded folder is a whole package on its own, away from the workspace
    assert load_package(out / "model").manifest.task == "binary"
    cli("-w", root, "jobs", "download", n, "report/report.html", "-o", tmp_path / "one")
    html = (tmp_path / "one" / "report" / "report.html").read_bytes()
    sizes = {a["name"]: a["size"] for a in ws.jobs.artifacts_of(job["id"])}
    assert len(html) == sizes["report/report.html"]

    # the report, written where asked, and opened in the browser $BROWSER names
    cli("-w", root, "jobs", "report", n, "-o", tmp_path / "r.html")
    assert (tmp_path / "r.html").read_bytes() == html
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\necho "$1" > {opened}\n')
    browser.chmod(0o755)
    shown = cli("-w", root, "jobs", "report", n, "--open", env={"BROWSER": str(browser)})
    written = shown.out.strip()
    assert opened.read_text().strip() == f"file://{written}"
    assert Path(written).read_bytes() == html

    # the same from Python
    (path,) = ws.jobs.download(job["id"], tmp_path / "sdk", "model/model.json")
    assert json.loads(path.read_text())["task"] == "binary"
    assert ws.jobs.report(job["id"]) == html
    with pytest.raises(NotFound, match="no artifact 'nothing'"):
        ws.jobs.download(job["id"], tmp_path / "sdk", "nothing")


BAD_INPUT = [
    (("jobs", "artifacts", "424242"), "no job 424242"),
    (("jobs", "download", "JOB", "modle"), "has no artifact 'modle'; did you mean 'model'"),
    (("jobs", "download", "424242"), "no job 424242"),
    (("jobs", "report", "424242", "-o", "x.html"), "no job 424242"),
    (("jobs", "report", "SLEEP", "-o", "x.html"), "has no HTML report"),
    (("jobs", "report", "JOB"), "-o FILE, or --open"),
]


def test_artifact_commands_refuse_bad_input_in_one_line(local_workspace, tmp_path, cli):
    ws = local_workspace
    _ingest(ws, tmp_path, "credit", make_binary(200))
    job = ws.training.train("credit", "y", "logistic_regression")
    sleep = ws.jobs.run("sleep", {"steps": 1, "seconds": 0})
    for args, needle in BAD_INPUT:
        args = [str(job["id"]) if a == "JOB" else str(sleep["id"]) if a == "SLEEP" else a
                for a in args]  # fmt: skip
        r = cli("-w", ws.root, *args, check=False, cwd=tmp_path)
        assert r.code != 0 and "Traceback" not in r.err, r
        errors = [line for line in r.err.splitlines()
                  if line.startswith(("modelloop: error", "Error:"))]  # fmt: skip
        assert len(errors) == 1 and needle in errors[0], r.err
        assert not (tmp_path / "x.html").exists()


@pytest.mark.all_backends
def test_download_and_report_on_every_backend(workspace, tmp_path, cli):
    ws = workspace
    _ingest(ws, tmp_path, "credit", make_binary(200))
    job = ws.training.train("credit", "y", "logistic_regression")
    cli("-w", ws.root, "jobs", "download", job["id"], "report", "-o", tmp_path / "got")
    sizes = {a["name"]: a["size"] for a in ws.jobs.select_artifacts(job["id"])}
    got = {p.relative_to(tmp_path / "got").as_posix(): p.stat().st_size
           for p in (tmp_path / "got").rglob("*") if p.is_file()}  # fmt: skip
    assert got == {name: size for name, size in sizes.items() if name.startswith("report/")}
    cli("-w", ws.root, "jobs", "report", job["id"], "-o", tmp_path / "r.html")
    assert (tmp_path / "r.html").stat().st_size == sizes["report/report.html"]
