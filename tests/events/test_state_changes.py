"""What the loop reacts to reaches the stream: a pipeline run that ends appends ``run.finished``
in the transaction that records its end (store conformance checks rollouts and the rest)."""

from __future__ import annotations

from modelloop.pipelines import fail, otherwise, pipeline, step, when


@step
def score(n: int) -> int:
    return n


@pipeline
def gated(n: int = 1):
    with when(score(n) > 2):
        score.with_options(name="ship")(n)
    with otherwise():
        fail("too low")


def test_a_finished_run_reaches_the_stream_with_its_status(local_workspace):
    ws = local_workspace
    consumer = ws.events_stream.consumer("loop-watch", "m")
    passed = gated.run(ws, {"n": 3})
    failed = gated.run(ws, {"n": 1})
    got = [d.event for d in consumer.read() if d.event["kind"] == "run.finished"]
    assert [(e["payload"]["run_id"], e["payload"]["status"]) for e in got] == [
        (passed.run_id, "succeeded"), (failed.run_id, "failed")]
    assert got[1]["payload"]["pipeline"] == "gated" and "too low" in got[1]["payload"]["error"]
