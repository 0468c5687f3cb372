"""Endpoint routes that need an API token (the endpoint's ``auth`` option), on a real server:
feedback and events need an operator's token by default, ``--auth token`` puts inference behind
a viewer's token, ``--auth none`` opens everything."""

from __future__ import annotations

import time

import httpx
import pytest
from tests.serving.conftest import FEATURES, Server, register_model, row


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from modelloop import Workspace

    ws = Workspace.init(tmp_path_factory.mktemp("auth") / "ws")
    ref = register_model(ws)
    ws.endpoints.create("open", ref)  # auth "feedback", the default
    ws.endpoints.create("demo", ref, options={"auth": "none"})
    tokens = {role: ws.tokens.create(role, role=role)["token"]
              for role in ("viewer", "operator")}  # fmt: skip
    s = Server(ws.root)
    for name in ("open", "demo"):
        s.wait_for(name)
    # GET /endpoints, which wait_for reads, needs a token once an endpoint needs one
    ws.endpoints.create("locked", ref, options={"auth": "token"})
    headers = {"Authorization": f"Bearer {tokens['viewer']}"}
    deadline = time.monotonic() + 30
    while "locked" not in httpx.get(f"{s.url}/endpoints", headers=headers, timeout=10).json():
        assert time.monotonic() < deadline, "the server never served 'locked'"
        time.sleep(0.1)
    yield s, ws, tokens
    s.stop()
    ws.close()


def _post(s, path, token=None, **kw):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(f"{s.url}{path}", headers=headers, timeout=30, **kw)


def test_feedback_needs_an_operators_token_by_default(server):
    s, _, tokens = server
    label = {"inference_id": "x", "label": 1}
    assert _post(s, "/endpoints/open/invocations", json=row()).status_code == 200
    missing = _post(s, "/endpoints/open/feedback", json=label)
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    assert "needs an API token" in missing.json()["message"]
    wrong = _post(s, "/endpoints/open/feedback", "ml_1_" + "x" * 43, json=label)
    assert wrong.status_code == 401 and "not valid" in wrong.json()["message"]
    low = _post(s, "/endpoints/open/feedback", tokens["viewer"], json=label)
    assert low.status_code == 403 and "needs operator" in low.json()["message"]
    ok = _post(s, "/endpoints/open/feedback", tokens["operator"], json=label)
    assert ok.status_code == 200 and ok.json()["labels"] == 1
    assert _post(s, "/endpoints/demo/feedback", json=label).status_code == 200  # --auth none


def test_auth_token_puts_every_protocol_of_an_endpoint_behind_a_token(server):
    s, _, tokens = server
    v2 = {"inputs": [{"name": "x", "shape": [1, len(FEATURES)], "datatype": "FP64",
                      "data": row()[0]}]}  # fmt: skip
    mlflow = {"dataframe_split": {"columns": FEATURES, "data": row()}}
    for path, body in (("/endpoints/locked/invocations", row()),
                       ("/mlflow/locked/invocations", mlflow),
                       ("/v2/models/locked/infer", v2)):  # fmt: skip
        assert _post(s, path, json=body).status_code == 401, path
        assert _post(s, path, "Basic abc", json=body).status_code == 401, path
        assert _post(s, path, tokens["viewer"], json=body).status_code == 200, path
    assert httpx.get(f"{s.url}/v2/models/locked", timeout=30).status_code == 401
    for path in ("/endpoints", "/workers", "/metrics"):  # they tell of every endpoint
        assert httpx.get(f"{s.url}{path}", timeout=30).status_code == 401, path
        viewer = {"Authorization": f"Bearer {tokens['viewer']}"}
        assert httpx.get(f"{s.url}{path}", headers=viewer, timeout=30).status_code == 200, path
    for path in ("/v2/health/live", "/ping", "/v2"):  # health and server metadata: open
        assert httpx.get(f"{s.url}{path}", timeout=30).status_code == 200, path
    assert _post(s, "/endpoints/locked/feedback", tokens["viewer"], json=[]).status_code == 403
    assert _post(s, "/endpoints/nope/invocations", json=row()).status_code == 404  # as before


def test_the_auth_option_is_checked_and_shown(server, cli):
    _, ws, _ = server
    from modelloop.errors import InvalidInput

    with pytest.raises(InvalidInput, match="auth"):
        ws.endpoints.create("bad", "clf@1", options={"auth": "maybe"})
    out = cli("-w", ws.root, "endpoint", "update", "demo", "--auth", "token", "--json").json()
    assert out["spec"]["options"]["auth"] == "token"
    assert "tokens: every route" in cli("-w", ws.root, "endpoint", "show", "demo").out
    assert "tokens: feedback and events" in cli("-w", ws.root, "endpoint", "show", "open").out
    bad = cli("-w", ws.root, "endpoint", "update", "demo", "--auth", "maybe", check=False)
    assert bad.code == 2 and "--auth" in bad.err
