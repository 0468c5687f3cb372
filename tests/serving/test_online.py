"""Online endpoints in serving: the spec and CLI, labelled events and feedback over HTTP, every
worker answering with each model its learner publishes within a second, and the learner process
under its lease surviving SIGKILL."""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import time

import httpx
import pytest

from modelloop.errors import InvalidInput

KNN = "neighbors.KNNClassifier(n_neighbors=1)"  # predicts the label of the nearest event
LOGREG = "preprocessing.StandardScaler|linear_model.LogisticRegression"
FEATURES = ["a", {"name": "c", "type": "category"}]


def _event(k: int) -> dict:
    """Event k: a point of its own and a label of its own, so the 1-NN model answers ``e{k}``
    at that point exactly once it has learned it."""
    return {"features": {"a": float(k) * 10.0, "c": "x"}, "label": f"e{k}"}


def test_online_endpoint_spec_sdk_and_cli(local_workspace, cli):
    ws = local_workspace
    rec = ws.endpoints.create("fraud", online=LOGREG, features=FEATURES,
                              online_options={"guard": {"margin": 0.1, "window": 100}})
    (v,) = rec["spec"]["variants"]
    assert v["name"] == "online" and v["model"] == LOGREG
    assert v["online"]["features"] == [{"name": "a", "type": "number"},
                                       {"name": "c", "type": "category"}]
    assert v["online"]["label"] == "class" and v["online"]["guard"]["margin"] == 0.1

    cli("-w", ws.root, "endpoint", "create", "fraud2", "--online", LOGREG, "--features",
        "a,c:category", "--label", "class")
    assert ws.endpoints.get("fraud2")["spec"]["variants"][0]["online"]["features"][1] == \
        {"name": "c", "type": "category"}

    # bad input: a model name that does not resolve, no features, a model too, two online
    # variants, a bad guard, an unknown feature type
    with pytest.raises(InvalidInput, match="Nope"):
        ws.endpoints.create("bad", online="linear_model.Nope", features=["a"])
    with pytest.raises(InvalidInput, match="features"):
        ws.endpoints.create("bad", online=LOGREG)
    with pytest.raises(InvalidInput, match="not both"):
        ws.endpoints.create("bad", "m@1", online=LOGREG, features=["a"])
    two = [{"name": n, "online": {"model": LOGREG, "features": [{"name": "a"}]}} for n in "xy"]
    with pytest.raises(InvalidInput, match="at most one online"):
        ws.endpoints.create("bad", variants=two)
    with pytest.raises(InvalidInput, match="margin"):
        ws.endpoints.create("bad", online=LOGREG, features=["a"],
                            online_options={"guard": {"margin": -1}})
    out = cli("-w", ws.root, "endpoint", "create", "bad", "--online", LOGREG, "--features",
              "a:text", check=False)
    assert out.code != 0 and "--features" in out.err
    out = cli("-w", ws.root, "endpoint", "create", "bad", "--online", "linear_model.Nope",
              "--features", "a", check=False)
    assert out.code != 0 and "Nope" in out.err
    assert [e["name"] for e in ws.endpoints.list()] == ["fraud", "fraud2"]


def test_events_and_feedback_over_http(local_workspace, serve):
    ws = local_workspace  # no tokens here: tests/serving/test_endpoint_auth.py checks them
    ws.endpoints.create("fraud", online=KNN, features=FEATURES, options={"auth": "none"})
    s = serve(ws, "--no-learn")
    s.wait_for("fraud")
    url = f"{s.url}/endpoints/fraud"

    # nothing learned yet: a clear 503, not a failure of the model
    r = httpx.post(f"{url}/invocations", json={"instances": [{"a": 1.0, "c": "x"}]})
    assert r.status_code == 503 and "learned nothing yet" in r.text

    ok = httpx.post(f"{url}/events", json=_event(1))  # one object
    assert ok.status_code == 200 and ok.json()["accepted"] == 1
    lines = "\n".join(__import__("json").dumps(_event(k)) for k in (2, 3))  # JSON Lines
    jl = httpx.post(f"{url}/events", content=lines,
                    headers={"content-type": "application/jsonlines"})
    assert jl.status_code == 200 and jl.json()["accepted"] == 2
    flat = {"a": 40.0, "c": "x", "label": "e4"}  # the features next to the label
    bad = [flat, {"features": {"a": 1.0}, "label": "z"},  # missing feature
           {"features": {"a": 1.0, "c": "x", "d": 2}, "label": "z"},  # extra feature
           {"features": {"a": "high", "c": "x"}, "label": "z"},  # wrong type
           {"features": {"a": 1.0, "c": "x"}, "label": [1]},  # wrong label type
           {"features": {"a": 1.0, "c": "x"}}]  # no label
    mixed = httpx.post(f"{url}/events", json=bad)  # a list: the good one is kept
    assert mixed.status_code == 422
    body = mixed.json()
    assert body["accepted"] == 1 and body["rejected"] == 5
    assert [e["index"] for e in body["errors"]] == [1, 2, 3, 4, 5]
    assert "missing" in body["errors"][0]["error"] and "unknown" in body["errors"][1]["error"]
    for payload, ctype in ((b"{not json", "application/json"), (b"[1, 2]", "application/json"),
                           (b"a,b", "text/csv")):
        r = httpx.post(f"{url}/events", content=payload, headers={"content-type": ctype})
        assert 400 <= r.status_code < 500 and r.json()["message"]
    assert httpx.post(f"{s.url}/endpoints/nope/events", json=_event(1)).status_code == 404
    assert ws.store.online_stream("fraud")["last_seq"] == 4  # durable once acknowledged

    # feedback on a served request becomes an event with that request's features
    from modelloop.automation.learning import open_learner
    from modelloop.serving.spec import online_variant

    learner = open_learner(ws, "fraud", online_variant(ws.endpoints.get("fraud")["spec"]))
    assert learner.step() == 4
    learner.save()
    s.wait_for("fraud", lambda info: info["variants"]["online"]["model"].endswith("@1"))
    r = httpx.post(f"{url}/invocations", json={"instances": [{"a": 1000.0, "c": "y"}]},
                   headers={"X-Amzn-SageMaker-Inference-Id": "req-1"})
    assert r.status_code == 200
    fb = httpx.post(f"{url}/feedback", json=[{"inference_id": "req-1", "label": "far"},
                                             {"inference_id": "nope", "label": "z"}])
    assert fb.status_code == 422  # the unknown id is named; the joined one is kept
    events = fb.json()["events"]
    assert events["accepted"] == 1 and events["errors"][0]["index"] == 1
    assert "unknown inference id" in events["errors"][0]["error"]
    (joined,) = ws.store.read_online_events("fraud", 4, 10)
    assert joined["features"] == {"a": 1000.0, "c": "y"} and joined["label"] == "far"
    assert joined["inference_id"] == "req-1"

    # a batch endpoint takes no events
    from tests.serving.conftest import register_model

    ws.endpoints.create("batch", register_model(ws), options={"auth": "none"})
    s.wait_for("batch")
    r = httpx.post(f"{s.url}/endpoints/batch/events", json=_event(1))
    assert r.status_code == 400 and "not online" in r.json()["message"]


def _learners(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid), "-f", "learn"], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def test_updates_reach_every_worker_within_a_second(local_workspace, serve):
    """Events and requests interleaved against a two-worker server whose learner it started
    itself: the time from an event's acknowledgement to the first answer that reflects it,
    p99 under the issue's one second, and no request failed meanwhile."""
    ws = local_workspace
    ws.endpoints.create("fraud", online=KNN, features=FEATURES, options={"auth": "none"})
    s = serve(ws, "--workers", "2")
    s.wait_for("fraud")
    url = f"{s.url}/endpoints/fraud"
    assert httpx.post(f"{url}/events", json=_event(0)).status_code == 200
    latencies, failed, answers = [], 0, 0
    deadline = time.monotonic() + 120  # the first model: the learner process starts up
    while time.monotonic() < deadline:
        if httpx.post(f"{url}/invocations", json={"instances": [_event(0)["features"]]}
                      ).status_code == 200:
            break
        time.sleep(0.1)
    for k in range(1, 41):
        assert httpx.post(f"{url}/events", json=_event(k)).status_code == 200
        acked = time.monotonic()
        while True:
            # a new connection each time: the kernel hands it to either worker
            r = httpx.post(f"{url}/invocations", json={"instances": [_event(k)["features"]]},
                           headers={"connection": "close"})
            answers += 1
            if r.status_code != 200:
                failed += 1
            elif r.json()["predictions"][0] == f"e{k}":
                latencies.append(time.monotonic() - acked)
                break
            assert time.monotonic() - acked < 30, "the update never became visible"
    latencies.sort()
    p99 = latencies[int(0.99 * (len(latencies) - 1))]
    print(f"update-to-serving p50 {statistics.median(latencies) * 1000:.0f} ms, "
          f"p99 {p99 * 1000:.0f} ms over {len(latencies)} events, {answers} answers")
    assert failed == 0
    assert p99 < 1.0  # the product requirement (issue 17), measured here


@pytest.fixture(params=["intake", "redis"])
def source(request):
    """Where the learner reads: intake, or events relayed to Redis Streams (a stream key of the
    test's own: ``redis_url`` skips when no Redis is configured). The embedded event stream's
    exactly-once under SIGKILL is tests/online/test_learner_crash.py's, with every source."""
    if request.param == "redis":
        import uuid

        return f"{request.getfixturevalue('redis_url')}?stream=ml-test-{uuid.uuid4().hex}"
    return request.param


def test_sigkilled_learner_process_loses_and_repeats_nothing(local_workspace, source):
    """``modelloop learn`` killed by SIGKILL while events arrive: a second one (a standby on
    the lease) takes over from the checkpoint; every acknowledged event is learned once. Events
    come through the intake, or as ``online.event`` events on the event stream (embedded, or
    relayed to Redis Streams)."""
    ws = local_workspace
    env = {**os.environ}
    if source.startswith("redis"):
        env["MODELLOOP_EVENTS_URL"] = source
    ws.endpoints.create("fraud", online=LOGREG, features=["a", "b"], online_options={
        "source": "intake" if source == "intake" else "stream"})
    argv = [sys.executable, "-m", "modelloop", "-w", str(ws.root), "learn", "fraud",
            "--lease-seconds", "2"]
    first = subprocess.Popen(argv, stderr=subprocess.DEVNULL, env=env)
    standby = None
    acked, last = 0, 0
    try:
        for k in range(60):
            events = [{"features": {"a": float(i % 7), "b": float(i % 3)}, "label": i % 2 == 0}
                      for i in range(k * 10, k * 10 + 10)]
            out = ws.endpoints.add_events("fraud", events)
            assert out["accepted"] == 10
            acked, last = acked + 10, out["seqs"][1]
            if k == 20:
                _wait(lambda: _learned(ws) > 0)
                standby = subprocess.Popen(argv, stderr=subprocess.DEVNULL, env=env)
                os.kill(first.pid, signal.SIGKILL)
                first.wait(30)
        _wait(lambda: _learned(ws) == last, timeout=120)
    finally:
        for proc in (first, standby):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(60)
    info = ws.store.get_online_model("fraud", "online")["info"]
    assert info["events"] == acked and info["applied_seq"] == last
    assert standby.returncode == 0


def _learned(ws) -> int:
    row = ws.store.get_online_model("fraud", "online")
    return row["applied_seq"] if row else 0


def _wait(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_batch_variant_is_the_learners_frozen_champion(local_workspace):
    from tests.serving.conftest import FEATURES as BATCH_FEATURES
    from tests.serving.conftest import register_model

    from modelloop.automation.learning import open_learner
    from modelloop.serving.spec import online_variant

    ws = local_workspace
    ref = register_model(ws)
    ws.endpoints.create("hybrid", variants=[
        {"name": "online", "online": {"model": LOGREG, "features": [
            {"name": f} for f in BATCH_FEATURES]}},
        {"name": "batch", "model": ref, "role": "shadow"}])
    learner = open_learner(ws, "hybrid", online_variant(ws.endpoints.get("hybrid")["spec"]))
    events = [{"features": {f: float((i * (j + 1)) % 5 - 2) for j, f in
                            enumerate(BATCH_FEATURES)}, "label": i % 2} for i in range(50)]
    assert ws.endpoints.add_events("hybrid", events)["accepted"] == 50
    assert learner.step() == 50
    metrics = learner.metrics()
    assert metrics["events"] == 50 and metrics["champion"] is not None


def test_a_batch_champion_is_scored_on_probabilities_when_the_metric_needs_them(local_workspace):
    import pandas as pd
    from river import metrics
    from tests.serving.conftest import FEATURES as BATCH_FEATURES
    from tests.serving.conftest import register_model

    from modelloop.automation.learning import open_learner
    from modelloop.serving.spec import online_variant

    ws = local_workspace
    ref = register_model(ws)
    ws.endpoints.create("hybrid", variants=[
        {"name": "online", "online": {"model": LOGREG, "metric": "LogLoss", "features": [
            {"name": f} for f in BATCH_FEATURES]}},
        {"name": "batch", "model": ref, "role": "shadow"}])
    learner = open_learner(ws, "hybrid", online_variant(ws.endpoints.get("hybrid")["spec"]))
    events = [{"features": {f: float((i * (j + 1)) % 5 - 2) for j, f in
                            enumerate(BATCH_FEATURES)}, "label": i % 2} for i in range(50)]
    assert ws.endpoints.add_events("hybrid", events)["accepted"] == 50
    assert learner.step() == 50
    packaged = ws.models.load(ref)
    frame = pd.DataFrame([e["features"] for e in events], columns=BATCH_FEATURES)
    expected = metrics.LogLoss()
    for e, p in zip(events, packaged.predict_proba(frame), strict=True):
        expected.update(e["label"], dict(zip(packaged.manifest.classes, p, strict=True)))
    assert learner.metrics()["champion"] == pytest.approx(expected.get())
