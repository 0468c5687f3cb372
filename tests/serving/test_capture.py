"""Data capture loses nothing: every request a server answered is in the capture store, with the
input it got, the answer it gave and the model's probabilities, however the writer batches them;
and a record the writer cannot take is counted and said, never dropped silently."""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pandas as pd
from tests.serving.conftest import FEATURES, register_model, row


def test_every_answered_request_is_captured_with_its_answer(local_workspace, serve):
    ws = local_workspace
    ref = register_model(ws)
    ws.endpoints.create("ep", ref, capture={"enabled": True, "sampling": 100, "mode": "both"})
    s = serve(ws)
    s.wait_for("ep")
    sent = {f"req-{i}": row(i, 1 + (i % 7 == 0) * 2) for i in range(240)}  # some of 3 rows

    def call(item):
        ident, rows = item
        headers = {"X-Amzn-SageMaker-Inference-Id": ident}
        if ident.endswith("3"):  # some ask for probabilities themselves
            headers["X-Amzn-SageMaker-Custom-Attributes"] = "probabilities=true"
        with httpx.Client(timeout=30) as client:
            r = client.post(f"{s.url}/endpoints/ep/invocations", json=rows, headers=headers)
        assert r.status_code == 200, r.text
        return ident, r.json()

    with ThreadPoolExecutor(8) as pool:  # concurrent: requests share the server's batches
        answers = dict(pool.map(call, sent.items()))
    s.stop()  # the writer flushes what it holds

    records = ws.endpoints.capture("ep")
    assert len(records) == len(answers)
    by_id = {r["eventMetadata"]["inferenceId"]: r for r in records}
    assert set(by_id) == set(answers)
    assert len({r["eventMetadata"]["eventId"] for r in records}) == len(records)
    model = ws.models.load(ref)
    frame = ws.endpoints.capture("ep", frame=True)
    assert len(frame) == sum(len(v) for v in sent.values())
    for ident, answer in answers.items():
        rec = by_id[ident]
        inp = json.loads(rec["captureData"]["endpointInput"]["data"])
        out = json.loads(rec["captureData"]["endpointOutput"]["data"])
        assert inp["columns"] == FEATURES and inp["data"] == sent[ident]
        assert out["predictions"] == answer["predictions"]
        expected = model.predict_proba(pd.DataFrame(sent[ident], columns=FEATURES))
        # computed in a batch of many requests by the writer: equal to the last bit or so
        np.testing.assert_allclose(out["probabilities"], expected, rtol=1e-12, atol=1e-15)
        if "probabilities" in answer:
            assert out["probabilities"] == answer["probabilities"]
        assert rec["modelloop"]["rows"] == len(sent[ident])


def _pending(i: int, probas_of=None, **kw):
    from modelloop.telemetry.capture import Pending

    x = np.full((1, len(FEATURES)), float(i))
    args = {"endpoint": "ep", "variant": "v", "model": "m@1", "shadow": False,
            "ts": time.time(), "inference_id": f"id-{i}", "columns": FEATURES, "x": x,
            "keep_input": True, "predictions": np.array([i % 2]), "probabilities": None,
            "classes": [0, 1], "probas_of": probas_of}
    return Pending(**{**args, **kw})


def test_the_writer_computes_probabilities_once_per_batch_and_writes_every_record(
        local_workspace):
    from modelloop.telemetry.capture import CaptureWriter, read_capture

    ws = local_workspace
    calls = []

    def probas_of(xs):
        calls.append(len(xs))
        return [np.array([[0.25, 0.75]]) for _ in xs]

    writer = CaptureWriter(ws.store, ws.artifacts, flush_seconds=3600)
    for i in range(500):
        assert writer.write(_pending(i, probas_of))
    assert writer.flush() == 500
    assert calls == [500]  # one model call for the whole batch, not one per request
    records = read_capture(ws.store, ws.artifacts, "ep")
    assert sorted(int(r["eventMetadata"]["inferenceId"][3:]) for r in records) == list(range(500))
    assert all('"probabilities":[[0.25,0.75]]' in r["captureData"]["endpointOutput"]["data"]
               for r in records)
    writer.close()


def test_records_whose_probabilities_fail_are_still_written_and_counted(local_workspace):
    from modelloop.telemetry.capture import CaptureWriter, read_capture

    ws = local_workspace

    def broken(xs):
        raise RuntimeError("model gone")

    writer = CaptureWriter(ws.store, ws.artifacts, flush_seconds=3600)
    for i in range(10):
        writer.write(_pending(i, broken))
    assert writer.flush() == 10
    assert writer.stats()["without_probabilities"] == 10
    records = read_capture(ws.store, ws.artifacts, "ep")
    assert len(records) == 10
    assert all("probabilities" not in r["captureData"]["endpointOutput"]["data"] for r in records)
    writer.close()


def test_a_full_buffer_counts_and_says_what_it_refuses(local_workspace, caplog):
    from modelloop.telemetry.capture import CaptureWriter

    ws = local_workspace
    writer = CaptureWriter(ws.store, ws.artifacts, max_buffer=40, flush_seconds=3600)
    writer._wake_at = 10**9  # hold the burst flush back so that the buffer fills
    with caplog.at_level(logging.WARNING, logger="modelloop.telemetry.capture"):
        accepted = sum(writer.write(_pending(i)) for i in range(50))
    assert accepted == 40
    assert writer.stats()["dropped"] == 10
    assert "records dropped" in caplog.text
    assert writer.flush() == 40
    assert writer.written == 40
    writer.close()
    assert writer.write(_pending(99)) is False  # closed: refused and counted, not lost quietly
    assert writer.dropped == 11


def test_a_burst_is_flushed_before_the_next_tick(local_workspace):
    from modelloop.telemetry.capture import CaptureWriter

    ws = local_workspace
    writer = CaptureWriter(ws.store, ws.artifacts, max_buffer=400, flush_seconds=3600)
    for i in range(150):  # over a quarter of the buffer wakes the writer thread
        assert writer.write(_pending(i))
    deadline = time.monotonic() + 30
    while writer.written < 100 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert writer.written >= 100
    writer.close()
    assert writer.written == 150 and writer.dropped == 0


def test_the_line_encoder_writes_what_make_record_does():
    """The writer's pre-encoded lines parse to the very record make_record builds, for every
    shape of capture; what it cannot encode (text) it leaves to make_record."""
    from modelloop.telemetry.capture import _encode
    from modelloop.telemetry.capture_lines import LineEncoder

    enc = LineEncoder()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, len(FEATURES)))
    x[1, 2] = np.nan
    cases = [
        {},
        {"keep_input": False},
        {"predictions": None},
        {"probabilities": np.array([[0.1, 0.9]])},
        {"probabilities": np.array([[0.1, 0.9]]), "classes": ['a "quoted"', "b\\c"]},
        {"probabilities": np.array([[0.1, 0.9]]), "classes": None},
        {"x": x, "predictions": np.array([1.5, -2.0, 3e-300])},
        {"x": x.astype(np.float32), "predictions": np.array([True, False, True])},
        {"columns": None},
        {"inference_id": 'odd "id" \\ with\nnewline', "shadow": True},
        {"endpoint": "é-ep", "variant": "v/1", "model": "m@2"},
    ]
    for i, case in enumerate(cases):
        for _ in range(2):  # the second time from the cached pieces
            p = _pending(i, **case)
            line = enc.line(p, "e-id", "2026-11-29T22:00:00Z")
            assert line is not None and line.endswith(b"\n") and line.count(b"\n") == 1
            expected = _encode(p.record("2026-11-29T22:00:00Z", "e-id"))
            assert json.loads(line) == json.loads(expected), case
    text = _pending(0, x=np.array([["a", "b"]], dtype=object), columns=["s", "t"])
    assert enc.line(text, "e", "2026-11-29T22:00:00Z") is None
    labels = _pending(0, predictions=np.array(["yes"]))
    assert enc.line(labels, "e", "2026-11-29T22:00:00Z") is None


def test_ids_the_server_makes_sort_by_time(local_workspace, serve):
    """An answer the client did not name gets a version-7 UUID (time first): the capture index
    of ids grows at its end instead of rewriting pages all over its tree at each flush."""
    import uuid

    from modelloop.common.ids import time_ordered_uuid

    made = [time_ordered_uuid() for _ in range(2000)]
    assert len(set(made)) == len(made)
    assert all(uuid.UUID(i).version == 7 and uuid.UUID(i).variant == uuid.RFC_4122
               for i in made)
    ws = local_workspace
    ws.endpoints.create("ep", register_model(ws), capture={"enabled": True, "sampling": 100})
    s = serve(ws)
    s.wait_for("ep")
    with httpx.Client(timeout=30) as client:
        for i in range(5):
            r = client.post(f"{s.url}/endpoints/ep/invocations", json=row(i, 1))
            assert r.status_code == 200, r.text
            time.sleep(0.003)  # a later millisecond
    s.stop()
    ids = [r["eventMetadata"]["inferenceId"] for r in ws.endpoints.capture("ep")]
    assert len(ids) == 5 and all(uuid.UUID(i).version == 7 for i in ids)
    assert ids == sorted(ids)
