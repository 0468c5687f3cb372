"""``modelloop ui`` and ``modelloop api serve`` serve the API with the console at ``/ui/``
(the server itself is stubbed: what is checked is the app they would serve)."""

from __future__ import annotations

import pytest
from tests.conftest import invoke_cli


@pytest.mark.parametrize("command", [["ui"], ["api", "serve"]])
def test_the_server_commands_mount_the_console(command, tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from modelloop import Workspace
    from modelloop.api import server

    Workspace.init(tmp_path / "ws").close()
    served = {}
    monkeypatch.setattr(server, "serve", lambda ws, settings, **kw: served.update(kw, ws=ws))
    invoke_cli("-w", str(tmp_path / "ws"), *command, "--port", "0")
    assert served["console"] == "/ui"
    client = TestClient(served["app"])
    assert "js/main.js" in client.get("/ui/").text
    assert client.get("/ui/session").json() == {"name": None, "role": None,
                                                 "roles": ["viewer", "operator", "admin"],
                                                 "anonymous": False}  # fmt: skip
    assert client.get("/api/v1/models").status_code == 401  # the API, with its authentication
    served["ws"].close()


def test_without_authentication_the_console_signs_in_as_the_local_admin(tmp_path):
    """``[api] auth = "none"`` (loopback only): no sign-in page, the caller is the local admin."""
    from fastapi.testclient import TestClient

    from modelloop import Workspace
    from modelloop.api.settings import ApiSettings
    from modelloop.ui.app import create_app

    with Workspace.init(tmp_path / "ws") as ws:
        client = TestClient(create_app(ws, ApiSettings(auth="none")))
        who = client.get("/ui/session").json()
        assert who["role"] == "admin" and who["anonymous"] is True
