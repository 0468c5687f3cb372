"""Bad requests get the right status and a message naming what is wrong and the fix."""

from __future__ import annotations

import json
from pathlib import Path

import botocore.exceptions
import httpx
import pytest
from tests.serving.conftest import FEATURES, register_model, row
from tests.serving.test_protocols import sagemaker


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server for the module's read-only tests: ``churn`` (0.01 MB payloads) and ``broken``
    (every predict raises)."""
    from tests.serving.conftest import Server

    from modelloop import Workspace

    ws = Workspace.init(tmp_path_factory.mktemp("bad-input") / "ws")
    ws.endpoints.create("churn", register_model(ws), options={"max_payload_mb": 0.01,
                                                              "auth": "none"})
    ws.endpoints.create("broken", register_model(ws, "bad", kind="broken"))
    s = Server(ws.root)
    try:
        s.wait_for("churn")
        s.wait_for("broken")
        yield s
    finally:
        s.stop()
        ws.close()


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
    assert r.code == 1 and "capture sampling 150" in r.err and "100" in r.err
    r = cli("endpoint", "deploy", "e1", "--model", ref, "--strategy", "canary",
            "--canary-percent", "0", env=env, check=False)
    assert r.code == 1 and "canary_percent 0" in r.err and r.err.count("\n") == 1


# -- one server for the request-hardening tests ---------------------------------------------------
@pytest.fixture(scope="module")
def hardened(tmp_path_factory):
    """One server (header deadline 1.5 s) with a numeric endpoint ``churn``, a mixed-type one
    ``mixed`` and ``tight`` (10 rows, 10 kB and 2 s per request)."""
    import os

    from tests.serving.conftest import Server
    from tests.serving.test_protocols import register_mixed

    from modelloop import Workspace

    ws = Workspace.init(tmp_path_factory.mktemp("hardened") / "ws")
    churn = register_model(ws)
    if _pending(ws, churn):
        ws.models.approve(churn, reason="test model")
    ws.endpoints.create("churn", churn, options={"auth": "none"})  # feedback without a token
    ws.endpoints.create("mixed", register_mixed(ws, "mixed"))
    ws.endpoints.create("tight", churn, options={"max_request_rows": 10, "max_payload_mb": 0.01,
                                                 "timeout_seconds": 2})
    os.environ["MODELLOOP_SERVE_HEADER_TIMEOUT"] = "1.5"
    try:
        server = Server(ws.root)
    finally:
        os.environ.pop("MODELLOOP_SERVE_HEADER_TIMEOUT")
    try:
        for name in ("churn", "mixed", "tight"):
            server.wait_for(name)
        yield server
    finally:
        server.stop()
        ws.close()


def _pending(ws, ref: str) -> bool:
    name, version = ws.models.resolve(ref)
    return ws.store.get_model_version(name, version).get("status") != "approved"


MIXED_ROW = [34, "basic", 41.5]


def _post(server, path: str, body, ctype: str = "application/json", **headers):
    content = body if isinstance(body, bytes) else (
        body.encode() if isinstance(body, str) else json.dumps(body).encode())
    return httpx.post(server.url + path, content=content,
                      headers={"content-type": ctype, **headers}, timeout=60)


def _message(r) -> str:
    body = r.json()
    return body.get("message") or body.get("error") or ""


def test_ragged_rows_and_columns_are_400_naming_the_row(hardened):
    """Never padded with nulls, never cut to the shortest: the request is refused."""
    ok, short, long_ = MIXED_ROW, MIXED_ROW[:2], MIXED_ROW + [1]
    cases = [
        ("/endpoints/mixed/invocations", {"instances": [ok, short]}, "row 1 has 2 values"),
        ("/endpoints/mixed/invocations", [ok, long_], "row 1 has 4 values"),
        ("/endpoints/mixed/invocations", "34,basic,41.5\n61,pro", "row 1 has 2 values"),
        ("/endpoints/churn/invocations", "1,2,3,4,5\n1,2,3", "row 1 has 3 values"),
        ("/mlflow/mixed/invocations", {"dataframe_split": {
            "columns": ["age", "plan", "spend"], "data": [ok, short]}}, "row 1 has 2 values"),
        ("/mlflow/mixed/invocations", {"inputs": {"age": [1, 2, 3], "plan": ["basic"],
                                                  "spend": [1, 2, 3]}},
         "column 'plan' has 1 values"),
        ("/mlflow/mixed/invocations", {"age": [1, 2, 3], "plan": ["basic"] * 3,
                                       "spend": [1.0]}, "column 'spend' has 1 values"),
        ("/mlflow/mixed/invocations", {"dataframe_records": [
            {"age": 1, "plan": "pro", "spend": 2.0}, {"age": 1, "plan": "pro"}]},
         "record 1 has no 'spend'"),
        ("/mlflow/mixed/invocations", {"dataframe_records": [
            {"age": 1, "plan": "pro", "spend": 2.0},
            {"age": 1, "plan": "pro", "spend": 2.0, "zz": 1}]}, "record 1 has 'zz'"),
        ("/mlflow/mixed/invocations", {"dataframe_records": [
            {"age": 1, "plan": "pro", "spend": 2.0}, 5]}, "record 1 is a number"),
        ("/v2/models/mixed/infer", {"inputs": [
            {"name": "age", "shape": [2], "datatype": "INT64", "data": [1, 2]},
            {"name": "plan", "shape": [1], "datatype": "BYTES", "data": ["pro"]},
            {"name": "spend", "shape": [2], "datatype": "FP64", "data": [1.0, 2.0]}]},
         "input 'plan' has 1 rows"),
        ("/v2/models/churn/infer", {"inputs": [
            {"name": "x", "shape": [2, 5], "datatype": "FP64", "data": [1, 2, 3, 4, 5, 6]}]},
         "'data' holds 6"),
    ]
    for path, body, words in cases:
        ctype = "text/csv" if isinstance(body, str) else "application/json"
        r = _post(hardened, path, body, ctype)
        assert r.status_code == 400, (path, body, r.status_code, r.text)
        assert words in _message(r), (words, r.text)
    # the same rows, well formed, are answered
    r = _post(hardened, "/endpoints/mixed/invocations", {"instances": [ok, ok]})
    assert r.status_code == 200 and len(r.json()["predictions"]) == 2


DEEP = "[" * 5000 + "]" * 5000



def test_infinite_values_in_an_integer_column_are_400(hardened):
    """Found by the fuzz test: 'INF' in the integer column ``age`` was cast to int64 and
    answered 500. Every protocol now refuses it naming the column."""
    cases = [
        ("/endpoints/mixed/invocations", "INF,basic,41.5\n", "text/csv"),
        ("/endpoints/mixed/invocations", "-inf,pro,3\n34,basic,41.5\n", "text/csv"),
        ("/mlflow/mixed/invocations", "age,plan,spend\ninf,basic,41.5\n", "text/csv"),
        ("/mlflow/mixed/invocations",
         {"dataframe_split": {"columns": ["age", "plan", "spend"],
                              "data": [["inf", "basic", 41.5]]}}, "application/json"),
    ]
    for path, body, ctype in cases:
        r = _post(hardened, path, body, ctype)
        assert r.status_code == 400, (path, body, r.status_code, r.text)
        assert "age" in _message(r) and "whole numbers" in _message(r), r.text

def test_malformed_requests_are_4xx_naming_the_problem(hardened):
    five = [1, 2, 3, 4, 5]
    oip = "/v2/models/churn/infer"
    cases = [
        # nested ~5,000 levels, every protocol and the feedback route
        ("/endpoints/churn/invocations", DEEP, "application/json", "nested too deeply"),
        ("/endpoints/churn/invocations", DEEP, "application/jsonlines", "nested too deeply"),
        ("/mlflow/churn/invocations", '{"instances": ' + DEEP + "}", "application/json",
         "nested too deeply"),
        (oip, '{"inputs": ' + DEEP + "}", "application/json", "nested too deeply"),
        ("/endpoints/churn/feedback", DEEP, "application/json", "nested too deeply"),
        ("/endpoints/churn/feedback", DEEP, "application/jsonlines", "nested too deeply"),
        # wrong shapes of the documents
        ("/mlflow/churn/invocations", {"dataframe_split": {"columns": 5, "data": [five]}},
         "application/json", "'columns' must be a list"),
        ("/mlflow/churn/invocations", {"dataframe_split": {"columns": ["f0"], "data": None}},
         "application/json", "'data' must be a non-empty list"),
        ("/mlflow/churn/invocations", {"columns": 5, "data": [five]}, "application/json",
         "'columns' must be a list"),
        ("/mlflow/churn/invocations", {"instances": five, "params": 3}, "application/json",
         "'params' must be an object"),
        ("/endpoints/churn/invocations", b'{"features": [1,2,3,4,5]}\n\xff\xfe\n',
         "application/jsonlines", "not UTF-8"),
        ("/endpoints/churn/invocations", b"1,2,3,4,\xff", "text/csv", "not UTF-8"),
        ("/endpoints/churn/invocations", "1,2,3,4,5", "text/csv; header=maybe",
         "header='maybe'"),
        ("/endpoints/churn/feedback", b'{"inference_id": "a"}\n\xff\n', "application/jsonlines",
         "not UTF-8"),
        ("/endpoints/churn/feedback", "5", "application/json", "list of objects"),
        # the Open Inference Protocol's tensors
        (oip, {"inputs": [{"name": "x", "shape": [1, 9.0], "datatype": "FP64", "data": five}]},
         "application/json", "shape [1, 9.0]"),
        (oip, {"inputs": [{"name": "x", "shape": 9, "datatype": "FP64", "data": five}]},
         "application/json", "shape 9"),
        (oip, {"inputs": [{"name": "x", "shape": [1, -5], "datatype": "FP64", "data": five}]},
         "application/json", "shape [1, -5]"),
        (oip, {"inputs": [{"name": "x", "shape": [1, 5], "datatype": "FP64", "data": 5}]},
         "application/json", "'data' must be a list"),
        (oip, {"inputs": [{"name": "x", "shape": [1, 5], "datatype": "FP64", "data": five}],
               "outputs": ["predict"]}, "application/json", "must be an object with a name"),
        (oip, {"inputs": [{"name": "x", "shape": [1, 5], "datatype": "FP64", "data": five}],
               "outputs": [{"name": "explain"}]}, "application/json", "no output named"),
        (oip, {"inputs": [{"name": "x", "shape": [1, 5], "datatype": "FP99", "data": five}]},
         "application/json", "datatype 'FP99'"),
        (oip, {"inputs": [5]}, "application/json", "input 0 is a number"),
        (oip, [1, 2], "application/json", "must be a JSON object"),
        (oip, {"inputs": [{"name": "x", "shape": [1, 5], "datatype": "FP64",
                           "data": [[[1]], 2, 3, 4, 5]}]}, "application/json", "mixes lists and values"),
    ]
    for path, body, ctype, words in cases:
        r = _post(hardened, path, body, ctype)
        assert 400 <= r.status_code < 500, (path, str(body)[:80], r.status_code, r.text[:300])
        assert words in _message(r), (words, r.text[:300])
    # an error names the value without echoing a megabyte back
    r = _post(hardened, "/endpoints/churn/invocations", [[1, "x" * 100_000, 3, 4, 5]])
    assert r.status_code == 400 and "must be double, got 'xxx" in _message(r)
    assert len(r.text) < 500


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_shapes_and_rows_are_checked_before_anything_is_allocated(hardened):
    """An 83-byte tensor announcing 10 million rows grew the server by 0.8 GB."""
    before = _peak_rss_mb(hardened.proc.pid)
    for shape in ([10_000_000, 0], [30_000_000, 0], [100_001, 5], [100_001]):
        body = {"inputs": [{"name": "x", "shape": shape, "datatype": "FP64", "data": []}]}
        r = _post(hardened, "/v2/models/churn/infer", body)
        assert r.status_code in (400, 413), r.text
        assert "limit of 100000 rows" in r.json()["error"] or "holds no values" in \
            r.json()["error"], r.text
    assert _peak_rss_mb(hardened.proc.pid) - before < 100
    r = _post(hardened, "/v2/models/churn/infer", {"inputs": [
        {"name": "x", "shape": [100_001, 5], "datatype": "FP64", "data": []}]})
    assert r.status_code == 413 and "max_request_rows" in r.json()["error"]
    # every protocol caps rows, at the endpoint's own max_request_rows
    rows = row(0, 11)
    for path, body, ctype in [
        ("/endpoints/tight/invocations", {"instances": rows}, "application/json"),
        ("/endpoints/tight/invocations", "\n".join(",".join(map(str, r)) for r in rows),
         "text/csv"),
        ("/mlflow/tight/invocations", {"dataframe_split": {"columns": FEATURES, "data": rows}},
         "application/json"),
        ("/v2/models/tight/infer", {"inputs": [{"name": "x", "shape": [11, 5],
                                                "datatype": "FP64",
                                                "data": sum(rows, [])}]}, "application/json"),
    ]:
        r = _post(hardened, path, body, ctype)
        assert r.status_code == 413, (path, r.text)
        assert "11 rows, over the limit of 10 rows" in _message(r)
    assert _post(hardened, "/endpoints/tight/invocations", row(0, 10)).status_code == 200


def test_npy_header_is_checked_against_its_bytes(hardened):
    import io

    import numpy as np

    buf = io.BytesIO()
    np.save(buf, np.zeros((2, 5)))
    header_len = int.from_bytes(buf.getvalue()[8:10], "little")
    head = "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999, 5), }"
    head = head.ljust(header_len - 1) + "\n"
    lying = buf.getvalue()[:10] + head.encode() + buf.getvalue()[10 + header_len:]
    r = _post(hardened, "/endpoints/churn/invocations", lying, "application/x-npy")
    assert r.status_code == 400 and "not the 80 bytes that follow" in r.json()["message"]
    for arr in (np.float64(3.0), np.zeros((1, 5, 1)), np.zeros(2, dtype=[("a", "<f8")])):
        buf = io.BytesIO()
        np.save(buf, arr)
        r = _post(hardened, "/endpoints/churn/invocations", buf.getvalue(), "application/x-npy")
        assert r.status_code == 400 and "the .npy body holds an array" in r.json()["message"]


def _raw(server, data: bytes, *, then=None, timeout: float = 30) -> bytes:
    """Send raw bytes on a new connection and read until the server closes it."""
    import socket

    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as s:
        s.sendall(data)
        if then:
            then(s)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
        return out


def test_chunked_body_stops_at_the_limit(hardened):
    """A body without Content-Length is counted as it arrives: the 413 comes while the client
    is still sending (the body is never finished here), not after buffering all of it."""
    chunk = b"x" * 4096
    head = (b"POST /endpoints/tight/invocations HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(5))  # 20 kB, no end
    out = _raw(hardened, head + body)
    assert out.startswith(b"HTTP/1.1 413"), out[:200]
    assert b"over the 10485 byte limit" in out


def test_a_client_still_sending_an_oversized_body_reads_its_413(hardened):
    """The 413 goes out as soon as the headers say the body is too big; the server then reads
    and drops what the client is still sending before it closes (closing at once would reset
    the connection, and a client mid-send could lose the answer), and closes without waiting
    for the keep-alive timeout."""
    head = (b"POST /endpoints/tight/invocations HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 4000000\r\n\r\n")

    def keep_sending(s):
        for _ in range(30):  # 1.9 MB of the 4 MB announced, then the client stops
            s.sendall(b"1" * 65536)

    out = _raw(hardened, head, then=keep_sending)
    assert out.startswith(b"HTTP/1.1 413"), out[:200]
    assert b"over the 10485 byte limit" in out


def test_a_body_that_trickles_in_times_out(hardened):
    """Headers complete, body never finished: 408 after the endpoint's timeout_seconds."""
    head = (b"POST /endpoints/tight/invocations HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n[[1, 2")
    out = _raw(hardened, head)
    assert out.startswith(b"HTTP/1.1 408"), out[:200]
    assert b"did not arrive within 2 s" in out
    r = httpx.post(hardened.url + "/mlflow/tight/invocations", content=b"{",
                   headers={"content-type": "application/json"})
    assert r.json()["error_code"] == "BAD_REQUEST"


def test_header_size_is_capped(hardened):
    big = b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"
    assert _raw(hardened, big).startswith(b"HTTP/1.1 431")

    def trickle(s):  # a 1 MB header that never ends, in pieces
        for _ in range(16):
            try:
                s.sendall(b"b" * 65536)
            except OSError:
                return

    out = _raw(hardened, b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Big: ", then=trickle)
    assert out.startswith(b"HTTP/1.1 431"), out[:100]
    # ordinary headers pass
    assert httpx.get(hardened.url + "/ping", headers={"X-Small": "a" * 4000}).status_code == 200


def test_half_sent_headers_time_out(hardened):
    """Slowloris: a connection whose headers never finish is answered 408 and closed (the
    server under test has a 1.5 s header deadline); so is one that sends nothing."""
    out = _raw(hardened, b"POST /endpoints/churn/invocations HTTP/1.1\r\nHost: x\r\nX-A: 1")
    assert out.startswith(b"HTTP/1.1 408"), out[:100]
    assert _raw(hardened, b"").startswith(b"HTTP/1.1 408")
    # a keep-alive connection still serves a second request after the first one
    with httpx.Client(base_url=hardened.url) as client:
        assert client.get("/ping").status_code == 200
        assert client.get("/ping").status_code == 200
