"""Ground truth over HTTP (``POST /endpoints/NAME/feedback``) feeds model-quality monitoring
exactly as ``modelloop monitor labels FILE`` does."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
import pandas as pd
import pytest
from tests.conftest import write_csv
from tests.serving.conftest import FEATURES, register_model, row


@pytest.mark.all_backends
def test_labels_posted_over_http_give_the_cli_metrics(workspace, serve, cli, tmp_path):
    from sklearn.metrics import accuracy_score

    ws = workspace
    ref = register_model(ws)
    capture = {"enabled": True, "sampling": 100, "mode": "both"}
    for name in ("http-ep", "cli-ep"):  # same model, same traffic, labels by two paths
        # no tokens here: tests/serving/test_endpoint_auth.py checks them
        ws.endpoints.create(name, ref, capture=capture, options={"auth": "none"})
    frame = pd.DataFrame(np.random.default_rng(3).normal(size=(500, len(FEATURES))),
                         columns=FEATURES)
    ws.datasets.ingest("train", [str(write_csv(tmp_path / "train.csv", frame))])
    ws.monitoring.ensure_baseline("train@1")
    s = serve(ws)
    s.wait_for("http-ep")
    s.wait_for("cli-ep")

    rows = row(11, 60)
    preds = {}
    with httpx.Client(timeout=30) as client:
        for name in ("http-ep", "cli-ep"):
            for i, r in enumerate(rows):
                resp = client.post(f"{s.url}/endpoints/{name}/invocations", json=[r],
                                   headers={"X-Amzn-SageMaker-Inference-Id": f"req-{i}"})
                assert resp.status_code == 200
                preds[i] = resp.json()["predictions"][0]
    # ground truth: the model's rule, with every third answer flipped so accuracy is not 1
    truth = [int(r[0] + r[1] > 0) ^ (i % 3 == 0) for i, r in enumerate(rows)]
    labels = [{"inference_id": f"req-{i}", "label": t} for i, t in enumerate(truth)]
    s.stop()  # flushes the capture, so every label matches a captured prediction
    s = serve(ws)
    s.wait_for("http-ep")

    url = f"{s.url}/endpoints/http-ep/feedback"
    one = httpx.post(url, json=labels[0])  # one object
    assert one.status_code == 200 and one.json()["labels"] == 1
    listed = httpx.post(url, json=labels[1:30])  # a list
    assert listed.json() == {"endpoint": "http-ep", "labels": 29, "matched": 29, "unknown": 0,
                             "unknown_examples": []}
    lines = "\n".join(json.dumps(x) for x in labels[30:] + [{"inference_id": "nope",
                                                            "label": 1}])
    jl = httpx.post(url, content=lines, headers={"content-type": "application/jsonlines"})
    assert jl.json()["unknown"] == 1 and jl.json()["unknown_examples"] == ["nope"]

    labels_csv = write_csv(tmp_path / "labels.csv", pd.DataFrame(labels))
    cli("monitor", "labels", str(labels_csv), "--endpoint", "cli-ep",
        env={"MODELLOOP_HOME": str(ws.root)})

    end = (datetime.now(UTC) + timedelta(seconds=5)).isoformat()
    quality = {}
    for name in ("http-ep", "cli-ep"):
        ws.monitoring.create_monitor(f"{name}-mon", endpoint=name, baseline="train@1",
                                     window="1h", model=ref)
        run = ws.monitoring.run(f"{name}-mon", window_end=end)
        quality[name] = ws.monitoring.run_report(run["id"])["quality"]
    assert quality["http-ep"]["n_labelled"] == quality["cli-ep"]["n_labelled"] == 60
    assert quality["http-ep"]["metrics"] == quality["cli-ep"]["metrics"]
    expected = accuracy_score(truth, [preds[i] for i in range(60)])
    assert quality["http-ep"]["metrics"]["accuracy"] == pytest.approx(expected)
    assert expected < 1.0


BAD = [
    (b"{not json", "application/json", "not valid JSON"),
    (b'{"inference_id": "a"}', "application/json", "lacks 'label'"),
    (b'[{"id": "a", "label": 1}]', "application/json", "lacks 'inference_id'"),
    (b"[]", "application/json", "non-empty list"),
    (b'[1, 2]', "application/json", "not a JSON object"),
    (b'{"inference_id": "a", "label": 1}\n{oops', "application/jsonlines", "line 2"),
    (b"inference_id,label\na,1", "text/csv", "feedback cannot be text/csv"),
]


def test_bad_feedback_is_400_naming_the_problem(local_workspace, serve):
    ws = local_workspace
    ws.endpoints.create("ep", register_model(ws), options={"auth": "none"})
    s = serve(ws)
    s.wait_for("ep")
    for body, ctype, message in BAD:
        r = httpx.post(f"{s.url}/endpoints/ep/feedback", content=body,
                       headers={"content-type": ctype})
        assert r.status_code == 400, (body, r.text)
        assert message in r.json()["message"] and r.json()["hint"], (body, r.json())
    assert ws.monitoring.store.get_labels("ep") == {}  # nothing half-stored
    missing = httpx.post(f"{s.url}/endpoints/nope/feedback", json={"inference_id": "a",
                                                                    "label": 1})
    assert missing.status_code == 404 and "nope" in missing.json()["message"]


def test_feedback_finds_captures_by_id_without_reading_them(workspace, monkeypatch):
    """Feedback matches labels through the capture index: with 5,000 captured requests (one of
    them three rows long) no capture file is read, and the join of monitoring still works."""
    from modelloop.telemetry.capture import CaptureWriter, make_record

    ws = workspace
    ws.endpoints.create("ep", register_model(ws), capture={"enabled": True})
    writer = CaptureWriter(ws.store, ws.artifacts, max_buffer=10_000, flush_seconds=3600)
    now = datetime.now(UTC).timestamp()
    for i in range(5000):
        n = 3 if i == 7 else 1
        writer.write(make_record(endpoint="ep", variant="clf-v1", model="clf@1", shadow=False,
                                 event_id=f"e{i}", inference_id=f"req-{i}", ts=now,
                                 columns=FEATURES, rows=row(i, n), predictions=[1] * n))
    writer.close()
    assert writer.written == 5000

    reads = []
    for name in ("read_bytes", "open"):
        real = getattr(ws.artifacts, name)
        monkeypatch.setattr(ws.artifacts, name,
                            lambda *a, _real=real, **k: reads.append(a) or _real(*a, **k))
    out = ws.monitoring.add_label_records("ep", [
        {"inference_id": "req-4999", "label": 1}, {"inference_id": "req-7:2", "label": 0},
        {"inference_id": "req-7", "label": 0}, {"inference_id": "req-7:3", "label": 0},
        {"inference_id": "nope", "label": 1}])
    assert reads == []  # an indexed lookup, not a scan of 5,000 records
    assert out["matched"] == 2 and sorted(out["unknown_examples"]) == ["nope", "req-7",
                                                                        "req-7:3"]
    monkeypatch.undo()
    from modelloop.monitoring import captures
    from modelloop.monitoring.model_quality import join_labels

    frame = captures.capture_frame(ws.store, ws.artifacts, "ep")
    joined = join_labels(frame, ws.store.get_labels("ep"))
    assert set(joined["inference_id"]) == {"req-4999", "req-7:2"}


def test_captures_written_before_the_index_are_found_once(local_workspace):
    """Capture files of an older modelloop (no ids indexed) are indexed by the first lookup."""
    from modelloop.telemetry.capture import _dumps, make_record

    ws = local_workspace
    now = datetime.now(UTC)
    recs = [make_record(endpoint="ep", variant="v", model="clf@1", shadow=False, event_id="e",
                        inference_id=f"old-{i}", ts=now.timestamp(), columns=FEATURES,
                        rows=row(i), predictions=[0]) for i in range(3)]
    for r in recs:
        r["modelloop"].pop("rows")  # as an older modelloop wrote them
    blob = ws.artifacts.put_bytes("".join(_dumps(r) + "\n" for r in recs).encode())
    ws.store.add_capture_files([{"endpoint": "ep", "variant": "v", "hour": now, "digest":
                                 blob.digest, "records": 3, "first_time": now,
                                 "last_time": now}])
    out = ws.monitoring.add_label_records("ep", [{"inference_id": "old-1", "label": 1}])
    assert out["matched"] == 1
    assert ws.store.unindexed_capture_files("ep") == []
