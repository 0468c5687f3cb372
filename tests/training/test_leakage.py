"""No evaluation scores a model on rows it trained on (dataset versions are cumulative).

Driven through the SDK and the CLI on a real workspace: a holdout or evaluation dataset that
shares rows with a model's training rows is refused with the count and the fix, ``NAME@A..B``
names only the rows the later versions added, ``--allow-overlap`` scores anyway and records the
overlap, ``--exclude-overlap`` drops the rows either model trained on, and lineage lists exactly
what a windowed job read.
"""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime
from pathlib import Path

import pytest

from modelloop.errors import InvalidInput


def _make_binary():
    spec = importlib.util.spec_from_file_location(
        "training_tasks", Path(__file__).with_name("conftest.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_binary


make_binary = _make_binary()


def _days(ws, tmp_path, n_days=3, rows=300, name="credit"):
    """``n_days`` ingests of ``rows`` rows each: versions 1..n_days."""
    for day in range(n_days):
        path = tmp_path / f"{name}-day{day}.csv"
        make_binary(rows, seed=10 + day).to_csv(path, index=False)
        ws.datasets.ingest(name, [path])


def _register(ws, dataset, algorithm="random_forest", params=None, **kwargs):
    params = {"n_estimators": 20} if params is None else params
    job = ws.training.train(dataset, "y", algorithm, params, **kwargs)
    return ws.models.register_from_job("credit", job["id"])["ref"], job


def test_holdout_that_shares_rows_with_the_training_data_is_refused(local_workspace, tmp_path):
    ws = local_workspace
    _days(ws, tmp_path, 2)
    # the case: credit@1 is inside credit@2, so every holdout row was trained on
    with pytest.raises(InvalidInput, match=r"300 of the 300 rows of the holdout credit@1") as err:
        ws.training.train("credit@2", "y", "random_forest", holdout="credit@1")
    assert "holdout" in err.value.message
    with pytest.raises(InvalidInput, match=r"300 of the 600 rows"):
        ws.training.tune("credit@1", "y", "logistic_regression", holdout="credit@2",
                         n_trials=1, cv=1)
    # the rows version 2 added are new to a model trained on credit@1
    job = ws.training.train("credit@1", "y", "random_forest", {"n_estimators": 20},
                            holdout="credit@1..2")
    split = job["info"]["split"]
    assert split["method"] == "holdout" and split["n_valid"] == 300 and split["n_train"] == 300
    assert job["metrics"]["accuracy"] < 1.0  # an honest score, not a memorised one


def test_evaluate_refuses_rows_the_model_trained_on_and_names_the_fix(local_workspace, tmp_path):
    ws = local_workspace
    _days(ws, tmp_path, 3)
    model, job = _register(ws, "credit@2")
    trained = job["info"]["split"]["n_train"]  # its validation rows were never trained on
    assert trained == 480
    with pytest.raises(InvalidInput, match=r"480 of the 900 rows of credit@3") as err:
        ws.training.evaluate(model, "credit@3")
    assert "credit@2..3" in err.value.hint
    with pytest.raises(InvalidInput, match=r"\d+ of the 300 rows of credit@1..2"):
        ws.training.evaluate(model, "credit@1..2")
    job = ws.training.evaluate(model, "credit@2..3")
    assert job["info"]["evaluation"]["n_rows"] == 300
    assert job["info"]["overlap"]["model"] == 0 and job["info"]["overlap"]["rows"] == 300


def test_the_validation_rows_of_a_model_are_not_training_rows(local_workspace, tmp_path):
    """A model never trained on its own validation split: those rows may score it."""
    ws = local_workspace
    _days(ws, tmp_path, 1, rows=400)
    model, job = _register(ws, "credit@1")
    n_valid = job["info"]["split"]["n_valid"]
    with pytest.raises(InvalidInput, match=rf"{400 - n_valid} of the 400 rows"):
        ws.training.evaluate(model, "credit@1")
    kept = ws.training.evaluate(model, "credit@1", overlap="exclude")
    assert kept["info"]["evaluation"]["n_rows"] == n_valid
    # the same rows and the same numbers the training job measured on its validation split
    assert kept["metrics"]["roc_auc"] == pytest.approx(job["metrics"]["roc_auc"])


def test_baseline_is_held_to_the_same_rule(local_workspace, tmp_path):
    """The issue's case: a champion scored on its own training rows looked better than it is."""
    ws = local_workspace
    _days(ws, tmp_path, 3)
    champion, _ = _register(ws, "credit@2")  # credit@1
    ws.models.approve(champion)
    ws.models.set_alias("credit", "champion", 1)
    candidate, _ = _register(ws, "credit@1")  # credit@2: trained on fewer rows
    with pytest.raises(InvalidInput, match=r"240 of the 900 rows of credit@3 .*credit@2") as err:
        ws.training.evaluate(candidate, "credit@3", baseline="credit@champion")
    assert "480 of the 900 rows of credit@3 are rows credit@1" in err.value.message
    assert "credit@2..3" in err.value.hint

    fair = ws.training.evaluate(candidate, "credit@2..3", baseline="credit@champion")
    assert fair["info"]["overlap"] == {**fair["info"]["overlap"], "model": 0, "baseline": 0}
    assert fair["outputs"]["baseline"]["ref"] == "credit@1"

    # --exclude-overlap: rows either model trained on are dropped, and the job says so
    excluded = ws.training.evaluate(candidate, "credit@3", baseline="credit@champion",
                                    overlap="exclude")
    info = excluded["info"]["overlap"]
    assert (info["rows"], info["model"], info["baseline"]) == (900, 240, 480)
    # version 3 and the rows of 1 and 2 that both models held out for validation
    assert 300 < info["evaluated_rows"] == 900 - info["excluded"] < 900 - 480
    assert excluded["info"]["evaluation"]["n_rows"] == info["evaluated_rows"]
    assert "neither trained on" in ws.jobs.logs(excluded["id"])

    # --allow-overlap: scored anyway, loudly, and the overlap is on the record
    allowed = ws.training.evaluate(candidate, "credit@3", baseline="credit@champion",
                                   overlap="allow")
    assert allowed["info"]["overlap"]["baseline"] == 480
    assert allowed["info"]["evaluation"]["n_rows"] == 900
    assert "WARNING" in ws.jobs.logs(allowed["id"])
    with pytest.raises(InvalidInput, match="overlap"):
        ws.training.evaluate(candidate, "credit@3", overlap="sometimes")


def test_nothing_left_to_evaluate_is_refused(local_workspace, tmp_path):
    ws = local_workspace
    _days(ws, tmp_path, 2)
    model, _ = _register(ws, "credit@1", holdout="credit@1..2")  # trained on every row of @1
    other, _ = _register(ws, "credit@1", algorithm="logistic_regression", params={})
    with pytest.raises(InvalidInput, match="no rows left"):
        ws.training.evaluate(other, "credit@1", baseline=model, overlap="exclude")


def test_windowed_training_lineage_lists_exactly_what_it_read(local_workspace, tmp_path):
    ws = local_workspace
    _days(ws, tmp_path, 1)
    cut = datetime.now(UTC)
    for day in (1, 2):
        path = tmp_path / f"late{day}.csv"
        make_binary(200, seed=day).to_csv(path, index=False)
        ws.datasets.ingest("credit", [path])
    job = ws.training.train("credit@3", "y", "logistic_regression", since=cut.isoformat())
    (data,) = job["inputs"]
    assert data["ref"] == "credit@1..3" and data["rows"] == 400
    assert {p["version"] for p in data["parts"]} == {2, 3}
    ref = ws.models.register_from_job("credit", job["id"])["ref"]
    lineage = ws.models.lineage(ref)
    files = [Path(s["path"]).name for d in lineage["datasets"] for s in d["sources"]]
    assert files == ["late1.csv", "late2.csv"]
    # it never read version 1: its rows are fair to evaluate on, the later ones are not
    job = ws.training.evaluate(ref, "credit@1", overlap="refuse")
    assert job["info"]["overlap"]["model"] == 0


def test_cli_refuses_in_one_line_and_accepts_ranges(local_workspace, tmp_path, cli):
    ws = local_workspace
    _days(ws, tmp_path, 3)
    root = ws.root
    r = cli("-w", root, "train", "credit@2", "-t", "y", "-a", "random_forest",
            "-p", "n_estimators=10", "--holdout", "credit@1", check=False)
    assert r.code != 0 and "Traceback" not in r.err and "internal error" not in r.err, r
    assert len(r.err.strip().splitlines()) == 1 and "300 of the 300 rows" in r.err, r.err
    assert "hold out" in r.err
    out = cli("-w", root, "train", "credit@1", "-t", "y", "-a", "random_forest", "-p",
              "n_estimators=10", "--holdout", "credit@1..2", "--register", "credit", "--json")
    assert out.json()["info"]["split"]["n_valid"] == 300
    leak = cli("-w", root, "evaluate", "credit@1", "credit@3", check=False)
    assert leak.code != 0 and "Traceback" not in leak.err
    assert "300 of the 900 rows" in leak.err and "credit@1..3" in leak.err, leak.err
    assert len(leak.err.strip().splitlines()) == 1, leak.err
    ok = cli("-w", root, "evaluate", "credit@1", "credit@1..3", "--json")
    assert ok.json()["info"]["evaluation"]["n_rows"] == 600
    loud = cli("-w", root, "evaluate", "credit@1", "credit@3", "--allow-overlap")
    assert "WARNING" in loud.err and "300" in loud.err
    both = cli("-w", root, "evaluate", "credit@1", "credit@3", "--allow-overlap",
               "--exclude-overlap", check=False)
    assert both.code != 0 and "Traceback" not in both.err
    for bad in ("credit@²", "credit@99999999999999999999", "credit@0"):
        r = cli("-w", root, "evaluate", bad, "credit@1..3", check=False)
        assert r.code != 0 and "internal error" not in r.err and "Traceback" not in r.err, r


LOOP = """\
name: loans
data:
  dataset: loans
  ingest: [incoming/]
  window: 2
target: approved
split: {method: random, fraction: 0.3}
quality:
  enabled: false
train:
  algorithm: hist_gradient_boosting
  params: {max_iter: 20}
evaluate:
  metric: roc_auc
  gate:
    - min_absolute_change: -1.0
register:
  approval: auto
"""


@pytest.mark.slow
def test_loop_scores_candidate_and_champion_on_rows_neither_trained_on(local_workspace, cli):
    """The candidate's random validation split of loans@2 holds day-1 rows the champion
    (trained on loans@1) learnt from; the loop's gate must not score the champion on them."""
    from modelloop.data.agrawal import write_days

    ws, folder = local_workspace, local_workspace.root
    spec = folder / "loop.yaml"
    spec.write_text(LOOP)
    write_days(folder / "incoming", 1, 300)
    first = cli("-w", ws.root, "loop", "run", spec, "--json").json()
    assert first["champion"] == "loans@1", first
    write_days(folder / "incoming", 2, 300)
    second = cli("-w", ws.root, "loop", "run", spec, "--json").json()
    assert second["status"] == "succeeded" and second["data"]["ref"] == "loans@2", second
    ev = second["evaluation"]
    candidate = ws.jobs.get(ev["job"])
    n_valid = candidate["info"]["split"]["n_valid"]
    champion_rows = ws.training.training_rows("loans@1")
    parts = ws.datasets.parts("loans@2")
    # the champion trained on the day-1 rows but its own validation split, never on day 2
    assert champion_rows.overlap(parts[:1]) == ws.jobs.get(
        ws.models.get("loans@1")["job_id"])["info"]["split"]["n_train"]
    assert champion_rows.overlap(parts[1:]) == 0
    assert ev["excluded_rows"] > 0, ev
    assert ev["holdout_rows"] + ev["excluded_rows"] == n_valid, ev
    assert ev["champion"] is not None and ev["candidate"] is not None
    assert "champion" in " ".join(ev["notes"])

    # a third day: with window: 2 the candidate reads versions 2 and 3 only, and says so
    write_days(folder / "incoming", 3, 300)
    third = cli("-w", ws.root, "loop", "run", spec, "--json").json()
    assert third["status"] == "succeeded" and third["data"]["ref"] == "loans@3", third
    job = ws.jobs.get(third["evaluation"]["job"])
    (read,) = [i for i in job["inputs"] if i["kind"] == "dataset"]
    assert read["ref"] == "loans@1..3" and read["rows"] == 600
    assert {p["version"] for p in read["parts"]} == {2, 3}
    record = ws.models.register_from_job("windowed", job["id"])
    files = [Path(s["path"]).name for d in ws.models.lineage(record["ref"])["datasets"]
             for s in d["sources"]]
    assert files == [f.name for f in sorted((folder / "incoming").glob("*.csv"))[1:]], files


def test_batch_transform_reads_only_the_rows_of_a_range(local_workspace, tmp_path):
    import pandas as pd

    ws = local_workspace
    _days(ws, tmp_path, 2, rows=120)
    model, _ = _register(ws, "credit@1", algorithm="logistic_regression", params={})
    ws.models.approve(model)
    result = ws.transforms.run(model, "dataset:credit@1..2", str(tmp_path / "out.parquet"),
                               workers=1)
    assert len(pd.read_parquet(result.output)) == 120


def test_a_model_without_recorded_training_data_is_evaluated_with_a_note(
        local_workspace, tmp_path, cli):
    """A package registered from a folder names no training rows: nothing to refuse, but the
    evaluation says the overlap could not be checked (CLI and job log)."""
    from sklearn.linear_model import LogisticRegression

    from modelloop.registry.package import save_package
    from modelloop.registry.signature import Signature

    ws = local_workspace
    _days(ws, tmp_path, 1, rows=200)
    frame = ws.datasets.to_pandas("credit@1")
    features = ["x1"]
    model = LogisticRegression().fit(frame[features], frame["y"])
    save_package(model, tmp_path / "pkg", signature=Signature.from_frame(frame[features]),
                 task="binary", lineage={"target": "y"})
    ref = ws.models.register("outside", tmp_path / "pkg")["ref"]
    r = cli("-w", ws.root, "evaluate", ref, "credit@1", "--json")
    assert "could not be checked" in r.err, r.err
    job = r.json()
    assert job["info"]["overlap"]["unknown"] == [ref]
    assert "could not be checked" in ws.jobs.logs(job["id"])
