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


def _serve_churn(ws, start):
    """``churn`` served by a server ``start(ws)`` gives: (server, the loaded model)."""
    ref = register_model(ws)
    ws.endpoints.create("churn", ref)
    server = start(ws)
    server.wait_for("churn")
    return server, ws.models.load(ref)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """One server for the module's read-only protocol tests."""
    from tests.serving.conftest import Server

    from modelloop import Workspace

    ws = Workspace.init(tmp_path_factory.mktemp("served") / "ws")
    started = []

    def start(w):
        started.append(Server(w.root))
        return started[-1]

    try:
        yield _serve_churn(ws, start)
    finally:
        for server in started:
            server.stop()
        ws.close()


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


@pytest.mark.all_backends
def test_second_server_on_the_same_store_serves_the_same_endpoints(workspace, serve):
    first, model = _serve_churn(workspace, serve)
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


# -- models of every output kind: text columns, string and int labels, regression ---------------
MIXED = ["age", "plan", "spend"]


def register_mixed(ws, name: str, *, labels: str = "str") -> str:
    """A pipeline over a text column (``plan``) and two numbers; labels are strings ("stay",
    "churn"), ints (0, 1, 2: multiclass) or a regression target; registered and approved."""
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    from modelloop.registry.package import save_package
    from modelloop.registry.signature import Signature

    rng = np.random.default_rng(7)
    n = 300
    X = pd.DataFrame({"age": rng.integers(18, 80, n), "plan": rng.choice(["basic", "pro"], n),
                      "spend": rng.normal(50, 10, n).round(2)})
    score = (X["age"] - 50) / 10 + (X["plan"] == "pro") * 1.5 + (X["spend"] - 50) / 10
    prep = ColumnTransformer([("plan", OneHotEncoder(handle_unknown="ignore"), ["plan"])],
                             remainder="passthrough")
    if labels == "str":
        y, task = np.where(score > 0, "churn", "stay"), "binary"
    elif labels == "int":
        y, task = np.digitize(score, [-1, 1]), "multiclass"
    else:
        y, task = score * 3.0, "regression"
    est = LinearRegression() if task == "regression" else LogisticRegression(max_iter=1000)
    model = make_pipeline(prep, est).fit(X, y)
    path = ws.root / "packages" / f"{name}-{labels}"
    save_package(model, path, signature=Signature.from_frame(X), task=task)
    ref = ws.models.register(name, path)["ref"]
    ws.models.approve(ref, reason="test model")
    return ref


MIXED_ROWS = [[34, "basic", 41.5], [61, "pro", 55.0], [47, "pro", 49.25]]


@pytest.fixture(scope="module")
def kinds(tmp_path_factory):
    """One server with endpoints of each output kind: (server, {endpoint: loaded model})."""
    from tests.serving.conftest import Server

    from modelloop import Workspace

    ws = Workspace.init(tmp_path_factory.mktemp("kinds") / "ws")
    models = {}
    for endpoint, labels in (("strlab", "str"), ("intlab", "int"), ("reg", "reg")):
        ref = register_mixed(ws, endpoint, labels=labels)
        ws.endpoints.create(endpoint, ref)
        models[endpoint] = ws.models.load(ref)
    server = Server(ws.root)
    try:
        for endpoint in models:
            server.wait_for(endpoint)
        yield server, models
    finally:
        server.stop()
        ws.close()


def mixed_expected(model, rows=MIXED_ROWS) -> list:
    import pandas as pd

    return model.predict(pd.DataFrame(rows, columns=MIXED)).tolist()


def test_headerless_csv_with_a_text_column_is_read_as_rows(kinds):
    """SageMaker's CSV has no header: a first row with text is data unless it is the names."""
    server, models = kinds
    url = server.url + "/endpoints/strlab/invocations"
    want = mixed_expected(models["strlab"])
    body = "\n".join(",".join(map(str, r)) for r in MIXED_ROWS)
    r = httpx.post(url, content=body, headers={"content-type": "text/csv"})
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == want
    # a first row that is the model's column names (in any order) is a header
    reordered = "plan,spend,age\n" + "\n".join(f"{p},{s},{a}" for a, p, s in MIXED_ROWS)
    r = httpx.post(url, content=reordered, headers={"content-type": "text/csv"})
    assert r.status_code == 200 and r.json()["predictions"] == want
    # the client can say so: a Content-Type parameter or a SageMaker custom attribute
    r = httpx.post(url, content="age,plan,spend\n" + body,
                   headers={"content-type": "text/csv; header=present"})
    assert r.status_code == 200 and r.json()["predictions"] == want
    out = sagemaker(server.url).invoke_endpoint(
        EndpointName="strlab", Body="age,plan,spend\n" + body, ContentType="text/csv",
        CustomAttributes="header=present")
    assert json.loads(out["Body"].read())["predictions"] == want
    # header=absent: a names row is then data, and 'age' is not a number
    r = httpx.post(url, content="age,plan,spend\n" + body,
                   headers={"content-type": "text/csv; header=absent"})
    assert r.status_code == 400 and "'age'" in r.json()["message"]
    # one headerless row still works, through the container route too
    r = httpx.post(url, content="34,basic,41.5", headers={"content-type": "text/csv"})
    assert r.status_code == 200 and r.json()["predictions"] == want[:1]


def _check_against_metadata(meta: dict, response: dict, n_rows: int) -> None:
    """Each output of an infer response has the datatype the metadata announced, a matching
    shape, and values of that type."""
    announced = {o["name"]: o for o in meta["outputs"]}
    for out in response["outputs"]:
        name = "predict_proba" if out["name"] == "probabilities" else out["name"]
        spec = announced[name]
        assert out["datatype"] == spec["datatype"], (out, spec)
        assert len(out["shape"]) == len(spec["shape"])
        assert all(a == -1 or a == b for a, b in zip(spec["shape"], out["shape"], strict=True))
        assert out["shape"][0] == n_rows
        kind = {"BYTES": str, "INT64": int, "FP64": float, "BOOL": bool}[out["datatype"]]
        assert all(type(v) is kind for v in out["data"]), (out["datatype"], out["data"])


def test_v2_metadata_and_responses_agree(kinds):
    server, models = kinds
    per_column = {"inputs": [
        {"name": "age", "shape": [3], "datatype": "INT64", "data": [r[0] for r in MIXED_ROWS]},
        {"name": "plan", "shape": [3, 1], "datatype": "BYTES", "data": [r[1] for r in MIXED_ROWS]},
        {"name": "spend", "shape": [3], "datatype": "FP64", "data": [r[2] for r in MIXED_ROWS]}]}
    datatypes = {}
    for endpoint, model in models.items():
        meta = httpx.get(f"{server.url}/v2/models/{endpoint}").json()
        datatypes[endpoint] = meta["outputs"][0]["datatype"]
        has_proba = endpoint != "reg"
        assert [o["name"] for o in meta["outputs"]] == (
            ["predict", "predict_proba"] if has_proba else ["predict"])
        wanted = [{"name": "predict"}] + ([{"name": "probabilities"}] if has_proba else [])
        r = httpx.post(f"{server.url}/v2/models/{endpoint}/infer",
                       json={**per_column, "outputs": wanted})
        assert r.status_code == 200, r.text
        _check_against_metadata(meta, r.json(), 3)
        labels = r.json()["outputs"][0]["data"]
        assert labels == pytest.approx(mixed_expected(model))
        if has_proba:
            probs = r.json()["outputs"][1]
            assert probs["name"] == "probabilities"
            assert probs["shape"] == [3, len(model.classes_)]
        # the same metadata for the version route
        assert httpx.get(f"{server.url}/v2/models/{endpoint}/versions/1").json() == meta
        assert httpx.get(f"{server.url}/v2/models/{endpoint}/versions/1/ready").json()["ready"]
    assert datatypes == {"strlab": "BYTES", "intlab": "INT64", "reg": "FP64"}
    r = httpx.post(f"{server.url}/v2/models/reg/infer",
                   json={**per_column, "outputs": [{"name": "predict_proba"}]})
    assert r.status_code == 400 and "no class probabilities" in r.json()["error"]


def test_v2_server_metadata_and_health(kinds):
    server, _ = kinds
    r = httpx.get(server.url + "/v2")
    assert r.status_code == 200
    assert r.json()["name"] == "modelloop" and "binary_tensor_data" in r.json()["extensions"]
    assert httpx.get(server.url + "/v2/health/live").json() == {"live": True}
    assert httpx.get(server.url + "/v2/health/ready").json() == {"ready": True}
    assert httpx.get(server.url + "/v2/models/reg/ready").json() == {"name": "reg", "ready": True}
    assert httpx.get(server.url + "/v2/models/nope/ready").status_code == 404
    assert httpx.get(server.url + "/v2/models/reg/versions/7/ready").status_code == 404


def test_probabilities_have_an_explicit_option_in_each_protocol(kinds):
    server, models = kinds
    model = models["intlab"]
    import pandas as pd

    want = model.predict_proba(pd.DataFrame(MIXED_ROWS, columns=MIXED))
    classes = model.classes_.tolist()
    # SageMaker: the CustomAttributes header
    out = sagemaker(server.url).invoke_endpoint(
        EndpointName="intlab", Body=json.dumps({"instances": MIXED_ROWS}),
        ContentType="application/json", CustomAttributes="probabilities=true")
    body = json.loads(out["Body"].read())
    assert body["classes"] == classes
    assert np.allclose(body["probabilities"], want)
    labels = body["predictions"]
    # in CSV and JSON Lines answers too, after each prediction (never dropped)
    r = httpx.post(server.url + "/endpoints/intlab/invocations", json=MIXED_ROWS,
                   headers={"x-amzn-sagemaker-custom-attributes": "probabilities",
                            "accept": "text/csv"})
    cells = [line.split(",") for line in r.text.split()]
    assert [int(c[0]) for c in cells] == labels
    assert np.allclose([[float(v) for v in c[1:]] for c in cells], want)
    r = httpx.post(server.url + "/endpoints/intlab/invocations", json=MIXED_ROWS,
                   headers={"x-amzn-sagemaker-custom-attributes": "probabilities",
                            "accept": "application/jsonlines"})
    lines = [json.loads(line) for line in r.text.split("\n") if line]
    assert [x["prediction"] for x in lines] == labels
    assert np.allclose([x["probabilities"] for x in lines], want)
    # MLflow: params.predict_method, as MLflow's pyfunc serving takes it
    r = httpx.post(server.url + "/mlflow/intlab/invocations", json={
        "dataframe_split": {"columns": MIXED, "data": MIXED_ROWS},
        "params": {"predict_method": "predict_proba"}})
    assert r.status_code == 200, r.text
    assert np.allclose(r.json()["predictions"], want) and r.json()["classes"] == classes
    r = httpx.post(server.url + "/mlflow/intlab/invocations", json={
        "instances": MIXED_ROWS, "params": {"predict_method": "explain"}})
    assert r.status_code == 400 and "predict_method 'explain'" in r.json()["message"]
    # OIP: an output named predict_proba (or probabilities)
    r = httpx.post(server.url + "/v2/models/intlab/infer", json={
        "inputs": [{"name": "x", "shape": [3, 3], "datatype": "BYTES",
                    "data": [v for row in MIXED_ROWS for v in row]}],
        "outputs": [{"name": "predict_proba"}]})
    assert r.status_code == 200, r.text
    assert [o["name"] for o in r.json()["outputs"]] == ["predict_proba"]
    assert np.allclose(np.reshape(r.json()["outputs"][0]["data"], (3, -1)), want)
    # a model without probabilities says so rather than leaving them out
    r = httpx.post(server.url + "/endpoints/reg/invocations", json=MIXED_ROWS,
                   headers={"x-amzn-sagemaker-custom-attributes": "probabilities=true"})
    assert r.status_code == 400 and "no class probabilities" in r.json()["message"]
