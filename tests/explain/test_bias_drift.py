"""Bias drift: an endpoint monitor computes Clarify's post-training metrics on captured traffic
joined with late labels, writes them as series, flags values farther from fair than the
baseline's, and an alarm on the series goes off when the served model treats a group unfairly."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from modelloop.errors import InvalidInput


def _capture(ws, endpoint: str, rows: pd.DataFrame, preds, t0: datetime) -> list[str]:
    from modelloop.telemetry.capture import CaptureWriter, make_record

    writer = CaptureWriter(ws.store, ws.artifacts, flush_seconds=60)
    ids = []
    for i, (row, pred) in enumerate(zip(rows.itertuples(index=False), preds, strict=True)):
        ids.append(uuid.uuid4().hex)
        writer.write(make_record(
            endpoint=endpoint, variant="main", model="m@1", shadow=False,
            event_id=uuid.uuid4().hex, inference_id=ids[-1],
            ts=(t0 + timedelta(seconds=2 * i)).timestamp(), columns=list(rows.columns),
            rows=[list(row)], predictions=[pred], probabilities=None,
        ))  # fmt: skip
    writer.close()
    return ids


def _traffic(n: int, seed: int):
    rng = np.random.default_rng(seed)
    rows = pd.DataFrame({"sex": rng.choice(["female", "male"], n),
                         "income": rng.normal(50, 15, n).round(1)})  # fmt: skip
    truth = (rows.income + rng.normal(0, 8, n) > 50).astype(int).to_numpy()
    return rows, truth


@pytest.fixture
def ws(local_workspace, tmp_path):
    rows, truth = _traffic(500, 0)
    rows.assign(approved=truth).to_csv(tmp_path / "train.csv", index=False)
    local_workspace.datasets.ingest("train", [tmp_path / "train.csv"])
    local_workspace.monitoring.ensure_baseline("train@1")
    return local_workspace


def test_bias_drift_alarm_goes_off_when_a_group_is_refused(ws):
    mon = ws.monitoring
    now = datetime.now(UTC).replace(microsecond=0)
    rows, truth = _traffic(600, 1)
    # the served model refuses most women whatever their income: DI far below 0.8
    rng = np.random.default_rng(2)
    preds = np.where((rows.sex == "female") & (rng.random(len(rows)) < 0.8), 0, truth)
    ids = _capture(ws, "web", rows, preds.tolist(), now - timedelta(minutes=30))
    mon.add_label_records("web", [{"inference_id": i, "label": int(t)}
                                  for i, t in zip(ids, truth, strict=True)])  # fmt: skip
    mon.create_monitor("web-bias", endpoint="web", baseline="train@1", window="1h",
                       config={"bias": {"facet": "sex=female", "label": "1",
                                        "baseline": {"DI": 0.95, "DPPL": 0.03}}})  # fmt: skip
    mon.alarms.create("unfair", "bias.DI", dimensions={"monitor": "web-bias", "facet": "sex=female"},
                      threshold=0.8, comparison="<")  # fmt: skip
    run = mon.run("web-bias", window_end=(now + timedelta(seconds=1)).isoformat())
    assert run["status"] == "completed", run
    report = mon.run_report(run["id"])
    bias = report["bias"]
    assert bias["n_labelled"] == 600 and bias["enough_labels"]
    di = bias["groups"]["sex=female"]["values"]["DI"]
    female = (rows.sex == "female").to_numpy()
    assert di == pytest.approx(preds[female].mean() / preds[~female].mean())
    assert di < 0.5
    assert {v["metric"] for v in bias["violations"]} >= {"DI", "DPPL"}
    assert report["summary"]["bias_violations"] >= 2
    points = mon.metric("bias.DI", {"monitor": "web-bias", "facet": "sex=female"})
    assert points[-1]["value"] == pytest.approx(di)
    [state] = mon.alarms.evaluate("unfair", at=now + timedelta(seconds=2))
    assert state["state"] == "ALARM", state


def test_bias_monitor_config_is_checked(ws):
    mon = ws.monitoring
    with pytest.raises(InvalidInput, match="needs a facet and a label"):
        mon.create_monitor("b1", endpoint="web", baseline="train@1", config={"bias": {"facet": "sex"}})
    with pytest.raises(InvalidInput, match="pre-training metric"):
        mon.create_monitor("b2", endpoint="web", baseline="train@1",
                           config={"bias": {"facet": "sex=female", "label": "1", "metrics": ["CI"]}})
    with pytest.raises(InvalidInput, match="watches an endpoint"):
        mon.create_monitor("b3", dataset="train", baseline="train@1",
                           config={"bias": {"facet": "sex=female", "label": "1"}})
