"""Routing, shadows, capture and rollouts, driven through a real server under real traffic."""

from __future__ import annotations

import threading

import httpx
import pytest
from tests.serving.conftest import register_model, row


def _post(url: str, rows, **headers) -> httpx.Response:
    return httpx.post(url, json={"instances": rows}, headers=headers, timeout=30)


def test_weights_split_traffic_and_routing_keys_stick(local_workspace, serve):
    ws = local_workspace
    a, b = register_model(ws, "a"), register_model(ws, "b", kind="constant")
    ws.endpoints.create("ep", variants=[{"name": "blue", "model": a, "weight": 70},
                                        {"name": "green", "model": b, "weight": 30}])
    s = serve(ws)
    s.wait_for("ep")
    url = s.url + "/endpoints/ep/invocations"
    n = 200
    with httpx.Client() as client:
        seen = [client.post(url, json=row(i)).headers["x-amzn-invoked-production-variant"]
                for i in range(n)]
        # 30% of 200: sd = sqrt(200*.3*.7) ~ 6.5; 5 sd either side is far from chance failure
        assert abs(seen.count("green") - 0.3 * n) < 5 * (n * 0.3 * 0.7) ** 0.5
        sticky = {k: client.post(url, json=row(0), headers={"x-modelloop-routing-key": k})
                  .headers["x-amzn-invoked-production-variant"] for k in map(str, range(50))}
        again = {k: client.post(url, json=row(0), headers={"x-modelloop-routing-key": k})
                 .headers["x-amzn-invoked-production-variant"] for k in sticky}
        assert sticky == again and set(sticky.values()) == {"blue", "green"}
    # moving weight towards green only moves users from blue to green, never back
    ws.endpoints.update("ep", weights={"blue": 40, "green": 60})
    s.wait_for("ep", lambda i: i["variants"]["green"]["weight"] == 60)
    with httpx.Client() as client:
        moved = {k: client.post(url, json=row(0), headers={"x-modelloop-routing-key": k})
                 .headers["x-amzn-invoked-production-variant"] for k in sticky}
    assert all(moved[k] == "green" for k, v in sticky.items() if v == "green")


def test_shadow_is_captured_and_never_returned(local_workspace, serve):
    ws = local_workspace
    a, b = register_model(ws, "a"), register_model(ws, "b", kind="constant")
    ws.endpoints.create("ep", variants=[{"name": "live", "model": a},
                                        {"name": "shadow", "model": b, "role": "shadow"}],
                        capture={"enabled": True, "sampling": 100, "mode": "both"})
    s = serve(ws)
    s.wait_for("ep")
    live_model = ws.models.load(a)
    import pandas as pd

    rows = row(7, 20)
    expected = live_model.predict(pd.DataFrame(rows, columns=live_model.signature.names))
    got = []
    for i, r in enumerate(rows):
        resp = _post(s.url + "/endpoints/ep/invocations", [r],
                     **{"X-Amzn-SageMaker-Inference-Id": f"req-{i}"})
        assert resp.headers["x-amzn-invoked-production-variant"] == "live"
        got.append(resp.json()["predictions"][0])
    assert got == expected.tolist()  # the constant shadow (always 1) never leaks
    s.stop()  # flushes capture
    records = ws.endpoints.capture("ep")
    shadow = [r for r in records if r["modelloop"]["shadow"]]
    live = [r for r in records if not r["modelloop"]["shadow"]]
    assert len(live) == 20 and len(shadow) == 20
    assert {r["eventMetadata"]["inferenceId"] for r in shadow} == {f"req-{i}" for i in range(20)}
    frame = ws.endpoints.capture("ep", variant="shadow", frame=True)
    assert set(frame["prediction"]) == {1} and {"proba_0", "proba_1", "f0"} <= set(frame.columns)
    assert str(frame["inference_time"].dtype).startswith("datetime64")


def test_canary_with_a_failing_model_rolls_back_with_the_reason(local_workspace, serve, cli):
    ws = local_workspace
    good = register_model(ws, "clf")
    bad = register_model(ws, "clf", kind="broken")
    ws.endpoints.create("ep", good)
    s = serve(ws)
    s.wait_for("ep")
    stop = threading.Event()
    codes: list[int] = []

    def traffic():
        with httpx.Client() as client:
            while not stop.is_set():
                codes.append(client.post(s.url + "/endpoints/ep/invocations",
                                         json=row(len(codes))).status_code)

    t = threading.Thread(target=traffic)
    t.start()
    try:
        r = cli("endpoint", "deploy", "ep", "--model", bad, "--strategy", "canary",
                "--canary-percent", "50", "--bake", "120", "--min-requests", "3", "--json",
                env={"MODELLOOP_HOME": str(ws.root)}, check=False)
    finally:
        stop.set()
        t.join()
    assert r.code == 1, r
    assert r.json()["status"] == "rolled_back"
    assert r.json()["reason"].startswith("automatic rollback: error rate")
    assert 424 in codes  # the canary did take traffic, and failed
    spec = ws.endpoints.get("ep")["spec"]
    assert [v["model"] for v in spec["variants"]] == [good]
    info = cli("endpoint", "show", "ep", "--json", env={"MODELLOOP_HOME": str(ws.root)}).json()
    assert info["rollouts"][0]["reason"].startswith("automatic rollback: error rate")


def test_ten_deploys_and_rollbacks_under_traffic_fail_no_request(local_workspace, serve):
    ws = local_workspace
    refs = [register_model(ws, "clf", seed=i) for i in range(3)]
    ws.endpoints.create("ep", refs[0])
    s = serve(ws)
    s.wait_for("ep")
    stop = threading.Event()
    results: list[int] = []

    def traffic():
        with httpx.Client() as client:
            while not stop.is_set():
                results.append(client.post(s.url + "/endpoints/ep/invocations",
                                           json=row(1, 3)).status_code)

    threads = [threading.Thread(target=traffic) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for i in range(10):
            if i % 3 == 2:
                ws.endpoints.rollback("ep", reason=f"drill {i}")
            else:
                ws.endpoints.deploy("ep", refs[(i + 1) % 3],
                                    strategy="all-at-once" if i % 2 else "blue-green",
                                    bake_seconds=0.5)
            rev = ws.endpoints.get("ep")["revision"]
            s.wait_for("ep", lambda info, rev=rev: info["revision"] >= rev)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert len(results) > 50
    assert set(results) == {200}, {c: results.count(c) for c in set(results)}
    stats = {r["variant"]: r for r in ws.endpoints.stats("ep")}
    assert sum(r["errors_5xx"] + r["errors_4xx"] for r in stats.values()) == 0


def test_follow_champion_deploys_on_approval(local_workspace, serve):
    ws = local_workspace
    v1, v2 = register_model(ws, "clf", seed=1), register_model(ws, "clf", seed=2)
    ws.models.set_alias("clf", "champion", v1)
    ws.endpoints.create("ep", follow="clf@champion")
    s = serve(ws)
    s.wait_for("ep", lambda i: any(v["model"] == v1 for v in i["variants"].values()))
    ws.models.set_alias("clf", "champion", v2)
    s.wait_for("ep", lambda i: [v["model"] for v in i["variants"].values()] == [v2])
    assert ws.models.describe(v2)["version"]["deployed_at"] is not None


# -- too little traffic is never healthy ----------------------------------------------------------
@pytest.mark.parametrize("strategy", ["canary", "blue-green", "linear"])
def test_a_bake_without_traffic_never_completes(local_workspace, strategy):
    """No server, so no request reaches the new version: every watched step ends unjudged."""
    ws = local_workspace
    a, b = register_model(ws, seed=1), register_model(ws, seed=2)
    ws.endpoints.create("ep", a)
    r = ws.endpoints.deploy("ep", b, strategy=strategy, bake_seconds=0.2, step_percent=50,
                            min_requests=5, on_low_traffic="fail")
    assert r["status"] == "rolled_back", r
    assert "too little traffic" in r["reason"] and "saw 0 of the 5 requests" in r["reason"]
    assert [v["model"] for v in ws.endpoints.get("ep")["spec"]["variants"]] == [a]


def test_low_traffic_waits_up_to_max_wait_then_rolls_back(local_workspace, cli):
    ws = local_workspace
    a, b = register_model(ws, seed=1), register_model(ws, seed=2)
    ws.endpoints.create("ep", a)
    r = cli("endpoint", "deploy", "ep", "--model", b, "--strategy", "canary", "--bake", "0.2",
            "--min-requests", "5", "--max-wait", "0.5", env={"MODELLOOP_HOME": str(ws.root)},
            check=False)
    assert r.code == 1, r
    assert "waiting for traffic (0 of 5 requests)" in r.out  # said while it waited
    assert "too little traffic" in r.out and "waited 0.5 s more" in r.out
    assert [v["model"] for v in ws.endpoints.get("ep")["spec"]["variants"]] == [a]


def test_proceed_completes_but_records_the_unjudged_steps(local_workspace):
    ws = local_workspace
    a, b = register_model(ws, seed=1), register_model(ws, seed=2)
    ws.endpoints.create("ep", a)
    r = ws.endpoints.deploy("ep", b, strategy="linear", step_percent=50, bake_seconds=0.1,
                            min_requests=3, on_low_traffic="proceed")
    assert r["status"] == "completed"
    assert r["reason"].startswith("completed unjudged")
    assert "step 1" in r["reason"] and "step 2" in r["reason"]


def test_requests_of_an_earlier_rollout_do_not_count(local_workspace):
    """Statistics are cumulative per variant name: a version deployed, rolled back and deployed
    again must not be judged on the first rollout's requests."""
    ws = local_workspace
    a, b = register_model(ws, seed=1), register_model(ws, seed=2)
    ws.endpoints.create("ep", a)
    # a server process's counters from the first time clf-v2 was served (all healthy)
    ws.store.put_endpoint_stats("host:1:1", [("ep", "clf-v2", {"invocations": 500,
                                                               "errors_5xx": 0})])
    r = ws.endpoints.deploy("ep", b, strategy="blue-green", bake_seconds=0.2, min_requests=5,
                            on_low_traffic="fail")
    assert r["status"] == "rolled_back" and "saw 0 of the 5" in r["reason"]


def test_zero_requests_is_no_error_rate():
    from modelloop.serving.rollouts import breach, since

    seen = since({"invocations": 0, "errors": 0, "model_ms": []}, None)
    assert seen["error_rate"] is None and seen["p99_ms"] is None
    assert breach({"min_requests": 0, "max_error_rate": 0.0, "max_p99_ms": 1.0}, seen) is None
