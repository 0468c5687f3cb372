"""Worker processes of ``modelloop serve``: fixed and autoscaled, under real loopback traffic."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from tests.serving.conftest import register_model, row


def _workers(server) -> dict:
    return httpx.get(server.url + "/workers", timeout=5).json()


def _wait(server, predicate, timeout: float = 90) -> dict:
    """Poll /workers until ``predicate`` holds (a bounded wait, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        report = _workers(server)
        if predicate(report):
            return report
        time.sleep(0.2)
    raise AssertionError(f"workers never reached the expected state: {_workers(server)}")


def _serving(report) -> list[dict]:
    return [w for w in report["workers"] if w["state"] == "serving"]


class Load:
    """``n`` client threads posting until stopped (each stops by itself after ``limit`` s)."""

    def __init__(self, url: str, n: int, limit: float = 120):
        self.codes: list[int] = []
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.deadline = time.monotonic() + limit
        self.threads = [threading.Thread(target=self._run, args=(url, i)) for i in range(n)]
        for t in self.threads:
            t.start()

    def _run(self, url: str, i: int) -> None:
        with httpx.Client(timeout=30) as client:
            while not self.stop.is_set() and time.monotonic() < self.deadline:
                try:
                    self.codes.append(client.post(url, json=row(i)).status_code)
                except httpx.HTTPError as exc:  # a dropped connection is a failed request
                    self.errors.append(f"{type(exc).__name__}: {exc}")

    def end(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join()


def test_fixed_workers_share_the_socket(local_workspace, serve):
    ws = local_workspace
    ws.endpoints.create("ep", register_model(ws))
    s = serve(ws, "--workers", "2")
    report = _wait(s, lambda r: len(_serving(r)) == 2)
    assert report["mode"] == "fixed"
    pids = {w["pid"] for w in report["workers"]}
    assert len(pids) == 2 and report["parent_pid"] not in pids
    s.wait_for("ep")
    # each connection is one client; the kernel spreads them over both workers
    answered_by = set()
    for i in range(40):
        with httpx.Client() as client:
            assert client.post(s.url + "/endpoints/ep/invocations", json=row(i)).status_code == 200
            answered_by.add(client.get(s.url + "/workers").json()["pid"])
        if answered_by == pids:
            break
    assert answered_by == pids


@pytest.mark.slow
def test_autoscaled_server_scales_out_under_load_and_back_in(local_workspace, serve):
    ws = local_workspace
    ws.endpoints.create("ep", register_model(ws, kind="forest"))
    s = serve(ws, "--max-workers", "3", "--target-inflight", "1", "--scale-out-cooldown", "1",
              "--scale-in-cooldown", "3")
    s.wait_for("ep")
    report = _wait(s, lambda r: len(_serving(r)) == 1)
    assert report["mode"] == "autoscaled" and report["max_workers"] == 3
    first = report["workers"][0]["pid"]
    url = s.url + "/endpoints/ep/invocations"

    heavy = Load(url, 8)
    try:
        out = _wait(s, lambda r: len(_serving(r)) >= 2 and r["scale_outs"] >= 1)
        # the new workers take traffic too
        busy = _wait(s, lambda r: sum(1 for w in _serving(r) if w["requests"] > 0) >= 2)
    finally:
        heavy.end()
    assert first in {w["pid"] for w in out["workers"]}
    assert len({w["pid"] for w in busy["workers"]}) >= 2

    light = Load(url, 1)  # scale-in happens while a client keeps sending
    try:
        back = _wait(s, lambda r: len(r["workers"]) == 1 and r["scale_ins"] >= 1)
    finally:
        light.end()
    assert back["workers"][0]["state"] == "serving"
    codes = heavy.codes + light.codes
    assert heavy.errors == [] and light.errors == []
    assert len(light.codes) > 0 and set(codes) == {200}, {c: codes.count(c) for c in set(codes)}
    assert set(ws.endpoints.stats("ep")[0]) and ws.endpoints.stats("ep")[0]["errors_5xx"] == 0


def test_single_process_reports_itself(local_workspace, serve):
    s = serve(local_workspace)
    report = _workers(s)
    assert report["mode"] == "single" and [w["pid"] for w in report["workers"]] == [report["pid"]]


@pytest.mark.parametrize("flags, message", [
    (("--workers", "2", "--max-workers", "3"), "not both"),
    (("--workers", "0"), "--workers"),
    (("--max-workers", "2", "--min-workers", "3"), "--max-workers"),
    (("--max-workers", "2", "--target-inflight", "0"), "--target-inflight"),
    (("--target-inflight", "2"), "need --max-workers"),
])
def test_worker_flags_are_checked(local_workspace, cli, flags, message):
    r = cli("serve", *flags, env={"MODELLOOP_HOME": str(local_workspace.root)}, check=False)
    assert r.code == 2 and message in r.err and "Traceback" not in r.err
