"""The control-plane API server: every route in its OpenAPI document authenticates (missing,
wrong, expired, revoked and under-privileged tokens are 401/403 JSON), bad input is a 4xx naming
the field, uploads land as dataset versions, limits answer 413/422/429, docs are offline, TLS
works and a non-loopback address without authentication is refused. One app for the module."""

from __future__ import annotations

import ipaddress
import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher

from modelloop.access import tokens as T
from modelloop.api.app import PREFIX, create_app
from modelloop.api.limits import TokenBuckets
from modelloop.api.settings import ApiSettings, check_bind
from modelloop.errors import InvalidInput
from modelloop.remote.operations import OPERATIONS, ROLES

BODY_LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from fastapi.testclient import TestClient

    from modelloop import Workspace

    ws = Workspace.init(tmp_path_factory.mktemp("api") / "ws")
    with pytest.MonkeyPatch.context() as m:  # light hashes: the walk verifies hundreds of tokens
        m.setattr(T, "_hasher", lambda: PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
        made = {role: ws.tokens.create(role, role=role)["token"] for role in ROLES}
        made["revoked"] = ws.tokens.create("gone", role="admin")["token"]
        ws.tokens.revoke("gone")
        made["expiring"] = ws.tokens.create("brief", role="admin", expires="1h")["token"]
    settings = ApiSettings(rate_limit=1e6, rate_burst=10**6, max_body_bytes=BODY_LIMIT,
                           max_upload_bytes=1 << 20)  # fmt: skip
    app = create_app(ws, settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        client.tokens = made
        client.ws = ws
        client.app_ = app
        yield client
    ws.close()


def auth(token: str | None) -> dict:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _requests(doc: dict):
    """(method, url, role) of every operation of the document, path parameters filled."""
    for path, item in doc["paths"].items():
        for method, spec in item.items():
            url = path
            for p in spec.get("parameters", []):
                if p["in"] == "path":
                    value = "1" if p["schema"].get("type") == "integer" else "x"
                    url = url.replace("{" + p["name"] + "}", value)
            yield method.upper(), url, spec["x-role"], spec


def test_every_route_in_the_openapi_document_rejects_bad_tokens(server, monkeypatch):
    doc = server.get(f"{PREFIX}/openapi.json").json()
    routes = list(_requests(doc))
    assert len(routes) == len(OPERATIONS)  # the document is the table: no route left out
    later = datetime.now(UTC) + timedelta(hours=2)
    for method, url, role, spec in routes:
        assert spec["security"] == [{"HTTPBearer": []}], url
        body = {} if method in ("POST", "PUT") else None
        cases = {"missing": None, "wrong": f"ml_1_{'A' * 43}", "revoked": server.tokens["revoked"]}
        for case, token in cases.items():
            r = server.request(method, url, headers=auth(token), json=body)
            assert r.status_code == 401, (case, method, url, r.text)
            assert r.json()["error"]["type"] == "Unauthenticated"
        for lower in ROLES[: ROLES.index(role)]:
            r = server.request(method, url, headers=auth(server.tokens[lower]), json=body)
            assert r.status_code == 403, (lower, method, url, r.text)
            assert r.json()["error"]["type"] == "Forbidden" and role in r.json()["error"]["message"]
    with monkeypatch.context() as m:  # the same token two hours on: expired on every route
        m.setattr(T, "datetime", type("D", (), {"now": staticmethod(lambda tz=None: later)}))
        for method, url, _, _ in routes:
            r = server.request(method, url, headers=auth(server.tokens["expiring"]),
                               json={} if method in ("POST", "PUT") else None)  # fmt: skip
            assert r.status_code == 401 and r.json()["error"]["type"] == "Unauthenticated", url
    # a refused attempt at a mutating route is audited with who made it
    denied = server.ws.audit.list(actor="viewer", action="models.approve")
    assert denied and denied[0]["outcome"].startswith("error: Forbidden")


def test_bad_input_is_a_4xx_naming_the_field(server):
    op = auth(server.tokens["operator"])
    url = f"{PREFIX}/training/train"
    cases = [
        (
            dict(content=b'{"dataset": ', headers={**op, "content-type": "application/json"}),
            422,
            "body",
        ),
        (dict(json={"dataset": "d", "target": 3}, headers=op), 422, "target"),
        (dict(json={"dataset": "d", "target": "y", "seed": "many"}, headers=op), 422, "seed"),
        (dict(json={"dataset": "d", "target": "y", "colour": "red"}, headers=op), 422, "colour"),
        (dict(json={"target": "y"}, headers=op), 422, "dataset"),
        (dict(json={"dataset": "d" * BODY_LIMIT, "target": "y"}, headers=op), 413, "body"),
    ]
    for kwargs, status, field in cases:
        r = server.post(url, **kwargs)
        assert r.status_code == status, (kwargs.get("json"), r.text)
        assert r.json()["error"]["field"] == field, r.text
    viewer = auth(server.tokens["viewer"])
    r = server.get(f"{PREFIX}/datasets/nothing-here@1", headers=viewer)
    assert r.status_code == 404 and r.json()["error"]["type"] == "NotFound"
    r = server.get(f"{PREFIX}/jobs", params={"limit": 5000}, headers=viewer)
    assert r.status_code == 422 and r.json()["error"]["field"] == "limit"
    r = server.get(f"{PREFIX}/metrics/m", params={"dimensions": "{not json"}, headers=viewer)
    assert r.status_code == 422 and r.json()["error"]["field"] == "dimensions"
    r = server.get(f"{PREFIX}/trigger-firings/x", headers=viewer)
    assert r.status_code == 422 and r.json()["error"]["field"] == "firing_id"
    # what the document refuses is refused: a number for a time, text for an integer
    r = server.post(f"{PREFIX}/metrics", json={"name": "m", "value": 1, "time": 0}, headers=op)
    assert r.status_code == 422 and r.json()["error"]["field"] == "time", r.text
    r = server.post(url, json={"dataset": "d", "target": "y", "seed": "1"}, headers=op)
    assert r.status_code == 422 and r.json()["error"]["field"] == "seed", r.text
    r = server.get(f"{PREFIX}/jobs", params={"kind": "train", "colour": "red"}, headers=viewer)
    assert r.status_code == 422 and r.json()["error"]["field"] == "colour", r.text
    r = server.options(f"{PREFIX}/loops", headers=viewer)
    assert r.status_code == 405 and r.headers["allow"] == "GET, POST"
    r = server.get(f"{PREFIX}/no-such-route", headers=viewer)
    assert r.status_code == 404 and r.json()["error"]["type"] == "NotFound"
    assert f"{PREFIX}/no-such-route" in r.json()["error"]["message"], r.text


@pytest.mark.parametrize("name", ["..%2Fx", "a%2Fb", "..%2F..%2Fetc"])
def test_a_path_parameter_with_a_slash_is_a_4xx_naming_it(server, name):
    """``..%2Fx`` arrives as ``../x``: no route matches it, yet the mistake is the parameter's."""
    r = server.get(f"{PREFIX}/datasets/{name}/versions", headers=auth(server.tokens["viewer"]))
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["type"] == "InvalidInput" and error["field"] == "name", r.text


def test_an_upload_becomes_a_version_and_is_audited_once_with_its_actor(server):
    op, viewer = auth(server.tokens["operator"]), auth(server.tokens["viewer"])
    url = f"{PREFIX}/datasets/loans/ingest"
    r = server.post(url, params={"filename": "day1.csv"}, content=b"a,b\n1,2\n3,4\n5,6\n",
                    headers=op)  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["version"]["row_count"] == 3
    assert server.ws.datasets.get("loans@1").row_count == 3
    records = server.ws.audit.list(action="datasets.ingest", actor="operator")
    assert len(records) == 1 and records[0]["outcome"] == "ok"
    assert records[0]["arguments"]["paths"] == "day1.csv"  # the file's name, not a server path
    assert records[0]["source"] == "api" and records[0]["subject"] == "loans"
    # over the upload limit: 413, nothing ingested, nothing left behind
    r = server.post(url, params={"filename": "big.csv"}, content=b"a,b\n" + b"1,2\n" * 300_000,
                    headers=op)  # fmt: skip
    assert r.status_code == 413 and r.json()["error"]["type"] == "TooLarge"
    assert len(server.ws.datasets.versions("loans")) == 1
    refused = server.ws.audit.list(action="datasets.ingest", actor="operator")[0]
    assert refused["arguments"]["paths"] == "big.csv" and refused["outcome"].startswith("error")
    assert not any((server.ws.config.state_dir / "tmp" / "api").iterdir())
    r = server.post(url, params={"filename": "../x.csv"}, content=b"a,b\n1,2\n", headers=op)
    assert r.status_code == 200  # the name only: the path part is dropped
    r = server.get(f"{PREFIX}/datasets/loans@1/head", params={"n": 2}, headers=viewer)
    assert r.headers["content-type"] == "application/vnd.apache.arrow.stream"
    import pyarrow as pa

    assert pa.ipc.open_stream(r.content).read_all().num_rows == 2
    r = server.get(f"{PREFIX}/datasets/loans/versions", headers=viewer)
    assert [v["version"] for v in r.json()] == [1, 2] and r.headers["x-total-count"] == "2"


def test_rows_for_a_stream_fed_dataset_are_buffered_durably(server):
    op, viewer = auth(server.tokens["operator"]), auth(server.tokens["viewer"])
    rows = [{"order": i, "amount": i / 2} for i in range(3)]
    r = server.post(f"{PREFIX}/datasets/orders/rows", json={"rows": rows}, headers=op)
    assert r.status_code == 200, r.text
    assert r.json() == {"dataset": "orders", "rows": 3, "buffered_rows": 3}
    r = server.post(f"{PREFIX}/datasets/orders/rows", json={"rows": [1]}, headers=op)
    assert r.status_code == 422 and "rows" in r.text  # not objects
    assert server.post(f"{PREFIX}/datasets/orders/rows", json={"rows": rows},
                       headers=viewer).status_code == 403
    r = server.get(f"{PREFIX}/datasets/orders/stream", headers=viewer)
    assert r.json()["backlog"]["rows"] == 3 and r.json()["sources"] == []


def test_pages_are_capped_and_counted(server):
    admin = auth(server.tokens["admin"])
    everything = server.get(f"{PREFIX}/tokens", headers=admin).json()
    r = server.get(f"{PREFIX}/events", params={"limit": 1, "offset": 1}, headers=admin)
    assert r.status_code == 200 and len(r.json()) <= 1
    r = server.get(f"{PREFIX}/datasets", params={"limit": 1, "offset": 0}, headers=admin)
    assert r.status_code == 200 and len(r.json()) == 1 and r.headers["x-total-count"] == "1"
    assert len(everything) >= 3 and all("hash" not in t and "token" not in t for t in everything)


def test_a_token_over_its_rate_gets_429_with_retry_after(server):
    api = server.app_.state.api
    saved = api.buckets
    api.buckets = TokenBuckets(rate=0.5, burst=2, clock=lambda: 100.0)
    try:
        viewer = auth(server.tokens["viewer"])
        codes = [server.get(f"{PREFIX}/datasets", headers=viewer).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        r = server.get(f"{PREFIX}/datasets", headers=viewer)
        assert r.headers["retry-after"] == "2" and r.json()["error"]["type"] == "RateLimited"
        # another token has its own bucket
        assert server.get(f"{PREFIX}/datasets", headers=auth(server.tokens["admin"])).is_success
    finally:
        api.buckets = saved


def test_long_calls_do_not_take_every_thread():
    import anyio
    import anyio.to_thread

    from modelloop.api.limits import Threads

    async def app(scope, receive, send):
        return anyio.to_thread.current_default_thread_limiter().total_tokens

    async def main():
        return await Threads(app, total=200)({"type": "http"}, None, None)

    assert anyio.run(main) == 200  # not anyio's default 40, shared by every route's call


def test_docs_are_served_without_the_internet(server):
    page = server.get(f"{PREFIX}/docs")
    assert page.status_code == 200
    assert "cdn" not in page.text and "https://" not in page.text.replace(
        "https://swagger.io", ""
    )  # only its own files
    assert server.get(f"{PREFIX}/docs/static/swagger-ui-bundle.js").status_code == 200


def test_a_non_loopback_address_without_authentication_is_refused(server):
    check_bind(ApiSettings(auth="none", host="127.0.0.1"))
    check_bind(ApiSettings(auth="token", host="0.0.0.0"))
    with pytest.raises(InvalidInput, match="refusing") as err:
        check_bind(ApiSettings(auth="none", host="0.0.0.0"))
    assert 'auth = "token"' in err.value.hint and "modelloop token create" in err.value.hint


def test_the_cli_refuses_too(tmp_path):
    from tests.conftest import invoke_cli

    from modelloop import Workspace

    Workspace.init(tmp_path).close()
    with open(tmp_path / "modelloop.toml", "a") as fh:
        fh.write('\n[api]\nauth = "none"\n')
    r = invoke_cli("-w", str(tmp_path), "api", "serve", "--host", "0.0.0.0", check=False)
    assert r.code != 0 and "refusing to serve the API on 0.0.0.0" in r.err, r


def test_https_with_the_configured_certificate(server, tmp_path):
    import httpx

    from modelloop.api.server import build

    cert, key = _self_signed(tmp_path)
    settings = ApiSettings(port=0, tls_cert=str(cert), tls_key=str(key))
    uv, sock, url = build(server.ws, settings)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        assert url.startswith("https://127.0.0.1:")
        with httpx.Client(verify=_context(cert)) as http:
            for _ in range(500):  # until it listens
                try:
                    r = http.get(f"{url}{PREFIX}/datasets",
                                 headers=auth(server.tokens["viewer"]))  # fmt: skip
                    break
                except httpx.ConnectError:
                    threading.Event().wait(0.02)
        assert r.status_code == 200 and r.json()[0]["name"] == "loans"
        # the remote SDK checks the server's certificate against $MODELLOOP_CA_BUNDLE
        from modelloop import Workspace
        from modelloop.errors import ConfigError

        with pytest.MonkeyPatch.context() as m:
            m.setenv("MODELLOOP_CA_BUNDLE", str(cert))
            with Workspace.connect(url, server.tokens["viewer"]) as remote:
                assert remote.datasets.list()[0]["name"] == "loans"
        with Workspace.connect(url, server.tokens["viewer"]) as untrusting, pytest.raises(
                ConfigError, match="cannot reach"):  # the system's CAs do not know it
            untrusting.datasets.list()
    finally:
        uv.should_exit = True
        thread.join(10)


def _context(cert):
    import ssl

    ctx = ssl.create_default_context(cafile=str(cert))
    ctx.check_hostname = False
    return ctx


def _self_signed(folder):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=1)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([  # the address the client checks
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .sign(key, hashes.SHA256()))  # fmt: skip
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return cert_path, key_path


def test_settings_are_checked(tmp_path):
    from modelloop import Workspace

    ws = Workspace.init(tmp_path)
    try:
        ws.config.api = {"port": "many"}
        with pytest.raises(Exception, match=r"\[api\] port"):
            ApiSettings.from_config(ws.config)
        ws.config.api = {"tls_cert": "cert.pem"}
        with pytest.raises(Exception, match="go together"):
            ApiSettings.from_config(ws.config)
        ws.config.api = {"colour": 1}
        with pytest.raises(Exception, match="colour"):
            ApiSettings.from_config(ws.config)
    finally:
        ws.close()
    assert json.dumps(ApiSettings().model_dump())  # every default is plain data


def test_a_job_that_fails_is_a_4xx_naming_the_job_not_a_500(server, tmp_path):
    """The request was good and its job ran: a trainer that raised (the user's code) or a job
    cancelled is the job's outcome, told as JobFailed with its id and log, not a server error."""
    ws = server.ws
    if "failing" not in [d["name"] for d in ws.datasets.list()]:
        path = tmp_path / "failing.csv"
        path.write_text("a,b\n" + "".join(f"{i},{i % 2}\n" for i in range(40)))
        ws.datasets.ingest("failing", [str(path)])
    trainer = tmp_path / "raising.py"
    trainer.write_text("def fit(frame, target, params):\n    raise ValueError('this trainer refuses')\n")
    r = server.post(f"{PREFIX}/training/train", headers=auth(server.tokens["operator"]),
                    json={"dataset": "failing", "target": "b", "algorithm": f"{trainer}:fit"})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["type"] == "JobFailed" and "this trainer refuses" in error["message"]
    assert "modelloop jobs logs" in error["hint"]
