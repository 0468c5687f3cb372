"""Endpoint figures as metric series, alarms on them, and rollouts that watch named alarms."""

from __future__ import annotations

import threading
import time

import httpx
from tests.serving.conftest import register_model, row


class Traffic:
    """One client posting to ``url`` until stopped (and at most ``limit`` seconds)."""

    def __init__(self, url: str, limit: float = 180, **headers):
        self.codes: list[int] = []
        self.stop = threading.Event()
        deadline = time.monotonic() + limit

        def run():
            with httpx.Client(timeout=30) as client:
                while not self.stop.is_set() and time.monotonic() < deadline:
                    self.codes.append(client.post(url, json=row(len(self.codes)),
                                                  headers=headers).status_code)
                    time.sleep(0.01)

        self.thread = threading.Thread(target=run)
        self.thread.start()

    def end(self) -> None:
        self.stop.set()
        self.thread.join()


def _until_state(ws, alarm: str, state: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = ws.monitoring.alarms.evaluate(alarm)[0]
        if result["state"] == state:
            return result
        time.sleep(0.5)
    raise AssertionError(f"alarm {alarm} never reached {state}: {result}")


def test_alarm_on_the_5xx_rate_of_a_failing_variant(local_workspace, serve, cli):
    ws = local_workspace
    good, bad = register_model(ws, "clf"), register_model(ws, "clf", kind="broken")
    ws.endpoints.create("ep", variants=[{"name": "good", "model": good, "weight": 50},
                                        {"name": "bad", "model": bad, "weight": 50}])
    env = {"MODELLOOP_HOME": str(ws.root)}
    for variant in ("good", "bad"):
        cli("alarms", "create", f"{variant}-errors", "--metric", "endpoint.5xx_rate",
            "--dim", "endpoint=ep", "--dim", f"variant={variant}", "--threshold", "0.5",
            "--period", "60", env=env)
    s = serve(ws, "--metrics-interval", "1")
    s.wait_for("ep")
    traffic = Traffic(s.url + "/endpoints/ep/invocations")
    try:
        fired = _until_state(ws, "bad-errors", "ALARM")
        good_state = _until_state(ws, "good-errors", "OK")
    finally:
        traffic.end()
    assert 200 in traffic.codes and 424 in traffic.codes
    assert fired["datapoints"][-1] == 1.0  # every request to the bad variant failed
    assert good_state["datapoints"][-1] == 0.0
    # the other series are there too, per variant
    names = {(p["name"], p["dimensions"]["variant"]) for p in ws.monitoring.metric_series(
        "endpoint.")}
    assert {("endpoint.invocations", "good"), ("endpoint.model_latency_p99_ms", "good"),
            ("endpoint.4xx_rate", "bad")} <= names
    s.stop()  # shutdown writes the last interval: the counts add up to what was served
    total = sum(p["value"] for v in ("good", "bad")
                for p in ws.monitoring.metric("endpoint.invocations",
                                              {"endpoint": "ep", "variant": v}))
    assert total == len(traffic.codes)


def test_a_rollout_rolls_back_when_its_named_alarm_fires(local_workspace, serve, cli):
    ws = local_workspace
    good, bad = register_model(ws, "clf"), register_model(ws, "clf", kind="broken")
    ws.endpoints.create("ep", good)
    env = {"MODELLOOP_HOME": str(ws.root)}
    bad_variant = "clf-v2"  # the variant name a deploy gives clf@2
    assert bad.endswith("@2")
    cli("alarms", "create", "canary-errors", "--metric", "endpoint.5xx_rate", "--dim",
        "endpoint=ep", "--dim", f"variant={bad_variant}", "--threshold", "0.2", "--period",
        "60", env=env)
    unknown = cli("endpoint", "deploy", "ep", "--model", bad, "--alarm", "nope", env=env,
                  check=False)
    assert unknown.code == 1 and "nope" in unknown.err and "Traceback" not in unknown.err
    s = serve(ws, "--metrics-interval", "1")
    s.wait_for("ep")
    traffic = Traffic(s.url + "/endpoints/ep/invocations")
    try:
        # the built-in error-rate check is off (a rate never exceeds 1): only the alarm can act
        r = cli("endpoint", "deploy", "ep", "--model", bad, "--strategy", "canary",
                "--canary-percent", "50", "--bake", "120", "--max-error-rate", "1",
                "--alarm", "canary-errors", "--json", env=env, check=False)
    finally:
        traffic.end()
    assert r.code == 1, r
    assert r.json()["status"] == "rolled_back"
    assert r.json()["reason"].startswith("automatic rollback: alarm canary-errors is in ALARM")
    assert r.json()["state"]["checks"]["alarms"] == ["canary-errors"]
    assert 424 in traffic.codes
    assert [v["model"] for v in ws.endpoints.get("ep")["spec"]["variants"]] == [good]
