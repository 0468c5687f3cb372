"""The SDK and the CLI against a real API server (HTTP on a loopback port): the same values and
the same error classes as the local workspace, files streamed both ways, what cannot cross a
network refused by name. One server for the module."""

from __future__ import annotations

import pytest
from tests.conftest import invoke_cli
from tests.remote_server import ApiServer

from modelloop import Workspace, errors
from modelloop.data.samples import loan_applications


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("remote")
    local = Workspace.init(root / "ws")
    csv = root / "day1.csv"
    loan_applications(60, seed=1).to_csv(csv, index=False)
    server = ApiServer(local.root)
    remote = Workspace.connect(server.url, server.token)
    remote.datasets.ingest("loans", [csv], event_time_column="applied_at")
    yield local, remote, server, root
    remote.close()
    server.close()
    local.close()


def test_the_remote_workspace_gives_what_the_local_one_gives(served):
    local, remote, _, _ = served
    here, there = local.datasets.get("loans@1"), remote.datasets.get("loans@1")
    assert there == here  # the dataclass, its exact Arrow schema and its datetimes included
    assert remote.datasets.head("loans", 5).equals(local.datasets.head("loans", 5))
    assert remote.datasets.list() == local.datasets.list()
    assert remote.events(kind="dataset.version_created") == local.events(
        kind="dataset.version_created")


def test_a_table_streams_batch_by_batch_never_whole_on_the_server(served, monkeypatch):
    local, remote, server, _ = served

    def whole(*args, **kwargs):
        raise AssertionError("the server built the whole table")

    monkeypatch.setattr(server.ws.datasets, "to_arrow", whole)
    cols = ["application_id", "salary"]
    assert remote.datasets.to_arrow("loans", columns=cols).equals(
        local.datasets.to_arrow("loans", columns=cols))
    with pytest.raises(errors.InvalidInput, match="nope"):
        remote.datasets.to_arrow("loans", columns=["nope"])
    assert remote.datasets.to_pandas("loans", columns=cols).equals(
        local.datasets.to_pandas("loans", columns=cols))  # composed on this side
    assert sum(b.num_rows for b in remote.datasets.iter_batches("loans", batch_size=25)) == 60


def test_errors_come_back_as_the_same_classes(served):
    _, remote, server, _ = served
    with pytest.raises(errors.NotFound, match="nope"):
        remote.datasets.get("nope")
    with pytest.raises(errors.InvalidInput):
        remote.datasets.get("loans@two")
    with Workspace.connect(server.url, "ml_1_wrong") as stranger, pytest.raises(
            errors.Unauthenticated):
        stranger.datasets.list()
    with pytest.raises(errors.InvalidInput, match="not through the modelloop API"):
        remote.models.load("loans@1")  # a live model cannot cross a network


def test_several_files_upload_as_one_version_recorded_by_their_paths(served, tmp_path):
    """(Downloads: the baselines' export below; a job's artifacts: CI's --remote step.)"""
    _, remote, _, root = served
    for day in (2, 3):
        loan_applications(30, seed=day).to_csv(tmp_path / f"day{day}.csv", index=False)
    report = remote.datasets.ingest("more", [tmp_path / "day2.csv", tmp_path / "day3.csv"])
    assert report.version.row_count == 60 and len(report.sources) == 2
    # recorded by the paths that named them here, not by the server's copies
    assert [s["path"] for s in remote.datasets.sources("more")] == [
        str(tmp_path / "day2.csv"), str(tmp_path / "day3.csv")]
    with pytest.raises(errors.InvalidInput, match="control character") as bad:
        remote.datasets.ingest("more", tmp_path / "day3.csv", source_names=["a\nb"])
    assert bad.value.field == "source_names"


def test_the_cli_goes_through_the_api_when_modelloop_url_is_set(served, tmp_path):
    local, _, server, _ = served
    env = {"MODELLOOP_URL": server.url, "MODELLOOP_TOKEN": server.token}
    listed = invoke_cli("data", "list", "--json", cwd=tmp_path, env=env).json()  # no workspace here
    assert listed == invoke_cli("-w", local.root, "data", "list", "--json").json()
    serve = invoke_cli("serve", cwd=tmp_path, env=env, check=False)
    assert "runs only on the server's machine" in serve.err


def test_feature_sets_are_applied_and_read_back_through_the_api(served, tmp_path):
    import numpy as np
    import pandas as pd
    import yaml
    from tests.features.test_offline import SPEC, random_events

    from modelloop.common.jsonable import to_jsonable

    local, remote, server, _ = served
    events = random_events(np.random.default_rng(7), 200, cards=8)
    events.to_parquet(tmp_path / "tx.parquet")
    remote.datasets.ingest("tx", [tmp_path / "tx.parquet"])
    spec = tmp_path / "features.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    assert remote.features.apply(spec)["version"] == 1  # the file is read here, sent as YAML text
    assert remote.features.apply(SPEC)["changed"] is False  # the same, as an object
    assert [r["name"] for r in remote.features.list()] == ["cards"]
    assert remote.features.show("cards") == local.features.show("cards")
    assert remote.features.backfill("cards")["applied"] == 200
    at = pd.Timestamp(events["ts"].max()).isoformat()
    here = to_jsonable(local.features.get_online("cards", ["1", "2"], at=at))  # NaN: null in JSON
    assert remote.features.get_online("cards", [1, 2], at=at) == here  # keys travel as text
    queries = events[["card", "ts"]].head(10)
    there = remote.features.get_historical("cards", queries)  # rows as JSON, a frame back (Arrow)
    here = local.features.get_historical("cards", queries)
    cols = [f["name"] for f in SPEC["features"]]
    pd.testing.assert_frame_equal(there[cols], here[cols])
    with pytest.raises(errors.InvalidInput, match="lacks column"):
        remote.features.get_historical("cards", [{"card": 1}])
    env = {"MODELLOOP_URL": server.url, "MODELLOOP_TOKEN": server.token}
    got = invoke_cli("features", "get", "cards", "card=3", "--at", at, "--json", cwd=tmp_path,
                     env=env).json()  # fmt: skip
    assert got[0]["card"] == "3"
    shown = invoke_cli("features", "show", "cards", cwd=tmp_path, env=env).out
    assert "hopping 2h every 30m" in shown


def test_baselines_are_made_shown_exported_and_imported_through_the_api(served, tmp_path):
    local, remote, _, _ = served
    made = remote.monitoring.baselines.create("loans@1", name="b1", target="approved")
    assert made["name"] == "b1" and made["ref"] == "loans@1"
    checked = remote.monitoring.check("loans@1", "b1", exclude=["zipcode"])  # a CheckReport
    assert checked.to_dict() == local.monitoring.check("loans@1", "b1",
                                                       exclude=["zipcode"]).to_dict()
    remote.monitoring.create_monitor("m1", baseline="b1", dataset="loans")
    updated = remote.monitoring.update_monitor("m1", schedule="@daily")  # **fields travel
    assert local.monitoring.monitor("m1")["schedule"] == "@daily" == updated["schedule"]
    (tmp_path / "here.csv").write_text("a\n1\n")
    with pytest.raises(errors.InvalidInput, match="is a file of this machine"):
        remote.monitoring.check(str(tmp_path / "here.csv"), "b1")
    assert remote.monitoring.baselines.list() == local.monitoring.baselines.list()
    there, here = remote.monitoring.baselines.load("b1"), local.monitoring.baselines.load("b1")
    assert there.to_dict() == here.to_dict()  # the document crosses, the Baseline is rebuilt
    paths = remote.monitoring.baselines.export("b1", tmp_path / "sm")
    assert sorted(p.name for p in paths) == ["constraints.json", "statistics.json"]
    assert all(p.parent == tmp_path / "sm" and p.is_file() for p in paths)
    brought = remote.monitoring.baselines.import_("b2", tmp_path / "sm")  # a folder: a tar
    assert brought["source"] == "sagemaker" and brought["n_rows"] == made["n_rows"]
    one = remote.monitoring.baselines.import_("b3", tmp_path / "sm" / "statistics.json")
    assert one["n_rows"] == made["n_rows"]
    remote.monitoring.baselines.delete("b3")
    with pytest.raises(errors.NotFound, match="b3"):
        remote.monitoring.baselines.get("b3")
