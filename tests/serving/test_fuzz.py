"""Property-based fuzzing of every serving protocol: no request, however malformed, gets a 5xx.

One module-scoped ``modelloop serve`` (a numeric endpoint and one with a text column) takes
bounded examples per protocol; each request must be answered with a status below 500 (and a
JSON body naming the problem when it is a 4xx).
"""

from __future__ import annotations

import json
import struct

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.serving.conftest import FEATURES, register_model
from tests.serving.test_protocols import MIXED, register_mixed

SETTINGS = settings(max_examples=150, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from tests.serving.conftest import Server

    from modelloop import Workspace

    ws = Workspace.init(tmp_path_factory.mktemp("fuzz") / "ws")
    ref = register_model(ws)
    if ws.store.get_model_version(*ws.models.resolve(ref)).get("status") != "approved":
        ws.models.approve(ref, reason="test model")
    ws.endpoints.create("num", ref, options={"max_request_rows": 50, "auth": "none"})
    ws.endpoints.create("mix", register_mixed(ws, "mix"), options={"max_request_rows": 50})
    ws.endpoints.create("onl", online="preprocessing.StandardScaler|linear_model."
                        "LogisticRegression", features=["f0", {"name": "x", "type": "category"}],
                        options={"auth": "none"})
    operator = ws.tokens.create("fuzz", role="operator")["token"]  # dataset rows need one
    server = Server(ws.root)
    try:
        server.wait_for("num")
        server.wait_for("mix")
        with httpx.Client(base_url=server.url, timeout=60,
                          headers={"authorization": f"Bearer {operator}"}) as c:
            yield c
    finally:
        server.stop()
        ws.close()


ENDPOINTS = st.sampled_from(["num", "mix"])
NAMES = st.sampled_from([*FEATURES, *MIXED, "x", "input-0", "", "zz"])
scalars = (st.none() | st.booleans() | st.integers(-2**70, 2**70)
           | st.floats() | st.text(max_size=8) | NAMES)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=6)
                           | st.dictionaries(NAMES | st.text(max_size=6), inner, max_size=5),
                           max_leaves=40)
rows = st.lists(st.lists(scalars, max_size=7), max_size=6)
deep = st.integers(1, 3000).map(lambda n: "[" * n + "1" + "]" * n)


def check(r: httpx.Response) -> None:
    assert r.status_code < 500, (r.status_code, r.text[:500])
    if r.status_code >= 400:
        body = r.json()
        assert body.get("message") or body.get("error"), r.text[:300]


def post(client, path, content, ctype, **headers) -> None:
    if isinstance(content, str):
        content = content.encode("utf-8", "surrogatepass")
    check(client.post(path, content=content, headers={"content-type": ctype, **headers}))


def as_json(value) -> str:
    return json.dumps(value) if not isinstance(value, str) else value


@SETTINGS
@given(ENDPOINTS, st.one_of(
    st.text(max_size=200),
    rows.map(lambda rs: "\n".join(",".join(map(str, r)) for r in rs)),
    st.binary(max_size=200)),
    st.sampled_from(["text/csv", "text/csv; header=present", "text/csv; header=absent",
                     "text/plain"]))
def test_sagemaker_csv(client, endpoint, body, ctype):
    post(client, f"/endpoints/{endpoint}/invocations", body, ctype)


@SETTINGS
@given(ENDPOINTS, json_values | deep | rows.map(as_json)
       | st.fixed_dictionaries({"instances": json_values})
       | st.fixed_dictionaries({"features": rows}),
       st.sampled_from(["", "probabilities=true", "header=present", "probabilities=maybe"]))
def test_sagemaker_json(client, endpoint, doc, attrs):
    headers = {"x-amzn-sagemaker-custom-attributes": attrs} if attrs else {}
    post(client, f"/endpoints/{endpoint}/invocations", as_json(doc), "application/json",
         **headers)


@SETTINGS
@given(ENDPOINTS, st.lists(json_values.map(as_json) | deep | st.text(max_size=30), max_size=6)
       | st.binary(max_size=100))
def test_sagemaker_json_lines(client, endpoint, lines):
    body = lines if isinstance(lines, bytes) else "\n".join(lines)
    post(client, f"/endpoints/{endpoint}/invocations", body, "application/jsonlines")


@SETTINGS
@given(st.binary(max_size=300))
def test_sagemaker_npy(client, body):
    post(client, "/endpoints/num/invocations", b"\x93NUMPY" + body, "application/x-npy")


mlflow_docs = st.one_of(
    st.fixed_dictionaries({"dataframe_split": st.fixed_dictionaries(
        {"columns": json_values | st.lists(NAMES, max_size=6), "data": json_values | rows})}),
    st.fixed_dictionaries({"dataframe_records": json_values
                           | st.lists(st.dictionaries(NAMES, scalars, max_size=6), max_size=5)}),
    st.fixed_dictionaries({"instances": json_values | rows}),
    st.fixed_dictionaries({"inputs": json_values
                           | st.dictionaries(NAMES, st.lists(scalars, max_size=4), max_size=6)}),
    st.fixed_dictionaries({"columns": json_values, "data": json_values}),
    st.dictionaries(NAMES, st.lists(scalars, max_size=4), max_size=6),
)


@SETTINGS
@given(ENDPOINTS, mlflow_docs | json_values | deep,
       st.none() | json_values | st.fixed_dictionaries(
           {"predict_method": st.sampled_from(["predict", "predict_proba", "x"]) | scalars}))
def test_mlflow_json(client, endpoint, doc, params):
    if isinstance(doc, dict) and params is not None:
        doc = {**doc, "params": params}
    post(client, f"/mlflow/{endpoint}/invocations", as_json(doc), "application/json")


DATATYPES = st.sampled_from(["FP64", "FP32", "INT64", "INT32", "BYTES", "BOOL", "UINT8", "FP16",
                             "XX"]) | scalars
shapes = st.lists(st.integers(-2, 10**8) | st.floats(0, 10) | scalars, max_size=3) | scalars
tensors = st.fixed_dictionaries(
    {"name": NAMES | scalars, "shape": shapes, "datatype": DATATYPES},
    optional={"data": json_values | st.lists(scalars, max_size=12),
              "parameters": st.dictionaries(st.sampled_from(["binary_data_size", "x"]),
                                            scalars, max_size=2) | scalars})
outputs = st.lists(st.fixed_dictionaries(
    {"name": st.sampled_from(["predict", "predict_proba", "probabilities", "zz"]) | scalars},
    optional={"parameters": st.dictionaries(st.just("binary_data"), scalars, max_size=1)})
    | scalars, max_size=3)
oip_docs = st.fixed_dictionaries(
    {"inputs": st.lists(tensors, max_size=4) | json_values},
    optional={"outputs": outputs | json_values, "id": scalars,
              "parameters": st.dictionaries(st.just("binary_data_output"), scalars)})


@SETTINGS
@given(ENDPOINTS, oip_docs | json_values | deep, st.sampled_from(["", "/versions/1"]))
def test_oip_json(client, endpoint, doc, version):
    post(client, f"/v2/models/{endpoint}{version}/infer", as_json(doc), "application/json")


@SETTINGS
@given(ENDPOINTS, oip_docs, st.binary(max_size=200),
       st.integers(-5, 400) | st.text("0123456789-+.xe", min_size=1, max_size=4),
       st.lists(st.binary(max_size=12), max_size=4))
def test_oip_binary(client, endpoint, doc, raw, header_length, strings):
    head = as_json(doc).encode()
    # BYTES elements as the extension frames them, so valid frames are explored too
    framed = b"".join(struct.pack("<I", len(s)) + s for s in strings)
    for body, length in ((head + raw, str(len(head))), (head + framed, str(len(head))),
                         (head + raw, str(header_length))):
        post(client, f"/v2/models/{endpoint}/infer", body, "application/octet-stream",
             **{"inference-header-content-length": length})


@SETTINGS
@given(json_values | deep | st.lists(st.dictionaries(
    st.sampled_from(["inference_id", "label", "id", "zz"]), scalars, max_size=3), max_size=4),
    st.sampled_from(["application/json", "application/jsonlines"]))
def test_feedback(client, doc, ctype):
    body = as_json(doc)
    if ctype == "application/jsonlines" and isinstance(doc, list):
        body = "\n".join(as_json(d) for d in doc)
    post(client, "/endpoints/num/feedback", body, ctype)


event_fields = st.sampled_from(["features", "label", "time", "inference_id", "f0", "x", "zz"])


@SETTINGS
@given(json_values | deep | st.lists(st.dictionaries(event_fields, json_values, max_size=4),
                                     max_size=4),
       st.sampled_from(["application/json", "application/jsonlines"]),
       st.sampled_from(["events", "feedback"]))
def test_online_events(client, doc, ctype, route):
    body = as_json(doc)
    if ctype == "application/jsonlines" and isinstance(doc, list):
        body = "\n".join(as_json(d) for d in doc)
    post(client, f"/endpoints/onl/{route}", body, ctype)


@settings(SETTINGS, max_examples=40)  # an accepted body is a store commit: fewer examples
@given(json_values | deep | st.lists(st.dictionaries(event_fields, json_values, max_size=4),
                                     max_size=4),
       st.sampled_from(["application/json", "application/jsonlines"]),
       st.sampled_from(["orders", "bad name!", "x" * 200]))
def test_dataset_rows(client, doc, ctype, name):
    body = as_json(doc)
    if ctype == "application/jsonlines" and isinstance(doc, list):
        body = "\n".join(as_json(d) for d in doc)
    post(client, f"/datasets/{name}/rows", body, ctype)
