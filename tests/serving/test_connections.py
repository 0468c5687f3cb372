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
