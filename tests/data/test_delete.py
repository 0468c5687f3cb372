"""Deleting dataset versions: how a user recovers from a bad ingest, on every backend."""

from __future__ import annotations

import pyarrow as pa
import pytest

from modelloop.data.samples import loan_applications
from modelloop.data.versions import schema_to_json
from modelloop.errors import InvalidInput, NotFound


def _ingest_days(ws, tmp_path, days=3, rows=200):
    paths = []
    for day in range(1, days + 1):
        path = tmp_path / f"day{day}.csv"
        loan_applications(rows, seed=day).to_csv(path, index=False)
        ws.datasets.ingest("loans", [path])
        paths.append(path)
    return paths


@pytest.mark.all_backends
def test_delete_the_latest_version_frees_its_files_and_blobs(workspace, tmp_path, cli):
    paths = _ingest_days(workspace, tmp_path)
    ds = workspace.datasets
    digests = [p["digest"] for p in workspace.store.dataset_parts("loans", 3) if p["version"] == 3]
    r = cli("-w", workspace.root, "data", "delete", "loans@3", "--reason", "bad export")
    assert "deleted loans@3" in r.out
    assert ds.get("loans").version == 2 and len(ds.to_pandas("loans")) == 400
    assert not any(workspace.artifacts.exists(d) for d in digests)
    (event,) = workspace.events(kind="dataset.version_deleted")
    assert event["subject"] == "loans@3"
    assert event["payload"]["versions"] == [3] and event["payload"]["reason"] == "bad export"
    # the file can be ingested again (fixed, or as it was) and becomes version 3 again
    assert ds.ingest("loans", [paths[2]]).version.ref == "loans@3"
    with pytest.raises(NotFound, match="has no version 4"):
        ds.get("loans@4")


def test_baselines_of_a_deleted_version_go_with_it_unless_a_monitor_uses_them(
    local_workspace, tmp_path, cli
):
    ws = local_workspace
    paths = _ingest_days(ws, tmp_path)
    w = ("-w", ws.root)
    cli(*w, "baseline", "create", "loans@3")
    cli(*w, "baseline", "create", "loans@2", "--name", "watched")
    cli(*w, "monitor", "create", "m", "--dataset", "loans", "--baseline", "watched",
        "--schedule", "0 * * * *")  # fmt: skip
    cli(*w, "data", "delete", "loans@2", "--and-later")
    names = [b["name"] for b in cli(*w, "baseline", "list", "--json").json()]
    assert names == ["watched"]  # kept for its monitor, no longer standing for loans@2
    ws.datasets.ingest("loans", [paths[2]])  # a new loans@2, with other rows
    made = cli(*w, "baseline", "create", "loans@2", "--json").json()
    assert made["name"] == "loans-v2" and not made.get("existed")


def test_a_version_with_later_versions_needs_and_later(workspace, tmp_path, cli):
    _ingest_days(workspace, tmp_path)
    r = cli("-w", workspace.root, "data", "delete", "loans@2", check=False)
    assert r.code == 1 and "loans@3" in r.err and "--and-later" in r.err
    assert workspace.datasets.get("loans").version == 3
    r = cli("-w", workspace.root, "data", "delete", "loans@2", "--and-later")
    assert "loans@2" in r.out and "loans@3" in r.out
    assert workspace.datasets.get("loans").version == 1
    assert [e["payload"]["versions"] for e in workspace.events(kind="dataset.version_deleted")] == [
        [2, 3]
    ]
    # deleting the only version forgets the dataset; its name can be used again
    workspace.datasets.delete("loans@1")
    assert workspace.datasets.list() == []
    with pytest.raises(NotFound, match="no dataset named 'loans'"):
        workspace.datasets.get("loans")
    assert workspace.datasets.ingest("loans", [tmp_path / "day2.csv"]).version.ref == "loans@1"


def test_a_version_that_trained_a_registered_model_is_kept_unless_forced(local_workspace, tmp_path):
    ws = local_workspace
    _ingest_days(ws, tmp_path, days=2)
    job = ws.training.train("loans@1", "approved", "random_forest", {"n_estimators": 5})
    ws.models.register_from_job("risk", job["id"])
    with pytest.raises(InvalidInput, match=r"loans@1 trained registered model risk@1") as e:
        ws.datasets.delete("loans@1", and_later=True)
    assert "force" in e.value.hint
    ws.datasets.delete("loans@2")  # the model did not read version 2
    with pytest.raises(InvalidInput, match="give a reason"):
        ws.datasets.delete("loans@1", force=True)
    ws.datasets.delete("loans@1", force=True, reason="personal data removed")
    (_, event) = ws.events(kind="dataset.version_deleted")
    assert event["payload"]["forced"] and event["payload"]["models"] == ["risk@1"]


def test_a_version_written_unreadable_by_an_older_modelloop_can_be_deleted(
    local_workspace, tmp_path, cli
):
    ws = local_workspace
    _ingest_days(ws, tmp_path, days=1)
    deep = pa.int64()
    for _ in range(200):
        deep = pa.list_(deep)
    # what an older modelloop committed: a schema Arrow refuses to read back
    ws.store.commit_dataset_version(
        name="loans", txn="t", schema_json=schema_to_json(pa.schema([("x", deep)])),
        added_rows=0, quarantined_rows=0, parts=[], sources=[], event_time_column=None,
        event_time_min=None, event_time_max=None, schema_changes=None,
        expected_schema_json=ws.store.get_dataset_version("loans")["schema_json"],
    )  # fmt: skip
    r = cli("-w", ws.root, "data", "show", "loans", check=False)
    assert r.code == 1 and "loans@2" in r.err and "modelloop data delete loans@2" in r.err
    cli("-w", ws.root, "data", "delete", "loans@2")
    assert cli("-w", ws.root, "data", "show", "loans", "--json").json()["version"] == 1


@pytest.mark.parametrize(
    ("ref", "error", "message"),
    [
        ("loans", InvalidInput, "name the version to delete"),
        ("loans@latest", InvalidInput, "name the version to delete"),
        ("loans@1..2", InvalidInput, "one version"),
        ("loans@7", NotFound, "has no version 7"),
        ("nope@1", NotFound, "no dataset named 'nope'"),
        (5, InvalidInput, "ref must be"),
    ],
)
def test_bad_delete_references(local_workspace, tmp_path, ref, error, message):
    _ingest_days(local_workspace, tmp_path, days=2, rows=20)
    with pytest.raises(error, match=message):
        local_workspace.datasets.delete(ref)
    assert local_workspace.datasets.get("loans").version == 2
