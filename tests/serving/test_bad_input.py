"""Bad requests get the right status and a message naming what is wrong and the fix."""

from __future__ import annotations

import json

import botocore.exceptions
import httpx
import pytest
from tests.serving.conftest import FEATURES, register_model, row
from tests.serving.test_protocols import sagemaker


@pytest.fixture
def server(local_workspace, serve):
    ws = local_workspace
    ws.endpoints.create("churn", register_model(ws), options={"max_payload_mb": 0.01})
    ws.endpoints.create("broken", register_model(ws, "bad", kind="broken"))
    s = serve(ws)
    s.wait_for("churn")
    s.wait_for("broken")
    return s


def test_wrong_columns_and_types_name_the_column(server):
    url = server.url + "/mlflow/churn/invocations"
    r = httpx.post(url, json={"dataframe_split": {"columns": FEATURES[:4], "data": [[1, 2, 3, 4]]}})
    assert r.status_code == 400 and "missing required column 'f4'" in r.json()["message"]
    r = httpx.post(url, json={"dataframe_records": [{**dict.fromkeys(FEATURES, 1), "zz": 1}]})
    assert r.status_code == 400 and "column 'zz'" in r.json()["message"]
    r = httpx.post(url, json={"dataframe_split": {"columns": FEATURES,
                                                  "data": [[1, "high", 3, 4, 5]]}})
    assert r.status_code == 400
    assert r.json()["message"] == "column 'f1' must be double, got 'high'"
    assert "numbers" in r.json()["hint"]
    r = httpx.post(url, content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["message"]
    r = httpx.post(url, content=b"x", headers={"content-type": "image/png"})
    assert r.status_code == 400 and "application/json, text/csv" in r.json()["hint"]


def test_sagemaker_errors_raise_botocore_exceptions(server):
    client = sagemaker(server.url)
    with pytest.raises(botocore.exceptions.ClientError) as err:
        client.invoke_endpoint(EndpointName="churn", Body="1,2", ContentType="text/csv")
    assert err.value.response["Error"]["Code"] == "ValidationError"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "5 values" in err.value.response["Error"]["Message"]
    with pytest.raises(client.exceptions.ModelError) as err:
        client.invoke_endpoint(EndpointName="broken", Body=json.dumps(row(1)),
                               ContentType="application/json")
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert "Feature names unseen at fit time" in err.value.response["OriginalMessage"]
    with pytest.raises(botocore.exceptions.ClientError) as err:
        client.invoke_endpoint(EndpointName="nope", Body="1", ContentType="text/csv")
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(botocore.exceptions.ClientError) as err:
        client.invoke_endpoint(EndpointName="churn", Body=json.dumps(row(1)),
                               ContentType="application/json", TargetVariant="ghost")
    assert "no variant 'ghost'" in err.value.response["Error"]["Message"]


def test_payload_over_the_limit_is_413(server):
    big = {"instances": row(0, 400)}  # ~ 20 kB > the 0.01 MB limit set on this endpoint
    r = httpx.post(server.url + "/endpoints/churn/invocations", json=big)
    assert r.status_code == 413 and "over the" in r.json()["message"]
    r = httpx.post(server.url + "/endpoints/churn/invocations", json={"instances": row(0, 2)})
    assert r.status_code == 200


def test_model_exception_is_424_with_its_message(server):
    r = httpx.post(server.url + "/mlflow/broken/invocations", json={"instances": row(1)})
    assert r.status_code == 424 and "Feature names unseen at fit time" in r.json()["message"]
    r = httpx.post(server.url + "/v2/models/broken/infer", json={"inputs": [
        {"name": "x", "shape": [1, 5], "datatype": "FP64", "data": row(1)[0]}]})
    assert r.status_code == 424 and "Feature names unseen at fit time" in r.json()["error"]


def test_invocations_needs_one_endpoint(server):
    r = httpx.post(server.url + "/invocations", json=row(1))
    assert r.status_code == 400 and "--endpoint" in r.json()["message"]


def test_cli_errors_are_one_line(local_workspace, cli):
    env = {"MODELLOOP_HOME": str(local_workspace.root)}
    r = cli("endpoint", "show", "nope", env=env, check=False)
    assert r.code == 1 and r.err.count("\n") == 1 and "no endpoint named 'nope'" in r.err
    r = cli("endpoint", "create", "e1", "--model", "ghost@1", env=env, check=False)
    assert r.code == 1 and "no model named 'ghost'" in r.err and "Traceback" not in r.err
    ref = register_model(local_workspace)
    r = cli("endpoint", "create", "e1", "--model", ref, "--capture-sampling", "150", env=env,
            check=False)
    assert r.code == 1 and "between 0 and 100" in r.err
    r = cli("endpoint", "deploy", "e1", "--model", ref, "--strategy", "canary",
            "--canary-percent", "0", env=env, check=False)
    assert r.code == 1 and "canary size" in r.err
