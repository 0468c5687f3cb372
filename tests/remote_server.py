"""A modelloop API server over a test's workspace, for the remote CLI (``--remote``, see
tests/conftest.py's ``cli`` fixture) and the remote SDK tests.

The server is the real app on a real loopback port (uvicorn, HTTP), run in a thread of the test's
process: a ``modelloop api serve`` subprocess would spend seconds importing for each test's
workspace; what crosses the wire is the same.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path


class ApiServer:
    """``modelloop api serve`` of the workspace at ``root`` in a thread; ``url`` and an admin
    ``token`` to reach it."""

    def __init__(self, root: str | Path):
        import uvicorn

        from modelloop.api.app import create_app
        from modelloop.workspace import Workspace

        self.ws = Workspace(root)
        self.token = _admin_token(self.ws)
        config = uvicorn.Config(create_app(self.ws), host="127.0.0.1", port=0,
                                log_level="warning", lifespan="off", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=f"api {root}", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the API server did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.ws.close()


def _admin_token(ws) -> str:
    """An admin token, hashed with argon2's lightest settings: each test's server makes one,
    and the default cost is a deliberate fraction of a second of both cores, twice (hash, then
    the server's first verification, which reads the cost from the hash)."""
    from argon2 import PasswordHasher

    from modelloop.access import tokens

    light = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    original = tokens._hasher
    tokens._hasher = lambda: light
    try:
        return ws.tokens.create("tests", role="admin")["token"]
    finally:
        tokens._hasher = original


class ApiServers:
    """One :class:`ApiServer` per workspace a test's commands name, closed with the test."""

    def __init__(self):
        self.servers: dict[Path, ApiServer] = {}

    def of(self, root: Path) -> ApiServer:
        root = Path(root).resolve()
        if root not in self.servers:
            self.servers[root] = ApiServer(root)
        return self.servers[root]

    def close(self) -> None:
        for server in self.servers.values():
            server.close()
        self.servers.clear()
