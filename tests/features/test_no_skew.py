"""No skew by construction: a model trained from a feature set's point-in-time join records the
definition; its endpoint, given only the entity key and the request-time fields, looks the same
features up online and feeds the model the values the training rows had at the same time."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from tests.features.test_offline import ingest, random_events

from modelloop.errors import InvalidInput
from modelloop.serving.dataplane.payload import Payload

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

SPEC = {"name": "cards", "source": "tx", "entities": ["card"], "event_time": "ts",
        "features": [{"name": "n_1h", "aggregate": "count", "window": "1h"},
                     {"name": "amount_24h", "aggregate": "sum", "column": "amount", "window": "24h"},
                     {"name": "max_6h", "aggregate": "max", "column": "amount", "window": "6h"}]}


@pytest.mark.slow  # 8-12 s alone, most of it importing scikit-learn for the first time
def test_training_time_and_serving_time_features_are_equal(local_workspace, tmp_path):
    ws, rng = local_workspace, np.random.default_rng(11)
    events = random_events(rng, 800, cards=12)
    ingest(ws, tmp_path, events, 1)
    ws.features.apply(SPEC)
    ws.features.update("cards")
    picked = events.sample(150, random_state=1)
    now = events["ts"].max() + pd.Timedelta("10min")  # the online store's present
    times = (picked["ts"] + pd.Timedelta("10min")).to_numpy()
    times[::15] = now  # ten label rows at the present: served now, and trained on
    labels = pd.DataFrame({"card": picked["card"].to_numpy(), "ts": times,
                           "channel": rng.integers(0, 3, len(picked)).astype(float),
                           "fraud": rng.integers(0, 2, len(picked))})
    labels.to_parquet(tmp_path / "labels.parquet")
    ws.datasets.ingest("labels", tmp_path / "labels.parquet")
    data = ws.features.training_data("cards", "labels")
    assert data["rows"] == 150 and data["features"]["version"] == 1
    job = ws.training.train(data["dataset"], "fraud", "logistic_regression",
                            features=data["features"], report=False)
    ref = ws.models.register_from_job("fraud", job["id"])["ref"]
    assert ws.models.get(ref)["manifest"]["lineage"]["features"]["name"] == "cards"
    ws.models.approve(ref, reason="test")
    ws.endpoints.create("fraud", ref)
    training = ws.datasets.to_pandas(data["dataset"])
    with TestClient(ws.endpoints.server_app()) as client:
        (variant,) = client.app.state.plane.runtime("fraud").variants.values()
        columns = variant.columns
        assert {"n_1h", "amount_24h", "channel"} <= set(columns) and "card" not in columns
        for i in range(0, 150, 15):  # each label row: the key, its time, its request field
            row = labels.iloc[i]
            payload = Payload(["card", "ts", "channel"],
                              [[int(row.card), row.ts.isoformat(), row.channel]])
            served = pd.DataFrame(np.asarray(variant.prepare(payload), dtype=float), columns=columns)
            trained = training.iloc[i][columns].astype(float)
            np.testing.assert_array_equal(served.iloc[0].to_numpy(), trained.to_numpy())
        assert training.iloc[::15]["n_1h"].sum() > 0  # not all empty
        past = labels.iloc[1]  # online answers the present; the past is the offline store's
        with pytest.raises(InvalidInput, match="features history"):
            variant.prepare(Payload(["card", "ts", "channel"],
                                    [[int(past.card), past.ts.isoformat(), past.channel]]))
        row = labels.iloc[0]
        answer = client.post("/mlflow/fraud/invocations", json={"dataframe_split": {
            "columns": ["card", "ts", "channel"],
            "data": [[int(row.card), row.ts.isoformat(), row.channel]]}})
        assert answer.status_code == 200, answer.text
        model = ws.models.load(ref)
        expected = model.predict(training.iloc[[0]][columns])
        assert answer.json()["predictions"] == [int(expected[0])]
        no_key = client.post("/mlflow/fraud/invocations", json={"dataframe_split": {
            "columns": ["channel"], "data": [[1.0]]}})
        assert no_key.status_code == 400 and "entity key 'card'" in no_key.text
    ws.features.apply({**SPEC, "features": SPEC["features"][:2]})  # the definition moved on
    with pytest.raises(InvalidInput, match="would skew"):
        ws.features.serve(data["features"], [1])


def test_a_loop_trains_on_the_point_in_time_join_of_its_labels(local_workspace, tmp_path, cli):
    ws, rng = local_workspace, np.random.default_rng(4)
    events = random_events(rng, 600, cards=8)
    ingest(ws, tmp_path, events, 1)
    ws.features.apply(SPEC)

    def labels(n, seed):
        picked = events.sample(n, random_state=seed)
        return pd.DataFrame({"card": picked["card"].to_numpy(), "ts": picked["ts"].to_numpy(),
                             "channel": rng.integers(0, 3, n).astype(float),
                             "fraud": rng.integers(0, 2, n)})

    labels(120, 1).to_parquet(tmp_path / "l1.parquet")
    ws.datasets.ingest("labels", tmp_path / "l1.parquet")
    spec = tmp_path / "loop.yaml"
    spec.write_text("name: fraud\ndata: {dataset: labels, features: cards}\ntarget: fraud\n"
                    "train: {algorithm: logistic_regression, report: false}\n"
                    "register: {approval: auto}\n")
    first = cli("-w", ws.root, "loop", "run", spec, "--json").json()
    assert first["status"] == "succeeded", first
    assert first["data"]["ref"] == "labels_cards@1" and first["data"]["rows"] == 120
    lineage = ws.models.get("fraud@1")["manifest"]["lineage"]
    assert lineage["features"]["name"] == "cards" and lineage["features"]["version"] == 1
    labels(60, 2).to_parquet(tmp_path / "l2.parquet")
    ws.datasets.ingest("labels", tmp_path / "l2.parquet")
    second = cli("-w", ws.root, "loop", "run", spec, "--json").json()
    assert second["data"]["ref"] == "labels_cards@2" and second["data"]["rows"] == 180  # new rows once
