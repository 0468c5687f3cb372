"""A model trained with its preprocessing is served and batch-scored by its fast-path plan, and
answers what the pipeline answers, whatever shape the request takes."""

from __future__ import annotations

import warnings

import httpx
import numpy as np
import pandas as pd
import pytest
from tests.registry.test_fastpath import FEATURES, fit, training_frame

from modelloop.registry.package import save_package


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """An endpoint serving a trained pipeline (binary logistic regression) and one serving a
    regression, on one real server: (server, {endpoint: loaded model})."""
    from tests.serving.conftest import Server

    from modelloop import Workspace

    ws = Workspace.init(tmp_path_factory.mktemp("fastpath") / "ws")
    frame = training_frame()
    models = {}
    for endpoint, (algorithm, target, task) in {
            "churn": ("logistic_regression", "y", "binary"),
            "amount": ("linear_regression", "amount", "regression")}.items():
        model, sig = fit(algorithm, target, task, frame)
        path = ws.root / "packages" / endpoint
        save_package(model, path, signature=sig, task=task, probe=frame[FEATURES])
        ref = ws.models.register(endpoint, path)["ref"]
        ws.models.approve(ref, reason="test model")
        ws.endpoints.create(endpoint, ref)
        models[endpoint] = ws.models.load(ref)
        assert models[endpoint].plan is not None
    server = Server(ws.root)
    try:
        for endpoint in models:
            server.wait_for(endpoint)
        yield server, models
    finally:
        server.stop()
        ws.close()


ROWS = [[34, 52000.5, "basic", "r3", False, None],
        [61, None, "pro", "r17", True, None],
        [47, 48000.0, None, "nowhere", False, None],   # missing plan, unseen region
        [29, 1e7, "enterprise", None, True, None]]      # unseen plan, missing region


def pipeline(model, rows, proba=False):
    frame = pd.DataFrame(rows, columns=FEATURES).astype({"income": float, "empty": float})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return (model.model.predict_proba(frame) if proba else model.model.predict(frame)).tolist()


def test_each_request_shape_answers_what_the_pipeline_answers(served):
    server, models = served
    url = server.url + "/mlflow/churn/invocations"
    want = pipeline(models["churn"], ROWS)
    for i in range(len(ROWS)):  # one row at a time
        r = httpx.post(url, json={"dataframe_split": {"columns": FEATURES, "data": [ROWS[i]]}})
        assert r.status_code == 200, r.text
        assert r.json()["predictions"] == want[i:i + 1]
    records = [dict(zip(FEATURES, r, strict=True)) for r in ROWS]
    r = httpx.post(url, json={"dataframe_records": [dict(reversed(rec.items()))
                                                    for rec in records]})
    assert r.json()["predictions"] == want  # columns in another order
    r = httpx.post(url, json={"dataframe_split": {"columns": FEATURES, "data": ROWS},
                              "params": {"predict_method": "predict_proba"}})
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(r.json()["predictions"], pipeline(models["churn"], ROWS, True),
                               rtol=1e-9)
    # CSV: every value arrives as text, empty numbers refused as the numeric path refuses them
    body = "\n".join(",".join("" if v is None else str(v) for v in r[:5]) + "," for r in ROWS[:2])
    r = httpx.post(server.url + "/endpoints/churn/invocations", content=body,
                   headers={"content-type": "text/csv"})
    assert r.status_code == 400 and "column 'income' must be double, got ''" in r.json()["message"]
    r = httpx.post(server.url + "/endpoints/churn/invocations",
                   content="34,52000.5,basic,r3,0,nan\n61,nan,pro,r17,1,nan",
                   headers={"content-type": "text/csv"})
    assert r.status_code == 200 and r.json()["predictions"] == want[:2]
    # a number in a text column is the text the pipeline's caster makes of it
    odd = [[40, 50000.0, 7, "r1", True, None]]
    r = httpx.post(url, json={"dataframe_split": {"columns": FEATURES, "data": odd}})
    assert r.status_code == 200 and r.json()["predictions"] == pipeline(
        models["churn"], [[40, 50000.0, "7", "r1", True, None]])


def test_bad_values_are_named(served):
    server, _ = served
    url = server.url + "/mlflow/churn/invocations"
    bad = [[34, "lots", "basic", "r3", False, None]]
    r = httpx.post(url, json={"dataframe_split": {"columns": FEATURES, "data": bad}})
    assert r.status_code == 400 and "'income'" in r.json()["message"]
    r = httpx.post(url, json={"dataframe_split": {"columns": FEATURES,
                                                  "data": [[34.5, 1.0, "basic", "r3", 0, None]]}})
    assert r.status_code == 400 and "whole numbers" in r.json()["message"]
    r = httpx.post(url, json={"dataframe_split": {"columns": FEATURES,
                                                  "data": [[34, 1.0, {"a": 1}, "r3", 0, None]]}})
    assert r.status_code == 400 and "'plan'" in r.json()["message"]
    r = httpx.post(url, json={"dataframe_split": {"columns": FEATURES[:-1],
                                                  "data": [[34, 1.0, "basic", "r3", 0]]}})
    assert r.status_code == 400 and "'empty'" in r.json()["message"]


def test_regression_and_batch_transform_use_the_plan(served, tmp_path):
    server, models = served
    r = httpx.post(server.url + "/mlflow/amount/invocations",
                   json={"dataframe_split": {"columns": FEATURES + ["y"],
                                             "data": [row + [1] for row in ROWS]}})
    assert r.status_code == 400  # a column the model does not take
    frame = training_frame(n=50, seed=9)
    rows = frame[FEATURES].astype(object).where(frame[FEATURES].notna(), None).values.tolist()
    r = httpx.post(server.url + "/mlflow/amount/invocations",
                   json={"dataframe_split": {"columns": FEATURES, "data": rows}})
    np.testing.assert_allclose(r.json()["predictions"],
                               pipeline(models["amount"], rows), rtol=1e-9)

    from modelloop.batch import scoring

    layout = {"feed_columns": FEATURES, "max_errors_per_chunk": 10, "proba": True,
              "pass_columns": [], "prediction_column": "p", "proba_columns": ["p0", "p1"],
              "output_columns": ["p", "p0", "p1"], "classes": [0, 1],
              "prediction_dtype": "int64"}
    model = models["churn"]
    calls = []
    real = model.plan.predict
    model.plan.predict = lambda X, p: calls.append(len(X)) or real(X, p)
    table, bad = scoring._score_frame(model, frame, layout)
    assert calls == [len(frame)] and not bad
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert table["p"].to_pylist() == model.model.predict(frame[FEATURES]).tolist()
        np.testing.assert_allclose(table["p1"].to_numpy(),
                                   model.model.predict_proba(frame[FEATURES])[:, 1], rtol=1e-9)
