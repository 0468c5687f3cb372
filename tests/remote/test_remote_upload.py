"""A large file ingests through the API with bounded memory: the client streams it from disk, the
server streams the request body to a file, ingest reads it in blocks. The server's peak RSS while
it takes the file stays under 300 MB over its idle size.

The suite uploads MODELLOOP_TEST_UPLOAD_MB (default 16 MB); .ci/run runs the issue's 1 GB once
(MODELLOOP_TEST_UPLOAD_MB=1024). Measured on a loaded 2-core machine: 69 MB grew the server by
211 MB, 1,028 MB by 204 MB (idle 167 MB, peak 371 MB): the growth is the ingest's blocks, not
the file."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading

import numpy as np
import pandas as pd
import pytest
from tests.foreground import wait_for

MB = 1 << 20
#: The bound on the server's RSS growth the issue sets.
LIMIT = 300 * MB


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_csv(path, size: int) -> int:
    """A CSV of at least ``size`` bytes, written a block of rows at a time; its row count."""
    rng = np.random.default_rng(0)
    rows = 0
    with open(path, "w") as out:
        header = True
        while out.tell() < size:
            n = 200_000
            block = pd.DataFrame({
                "id": np.arange(rows, rows + n), "amount": rng.normal(100, 15, n).round(3),
                "score": rng.random(n).round(6), "kind": rng.choice(["a", "b", "c"], n),
                "label": rng.integers(0, 2, n),
            })
            block.to_csv(out, index=False, header=header)
            header, rows = False, rows + n
    return rows


class PeakRss:
    """The highest RSS of a process, sampled every 20 ms from another thread."""

    def __init__(self, pid: int):
        import psutil

        self.process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


@pytest.mark.slow
def test_a_large_upload_keeps_the_servers_memory_bounded(local_workspace, tmp_path):
    pytest.importorskip("psutil")
    import httpx

    from modelloop import Workspace

    size = int(os.environ.get("MODELLOOP_TEST_UPLOAD_MB", "16")) * MB
    csv = tmp_path / "big.csv"
    rows = _write_csv(csv, size)
    tokens = getattr(local_workspace, "tokens", None)
    token = tokens.create("upload", role="operator")["token"] if tokens is not None else None
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "modelloop", "-w", str(local_workspace.root), "api", "serve",
         "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        def up():
            assert server.poll() is None, server.stderr.read()
            try:
                return httpx.get(f"{url}/api/v1/openapi.json", timeout=5).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(up, 120)
        with Workspace.connect(url, token) as remote:
            remote.datasets.list()  # the routes warm: idle is a server that has answered
            import psutil

            idle = psutil.Process(server.pid).memory_info().rss
            with PeakRss(server.pid) as rss:
                report = remote.datasets.ingest("big", [csv])
        assert report.version.row_count == rows
        grown = rss.peak - idle
        print(f"upload of {csv.stat().st_size / MB:.0f} MB: server RSS idle {idle / MB:.0f} MB, "
              f"peak {rss.peak / MB:.0f} MB (+{grown / MB:.0f} MB)")
        assert grown < LIMIT, f"the server grew by {grown / MB:.0f} MB"
    finally:
        server.terminate()
        server.wait(30)
