"""The model registry as users drive it: register from a job, approve, aliases, rollback, events."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from modelloop.data.samples import loan_applications
from modelloop.errors import IntegrityError, InvalidInput, ModelloopError, NotFound


def _train(ws, tmp_path):
    csv = tmp_path / "loans.csv"
    loan_applications(400, seed=3).to_csv(csv, index=False)
    ws.datasets.ingest("loans", [csv], event_time_column="applied_at")
    job = ws.training.train("loans", "approved", "random_forest", {"n_estimators": 10})
    return ws, (job, job)  # registering one job twice gives two versions of the same package


@pytest.fixture
def trained(workspace, tmp_path):
    """Every backend pair: loans@1 ingested and one succeeded train job."""
    return _train(workspace, tmp_path)


@pytest.fixture
def trained_local(local_workspace, tmp_path):
    """The same on the embedded backends only (for tests of logic, not of storage)."""
    return _train(local_workspace, tmp_path)


@pytest.mark.all_backends
def test_register_from_a_job_keeps_lineage_back_to_the_data_files(trained):
    ws, (job, _) = trained
    record = ws.models.register_from_job("loans", job["id"])
    assert record["ref"] == "loans@1" and record["status"] == "pending"
    assert record["job_id"] == job["id"] and record["flavor"] == "sklearn"
    lineage = ws.models.lineage("loans@1")
    assert lineage["job"]["id"] == job["id"]
    assert lineage["split"]["method"] == "stratified" and lineage["split"]["valid_index_sha256"]
    (data,) = lineage["datasets"]
    assert data["ref"] == "loans@1"
    assert data["content_hash"] == ws.datasets.get("loans@1").content_hash
    assert data["sources"][0]["path"].endswith("loans.csv")
    manifest = record["manifest"]
    assert manifest["lineage"]["target"] == "approved"
    assert manifest["metrics"]["roc_auc"] == pytest.approx(job["metrics"]["roc_auc"])
    # the registered model predicts what the job measured, on the job's own validation rows
    model = ws.models.load("loans@1")
    frame = ws.datasets.to_pandas("loans@1")
    features = model.manifest.input_signature.names
    assert "application_id" not in features and "applied_at" not in features  # id, time: dropped
    assert set(model.predict(frame[features].head(20))) <= {0, 1}


def test_approve_reject_with_reasons_and_the_rules_between_them(trained_local):
    ws, (a, b) = trained_local
    ws.models.register_from_job("loans", a["id"])
    ws.models.register_from_job("loans", b["id"])
    v1 = ws.models.approve("loans@1", reason="beats the baseline", actor="ana")
    assert (v1["status"], v1["status_by"], v1["status_reason"]) == (
        "approved", "ana", "beats the baseline")
    v2 = ws.models.reject("loans@2", reason="worse recall", actor="bo")
    assert v2["status"] == "rejected"
    with pytest.raises(ModelloopError, match="rejected"):
        ws.models.approve("loans@2")
    with pytest.raises(InvalidInput, match="reason"):
        ws.models.approve("loans@2", force=True)
    again = ws.models.approve("loans@2", force=True, reason="re-evaluated on fresh data")
    assert again["status"] == "approved"
    actions = [(h["action"], h["version"]) for h in ws.models.history("loans")]
    assert ("approved", 1) in actions and ("rejected", 2) in actions


def test_alias_moves_rollback_and_history(trained_local):
    ws, (a, b) = trained_local
    ws.models.register_from_job("loans", a["id"])
    ws.models.register_from_job("loans", b["id"])
    ws.models.register_from_job("loans", a["id"])  # a third version, same package content
    for v in (1, 2, 3):
        ws.models.approve(f"loans@{v}")
    ws.models.set_alias("loans", "champion", 1)
    ws.models.set_alias("loans", "champion", 2)
    ws.models.set_alias("loans", "champion", "loans@3")
    assert ws.models.get("loans@champion")["version"] == 3
    assert ws.models.aliases("loans") == {"champion": 3}  # one model's, without listing them all
    assert ws.models.rollback("loans")["version"] == 2
    assert ws.models.rollback("loans")["version"] == 1  # keeps walking back, no toggling
    with pytest.raises(InvalidInput, match="no earlier version"):
        ws.models.rollback("loans")
    moves = [(h["action"], h["version"], h["from_version"]) for h in ws.models.history("loans")
             if h["alias"] == "champion"]
    assert moves == [("alias_set", 1, None), ("alias_set", 2, 1), ("alias_set", 3, 2),
                     ("rolled_back", 2, 3), ("rolled_back", 1, 2)]


def test_events_are_appended_once_per_change(trained):
    ws, (a, _) = trained
    before = {e["id"] for e in ws.events()}
    ws.models.register_from_job("loans", a["id"])
    ws.models.approve("loans@1", reason="ok")
    ws.models.set_alias("loans", "champion", 1)
    ws.models.set_alias("loans", "champion", 1)  # no change: no event
    new = [e for e in ws.events() if e["id"] not in before]
    kinds = [e["kind"] for e in new]
    assert kinds.count("model.registered") == 1
    assert kinds.count("model.approved") == 1
    assert sum(k.startswith("model.alias") for k in kinds) == 1, kinds
    assert all(e["subject"].startswith("loans") for e in new)


def test_tampered_blob_is_refused_when_loading(local_workspace, tmp_path):
    ws = local_workspace
    csv = tmp_path / "loans.csv"
    loan_applications(300, seed=4).to_csv(csv, index=False)
    ws.datasets.ingest("loans", [csv])
    job = ws.training.train("loans", "approved", "logistic_regression")
    record = ws.models.register_from_job("loans", job["id"])
    model_file = next(f for f in record["files"] if f["path"].endswith((".skops", ".pkl")))
    blob = ws.artifacts.location(model_file["digest"])
    with open(blob, "r+b") as fh:  # someone edits the stored file
        fh.seek(10)
        fh.write(b"\x00\x01\x02")
    with pytest.raises(IntegrityError, match=model_file["digest"][:12]):
        ws.models.load("loans@1")


def test_bad_references_and_aliases(trained_local):
    ws, (a, _) = trained_local
    ws.models.register_from_job("loans", a["id"])
    with pytest.raises(NotFound, match="no model named 'nope'"):
        ws.models.get("nope@1")
    with pytest.raises(NotFound, match="no version 9"):
        ws.models.get("loans@9")
    with pytest.raises(NotFound, match="no alias 'champion'"):
        ws.models.get("loans@champion")
    with pytest.raises(InvalidInput, match="alias"):
        ws.models.set_alias("loans", "bad alias!", 1)
    with pytest.raises(InvalidInput, match="latest"):
        ws.models.set_alias("loans", "latest", 1)
    ws.models.register_from_job("other", a["id"])
    with pytest.raises(InvalidInput, match="of model 'other'"):
        ws.models.set_alias("loans", "champion", "other@1")
    with pytest.raises(NotFound, match="no job 10000"):
        ws.models.register_from_job("loans", 10_000)
    with pytest.raises(InvalidInput):
        ws.models.register("../escape", ws.root)


_MOVER = """
import sys
from modelloop import Workspace
ws = Workspace(sys.argv[1])
for i in range(int(sys.argv[3])):
    ws.models.set_alias("loans", "champion", int(sys.argv[2]), reason=f"mover {sys.argv[2]}")
"""


@pytest.mark.all_backends
def test_concurrent_alias_moves_from_two_processes_end_consistent(trained):
    ws, (a, b) = trained
    ws.models.register_from_job("loans", a["id"])
    ws.models.register_from_job("loans", b["id"])
    for v in (1, 2):
        ws.models.approve(f"loans@{v}")  # champion is approval-gated
    procs = [subprocess.Popen([sys.executable, "-c", _MOVER, str(ws.root), str(v), "15"],
                              stderr=subprocess.PIPE, text=True) for v in (1, 2)]
    for p in procs:
        _, err = p.communicate(timeout=240)
        assert p.returncode == 0, err
    final = ws.models.get("loans@champion")["version"]
    moves = [h for h in ws.models.history("loans") if h["alias"] == "champion"]
    # every recorded move chains from the one before it: no lost or interleaved update
    previous = None
    for h in moves:
        assert h["from_version"] == previous, moves
        previous = h["version"]
    assert previous == final and final in (1, 2)
    assert {h["reason"] for h in moves} <= {"mover 1", "mover 2"}


def test_models_cli_show_history_rollback_and_errors(trained_local, cli):
    ws, (a, b) = trained_local
    root = ws.root
    cli("-w", root, "models", "register", "loans", "--job", a["id"])
    cli("-w", root, "models", "register", "loans", "--job", b["id"])
    cli("-w", root, "models", "approve", "loans@1", "--reason", "good")
    cli("-w", root, "models", "approve", "loans@2")
    cli("-w", root, "models", "alias", "loans", "champion", "1")
    cli("-w", root, "models", "alias", "loans", "champion", "2")
    shown = cli("-w", root, "models", "show", "loans@champion").out
    for needle in ("loans@2", "approved", "roc_auc", "Input signature", "loans@1", "loans.csv",
                   "champion"):
        assert needle in shown, (needle, shown)
    info = cli("-w", root, "models", "show", "loans@champion", "--json").json()
    assert info["version"]["version"] == 2 and info["lineage"]["datasets"][0]["ref"] == "loans@1"
    assert "rolled back → loans@1" in cli("-w", root, "models", "rollback", "loans").out
    history = cli("-w", root, "models", "history", "loans", "--json").json()
    assert [h["action"] for h in history][-1] == "rolled_back"
    for args, needle in [
        (("models", "show", "ghost@1"), "no model named 'ghost'"),
        (("models", "show", "loans@7"), "no version 7"),
        (("models", "reject", "loans@2", "--reason", "x"), None),
        (("models", "approve", "loans@2"), "rejected"),
        (("models", "alias", "loans", "Not Valid", "1"), "alias"),
    ]:
        r = cli("-w", root, *args, check=False)
        if needle is None:
            assert r.code == 0, r
            continue
        assert r.code != 0 and "Traceback" not in r.err and needle in r.err, r
        assert len(r.err.strip().splitlines()) == 1, r.err


def test_export_to_mlflow_and_import_back(trained_local, tmp_path, cli):
    pytest.importorskip("mlflow")
    ws, (a, _) = trained_local
    ws.models.register_from_job("loans", a["id"])
    dest = tmp_path / "exported"
    cli("-w", ws.root, "models", "export", "loans@1", dest)
    assert (dest / "MLmodel").is_file()
    code = (
        "import sys, json, mlflow.pyfunc, pandas as pd\n"
        "m = mlflow.pyfunc.load_model(sys.argv[1])\n"
        "df = pd.read_json(sys.argv[2], orient='records')\n"
        "print(json.dumps([int(x) for x in m.predict(df)]))\n"
    )
    features = ws.models.load("loans@1").manifest.input_signature.names
    frame = ws.datasets.to_pandas("loans@1")[features].head(50)
    rows = tmp_path / "rows.json"
    frame.to_json(rows, orient="records")
    got = subprocess.run([sys.executable, "-c", code, str(dest), str(rows)], capture_output=True,
                         text=True, check=True).stdout
    expected = ws.models.load("loans@1").predict(
        __import__("pandas").read_json(rows, orient="records"))
    assert json.loads(got) == [int(x) for x in expected]
    imported = cli("-w", ws.root, "models", "import", "again", dest, "--json").json()
    assert imported["package_hash"] == ws.models.get("loans@1")["package_hash"]
