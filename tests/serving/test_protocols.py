"""Each protocol through a real client against a real ``modelloop serve`` process."""

from __future__ import annotations

import io
import json

import boto3
import httpx
import numpy as np
import pytest
from botocore.config import Config
from tests.serving.conftest import FEATURES, register_model, row


def sagemaker(url: str):
    return boto3.client("sagemaker-runtime", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="x", aws_secret_access_key="x",
                        config=Config(retries={"max_attempts": 1}))


@pytest.fixture
def served(workspace, serve):
    ref = register_model(workspace)
    workspace.endpoints.create("churn", ref)
    server = serve(workspace)
    server.wait_for("churn")
    model = workspace.models.load(ref)
    return server, model


def expected(model, rows) -> list:
    import pandas as pd

    return model.predict(pd.DataFrame(rows, columns=FEATURES)).tolist()


def test_sagemaker_runtime_with_boto3(served):
    server, model = served
    client = sagemaker(server.url)
    rows = row(1, 4)
    out = client.invoke_endpoint(EndpointName="churn", Body=json.dumps({"instances": rows}),
                                 ContentType="application/json", Accept="application/json",
                                 InferenceId="req-42", CustomAttributes="trace=abc")
    assert json.loads(out["Body"].read())["predictions"] == expected(model, rows)
    assert out["InvokedProductionVariant"] == "clf-v1"
    assert out["CustomAttributes"] == "trace=abc"

    csv_body = "\n".join(",".join(map(str, r)) for r in rows)
    out = client.invoke_endpoint(EndpointName="churn", Body=csv_body, ContentType="text/csv",
                                 Accept="text/csv")
    assert out["Body"].read().decode().split() == [str(p) for p in expected(model, rows)]

    lines = "\n".join(json.dumps({"features": r}) for r in rows)
    out = client.invoke_endpoint(EndpointName="churn", Body=lines,
                                 ContentType="application/jsonlines",
                                 Accept="application/jsonlines")
    got = [json.loads(x)["prediction"] for x in out["Body"].read().decode().split("\n") if x]
    assert got == expected(model, rows)

    buf = io.BytesIO()
    np.save(buf, np.asarray(rows))
    out = client.invoke_endpoint(EndpointName="churn", Body=buf.getvalue(),
                                 ContentType="application/x-npy")
    assert json.loads(out["Body"].read())["predictions"] == expected(model, rows)

    out = client.invoke_endpoint(EndpointName="churn", Body=json.dumps(rows),
                                 ContentType="application/json", TargetVariant="clf-v1")
    assert out["InvokedProductionVariant"] == "clf-v1"


def test_container_contract(served):
    server, model = served
    assert httpx.get(server.url + "/ping").status_code == 200
    rows = row(2, 2)
    r = httpx.post(server.url + "/invocations", json={"dataframe_split": {
        "columns": FEATURES, "data": rows}})
    assert r.status_code == 200 and r.json()["predictions"] == expected(model, rows)


def test_mlflow_scoring_formats(served):
    server, model = served
    rows = row(3, 3)
    url = server.url + "/mlflow/churn/invocations"
    want = expected(model, rows)
    records = [dict(zip(FEATURES, r, strict=True)) for r in rows]
    # columns given in another order are put back in signature order
    shuffled = FEATURES[::-1]
    bodies = [
        {"dataframe_split": {"columns": FEATURES, "data": rows}},
        {"dataframe_split": {"columns": shuffled, "data": [r[::-1] for r in rows]}},
        {"dataframe_records": records},
        {"instances": rows},
        {"inputs": {f: [r[i] for r in rows] for i, f in enumerate(FEATURES)}},
    ]
    for body in bodies:
        r = httpx.post(url, json=body)
        assert r.status_code == 200, r.text
        assert r.json() == {"predictions": want}
    csv_text = ",".join(FEATURES) + "\n" + "\n".join(",".join(map(str, r)) for r in rows)
    r = httpx.post(url, content=csv_text, headers={"content-type": "text/csv"})
    assert r.json() == {"predictions": want}


def test_open_inference_protocol_v2(served):
    server, model = served
    assert httpx.get(server.url + "/v2/health/live").json() == {"live": True}
    assert httpx.get(server.url + "/v2/health/ready").status_code == 200
    meta = httpx.get(server.url + "/v2/models/churn").json()
    assert meta["name"] == "churn" and meta["versions"] == ["1"]
    assert [i["name"] for i in meta["inputs"]] == FEATURES
    rows = row(4, 3)
    want = expected(model, rows)
    tensor = {"inputs": [{"name": "input-0", "shape": [3, 5], "datatype": "FP64",
                          "data": [v for r in rows for v in r]}]}
    for path in ("/v2/models/churn/infer", "/v2/models/churn/versions/1/infer"):
        r = httpx.post(server.url + path, json=tensor)
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["model_name"] == "churn" and out["model_version"] == "1"
        assert out["outputs"][0]["data"] == want and out["outputs"][0]["shape"] == [3]
    per_column = {"inputs": [{"name": f, "shape": [3], "datatype": "FP64",
                              "data": [r[i] for r in rows]} for i, f in enumerate(FEATURES)],
                  "outputs": [{"name": "predict"}, {"name": "predict_proba"}]}
    out = httpx.post(server.url + "/v2/models/churn/infer", json=per_column).json()
    assert out["outputs"][0]["data"] == want
    assert out["outputs"][1]["shape"] == [3, 2]
    r = httpx.post(server.url + "/v2/models/churn/versions/9/infer", json=tensor)
    assert r.status_code == 400 and "no version '9'" in r.json()["error"]


def test_second_server_on_the_same_store_serves_the_same_endpoints(workspace, serve, served):
    first, model = served
    second = serve(workspace)
    second.wait_for("churn")
    rows = row(5, 2)
    for s in (first, second):
        r = httpx.post(s.url + "/endpoints/churn/invocations", json=rows)
        assert r.json()["predictions"] == expected(model, rows)
    # a change made through the store reaches both servers
    ref2 = register_model(workspace, "reg", kind="regression")
    workspace.endpoints.deploy("churn", ref2)
    for s in (first, second):
        s.wait_for("churn", lambda i: "reg-v1" in i["variants"])
        r = httpx.post(s.url + "/endpoints/churn/invocations", json=rows)
        assert r.headers["x-amzn-invoked-production-variant"] == "reg-v1"
