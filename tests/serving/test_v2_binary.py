"""The Open Inference Protocol's binary tensor data extension, driven by Triton's own unmodified
v2 client library (``tritonclient[http]``) against a real ``modelloop serve``."""

from __future__ import annotations

import json
import struct

import httpx
import numpy as np
import pandas as pd
import pytest
from tests.serving.conftest import FEATURES, register_model, row
from tests.serving.test_protocols import MIXED, MIXED_ROWS, kinds  # noqa: F401 (fixture)

httpclient = pytest.importorskip("tritonclient.http")


@pytest.fixture(scope="module")
def numeric(tmp_path_factory):
    """A server with one numeric classifier endpoint ``churn``: (server, loaded model)."""
    from tests.serving.conftest import Server

    from modelloop import Workspace

    ws = Workspace.init(tmp_path_factory.mktemp("binary") / "ws")
    ref = register_model(ws)
    if ws.store.get_model_version(*ws.models.resolve(ref)).get("status") != "approved":
        ws.models.approve(ref, reason="test model")
    ws.endpoints.create("churn", ref)
    server = Server(ws.root)
    try:
        server.wait_for("churn")
        yield server, ws.models.load(ref)
    finally:
        server.stop()
        ws.close()


def client_for(server):
    return httpclient.InferenceServerClient(url=f"127.0.0.1:{server.port}")


def test_tritonclient_binary_inputs_and_outputs(numeric):
    server, model = numeric
    client = client_for(server)
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("churn")
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    rows = np.asarray(row(7, 4))
    frame = pd.DataFrame(rows, columns=FEATURES)
    x = httpclient.InferInput("input-0", list(rows.shape), "FP64")
    x.set_data_from_numpy(rows, binary_data=True)
    outputs = [httpclient.InferRequestedOutput("predict", binary_data=True),
               httpclient.InferRequestedOutput("predict_proba", binary_data=True)]
    result = client.infer("churn", inputs=[x], outputs=outputs)
    assert result.as_numpy("predict").tolist() == model.predict(frame).tolist()
    assert result.as_numpy("predict").dtype == np.int64
    assert np.allclose(result.as_numpy("predict_proba"), model.predict_proba(frame))
    # no outputs named: the client asks for every output in binary (binary_data_output)
    result = client.infer("churn", inputs=[x], model_version="1")
    assert result.as_numpy("predict").tolist() == model.predict(frame).tolist()
    # JSON inputs, binary FP32 inputs, JSON outputs: every mix works
    x32 = httpclient.InferInput("input-0", list(rows.shape), "FP32")
    x32.set_data_from_numpy(rows.astype(np.float32), binary_data=False)
    result = client.infer("churn", inputs=[x32],
                          outputs=[httpclient.InferRequestedOutput("predict", binary_data=False)])
    assert result.as_numpy("predict").tolist() == model.predict(
        pd.DataFrame(rows.astype(np.float32).astype(float), columns=FEATURES)).tolist()


def test_tritonclient_bytes_tensors_per_column(kinds):  # noqa: F811 (the imported fixture)
    """Text columns travel as BYTES (4-byte little-endian length, then the bytes); string
    labels come back the same way, and the metadata says BYTES."""
    server, models = kinds
    client = client_for(server)
    meta = client.get_model_metadata("strlab")
    assert meta["outputs"][0] == {"name": "predict", "datatype": "BYTES", "shape": [-1]}
    cols = list(zip(*MIXED_ROWS, strict=True))
    inputs = []
    for name, datatype, values in [("age", "INT64", np.asarray(cols[0], dtype=np.int64)),
                                   ("plan", "BYTES", np.asarray([v.encode() for v in cols[1]],
                                                                dtype=object)),
                                   ("spend", "FP64", np.asarray(cols[2], dtype=np.float64))]:
        t = httpclient.InferInput(name, [len(values)], datatype)
        t.set_data_from_numpy(values, binary_data=True)
        inputs.append(t)
    frame = pd.DataFrame(MIXED_ROWS, columns=MIXED)
    for endpoint in ("strlab", "intlab", "reg"):
        result = client.infer(endpoint, inputs=inputs)
        got = result.as_numpy("predict")
        want = models[endpoint].predict(frame)
        if endpoint == "strlab":
            assert [v.decode() for v in got] == want.tolist()
        else:
            assert got.tolist() == pytest.approx(want.tolist())
        output = result.get_output("predict")
        assert output["datatype"] == client.get_model_metadata(endpoint)["outputs"][0][
            "datatype"]
        assert "binary_data_size" in output["parameters"]


def _binary_request(tensors: list[tuple[str, list, str, bytes]], **extra) -> tuple[bytes, dict]:
    head = json.dumps({"inputs": [
        {"name": n, "shape": s, "datatype": d, "parameters": {"binary_data_size": len(raw)}}
        for n, s, d, raw in tensors], **extra}).encode()
    return head + b"".join(t[3] for t in tensors), {
        "Inference-Header-Content-Length": str(len(head)),
        "Content-Type": "application/octet-stream"}


def test_malformed_binary_requests_are_400(numeric):
    server, _ = numeric
    url = server.url + "/v2/models/churn/infer"
    good = np.asarray(row(1, 2), dtype="<f8").tobytes()
    cases = [
        (_binary_request([("x", [2, 5], "FP64", good[:-8])]), "are not 10 FP64 values"),
        (_binary_request([("x", [2, 5], "FP64", good + b"12345678")]), "are not 10 FP64"),
        (_binary_request([("x", [2], "BYTES", struct.pack("<I", 99) + b"ab")]),
         "runs past its data"),
        (_binary_request([("x", [1], "BYTES", b"\x01\x00")]), "inside a length prefix"),
        (_binary_request([("x", [1], "BYTES", struct.pack("<I", 2) + b"\xff\xfe")]),
         "not UTF-8"),
    ]
    body, headers = _binary_request([("x", [2, 5], "FP64", good)])
    cases += [
        ((body + b"extra", headers), "no input's binary_data_size accounts for"),
        ((body, {**headers, "Inference-Header-Content-Length": "999999"}), "not a length"),
        ((body, {**headers, "Inference-Header-Content-Length": "-3"}), "not a length"),
        ((body, {**headers, "Inference-Header-Content-Length": "10"}), "not valid JSON"),
    ]
    for (content, hdrs), words in cases:
        r = httpx.post(url, content=content, headers=hdrs)
        assert r.status_code == 400, (words, r.text)
        assert words in r.json()["error"], (words, r.text)
    r = httpx.post(url, content=body, headers=headers)
    assert r.status_code == 200 and r.json()["outputs"][0]["shape"] == [2]
