"""Server settings shared by single-process and worker servers."""

from __future__ import annotations

import sys

from modelloop.serving.connections import GuardedHttpToolsProtocol, uvicorn_options


def test_uvloop_only_where_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "uvloop", None)  # as if not installed: import fails
    options = uvicorn_options()
    assert options["loop"] == "asyncio"
    assert options["http"] is GuardedHttpToolsProtocol and options["access_log"] is False


def test_uvloop_when_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "uvloop", type(sys)("uvloop"))
    assert uvicorn_options()["loop"] == "uvloop"


def test_idle_connections_outlive_a_load_balancers_idle_timeout():
    """A proxy reuses an idle connection for up to its idle timeout (AWS ALB: 60 s); a server
    that closes it sooner races the proxy's next request, which then gets no answer (seen in
    the suite under load as 'Server disconnected without sending a response')."""
    assert uvicorn_options()["timeout_keep_alive"] > 60
