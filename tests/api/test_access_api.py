"""Tokens, the audit log and four-eyes approval through the control-plane API: a mutating call
is recorded once with its token as actor, the log is an admin's to read and nobody's to change,
and the API acts as the token (registered-by and approved-by name callers, not the server)."""

from __future__ import annotations

from argon2 import PasswordHasher

from modelloop.access import tokens as T
from modelloop.api.app import PREFIX, create_app
from modelloop.api.settings import ApiSettings
from modelloop.config import acting_as


def test_tokens_audit_and_four_eyes_over_http(tmp_path, monkeypatch):
    import pandas as pd
    from fastapi.testclient import TestClient
    from sklearn.dummy import DummyClassifier

    from modelloop import Workspace
    from modelloop.registry.package import save_package
    from modelloop.registry.signature import Signature

    monkeypatch.setattr(T, "_hasher", lambda: PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    ws = Workspace.init(tmp_path / "ws")
    with open(ws.root / "modelloop.toml", "a") as f:
        f.write("\n[registry]\nfour_eyes = true\n")
    ws = Workspace(ws.root)
    boss, ana, ci = (ws.tokens.create(n, role=r)["token"]
                     for n, r in (("boss", "admin"), ("ana", "admin"), ("ci", "operator")))  # fmt: skip
    X = pd.DataFrame({"x": [0.0, 1.0]})
    save_package(DummyClassifier().fit(X, [0, 1]), tmp_path / "pkg", signature=Signature.from_frame(X))
    with acting_as("boss"):  # as the API registers for token boss
        ws.models.register("m", tmp_path / "pkg")

    def h(token):
        return {"Authorization": f"Bearer {token}"}

    app = create_app(ws, ApiSettings(rate_limit=1e6, rate_burst=10**6))
    with TestClient(app, raise_server_exceptions=False) as client:
        made = client.post(f"{PREFIX}/tokens", headers=h(boss), json={"name": "bot", "role": "viewer"})
        assert made.status_code == 200, made.text
        assert made.json()["created_by"] == "boss" and made.json()["token"].startswith("ml_")
        own = client.post(f"{PREFIX}/models/m@1/approve", headers=h(boss), json={"reason": "mine"})
        assert own.status_code == 403 and "four_eyes" in own.json()["error"]["message"]
        other = client.post(f"{PREFIX}/models/m@1/approve", headers=h(ana), json={"reason": "ok"})
        assert other.status_code == 200 and other.json()["status_by"] == "ana", other.text
        assert client.get(f"{PREFIX}/audit", headers=h(ci)).status_code == 403
        records = client.get(f"{PREFIX}/audit", headers=h(ana), params={"source": "api"}).json()
        mine = client.get(f"{PREFIX}/audit", headers=h(ana), params={"actor": "boss"}).json()
        assert [r["id"] for r in mine] == [r["id"] for r in records if r["actor"] == "boss"]
        for method in ("PUT", "PATCH", "DELETE"):
            assert client.request(method, f"{PREFIX}/audit", headers=h(ana)).status_code in (404, 405)
    assert [(r["actor"], r["action"], r["outcome"][:16]) for r in records] == [
        ("ana", "models.approve", "ok"),
        ("boss", "models.approve", "error: Forbidden"),
        ("boss", "tokens.create", "ok"),
    ]
    assert {r["actor_kind"] for r in records} == {"token"} and "ml_" not in str(records)
    assert records[-1]["arguments"]["name"] == "bot"
    ws.close()

