"""``modelloop up``: the controller, the endpoint server and the job workers in one process
tree with one log view; SIGTERM stops them all, in order, cleanly."""

from __future__ import annotations

import os
import re
import signal
import urllib.request

from tests.automation.processes import Command
from tests.foreground import alive, wait_for


def test_up_starts_everything_and_sigterm_stops_it_in_order(local_workspace):
    ws = local_workspace
    # a stream-fed dataset whose consumer ran once: up restarts it with its recorded options
    ws.datasets.append_rows("orders", [{"id": 0, "amount": 1.5}])
    ws.streams.consume("orders", every_rows=2, every_seconds=0.5, until_idle=True)
    up = Command(ws.root, "up", "--port", "0", "--interval", "0.3", "--lease-seconds", "30")
    try:
        served = up.wait_for_line("serving on http://")
        url = re.search(r"http://[0-9.]+:[0-9]+", served).group(0)
        with urllib.request.urlopen(f"{url}/v2/health/live", timeout=30) as response:
            assert response.status == 200
        up.wait_for_line("leading")
        ws.datasets.append_rows("orders", [{"id": 1, "amount": 2.5}, {"id": 2, "amount": 3.5}])
        wait_for(lambda: len(ws.datasets.versions("orders")) == 2)  # rows posted: a version
        pids = {m.group(1): int(m.group(2)) for ln in up.lines
                if (m := re.search(r"started ([\w:]+) \(pid (\d+)\)", ln))}
        assert set(pids) == {"controller", "serve", "stream:orders"}
        assert ws.store.get_lease("stream:orders:rows")["holder"].split(":")[1] == \
            str(pids["stream:orders"])
        assert ws.store.get_lease("controller")["holder"].split(":")[1] == str(pids["controller"])
    finally:
        code = up.stop(signal.SIGTERM)
    out = up.output
    assert code == 0, out
    lines = [ln.split("│", 1) for ln in out.splitlines() if "│" in ln]
    assert {name.strip() for name, _ in lines} >= {"up", "controller", "serve"}  # one view
    said = [text.strip() for name, text in lines if name.strip() == "up"]
    assert said.index("SIGTERM: stopping the controller, the server, the stream consumers, then the workers") < \
        said.index("stopping controller")
    assert said.index("controller stopped") < said.index("stopping serve")  # in order
    assert said.index("serve stopped") < said.index("stream:orders stopped") < \
        said.index("stopped")
    assert not any(alive(pid) for pid in pids.values())
    assert ws.store.get_lease("controller")["expired"]  # the controller let its lease go
    from modelloop.training import warm_workers

    # the job workers' server was asked to stop and is gone
    wait_for(lambda: not warm_workers.wait_ready(ws.config.state_dir, ws.root, limit=0.5))


def test_a_request_in_flight_at_sigterm_is_answered(local_workspace):
    """A client sends its request's headers and half its body, ``up`` gets SIGTERM, then the
    rest of the body arrives: the server, stopping, still answers it (uvicorn's graceful
    shutdown waits for requests under way, closing only idle connections)."""
    import json
    import socket

    from tests.serving.conftest import register_model, row

    ws = local_workspace
    ws.endpoints.create("churn", register_model(ws, "churn"))
    up = Command(ws.root, "up", "--port", "0", "--interval", "0.3")
    body = json.dumps(row(0, 3)).encode()
    request = (b"POST /endpoints/churn/invocations HTTP/1.1\r\nHost: x\r\n"
               b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
    try:
        served = up.wait_for_line("serving on http://")
        url = re.search(r"http://[0-9.]+:[0-9]+", served).group(0)
        host, port = url[7:].split(":")
        # "serving on" is said before the app has started: wait until it answers
        wait_for(lambda: _get(f"{url}/v2/health/live") == 200)
        with socket.create_connection((host, int(port)), timeout=60) as conn:
            conn.sendall(request + body)  # a whole request first: the connection is served
            assert _response(conn)[0] == b"HTTP/1.1 200 OK"
            conn.sendall(request + body[:10])  # then one that is under way
            assert _get(f"{url}/endpoints") == 200  # the server has read what was sent
            os.kill(up.pid, signal.SIGTERM)
            up.wait_for_line("stopping serve")  # the server is stopping now
            conn.sendall(body[10:])
            status, answer = _response(conn)
    finally:
        code = up.stop()
    assert code == 0, up.output
    assert status == b"HTTP/1.1 200 OK", answer
    assert len(json.loads(answer)["predictions"]) == 3


def _get(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except OSError:
        return None


def _response(conn) -> tuple[bytes, bytes]:
    """The status line and body of one HTTP/1.1 response with a content-length."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536) or b"!"
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: *([0-9]+)", head).group(1))
    while len(body) < length:
        body += conn.recv(65536) or b"!"
    return head.partition(b"\r\n")[0], body
