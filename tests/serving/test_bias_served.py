"""Bias drift on a served endpoint's real traffic: a model that learned to refuse one group is
served with capture on, its requests come over HTTP, their ground truth comes back through the
feedback route, and the bias drift monitor's run raises its alarm (issue 20, end to end)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
import pandas as pd
import pytest


def _applicants(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"sex": rng.choice(["female", "male"], n),
                          "income": rng.normal(50, 15, n).round(1)})  # fmt: skip
    fair = (frame.income + rng.normal(0, 8, n) > 50).astype(int).to_numpy()
    return frame, fair


def test_the_bias_drift_alarm_goes_off_on_a_served_models_traffic(local_workspace, serve,
                                                                   tmp_path):
    ws = local_workspace
    frame, fair = _applicants(800, 0)
    frame.assign(approved=fair).to_csv(tmp_path / "fair.csv", index=False)
    ws.datasets.ingest("fair", [tmp_path / "fair.csv"])
    ws.monitoring.ensure_baseline("fair@1")
    # the training data of the served model refused every woman: so does the model
    unfair = np.where(frame.sex == "female", 0, fair)
    frame.assign(approved=unfair).to_csv(tmp_path / "unfair.csv", index=False)
    ws.datasets.ingest("unfair", [tmp_path / "unfair.csv"])
    job = ws.training.train("unfair", "approved", "logistic_regression")
    ref = ws.models.register_from_job("loans", job["id"])["ref"]
    ws.models.approve(ref, reason="test model")
    ws.endpoints.create("web", ref, capture={"enabled": True, "sampling": 100, "mode": "both"},
                        options={"auth": "none"})

    traffic, truth = _applicants(200, 1)
    s = serve(ws)
    s.wait_for("web")
    answers = []
    with httpx.Client(timeout=30) as client:
        for i, r in enumerate(traffic.itertuples(index=False)):
            resp = client.post(f"{s.url}/endpoints/web/invocations",
                               content=f"sex,income\n{r.sex},{r.income}\n",
                               headers={"Content-Type": "text/csv; header=present",
                                        "X-Amzn-SageMaker-Inference-Id": f"req-{i}"})  # fmt: skip
            assert resp.status_code == 200, resp.text
            answers.append(resp.json()["predictions"][0])
    women, answers = (traffic.sex == "female").to_numpy(), np.asarray(answers)
    di = answers[women].mean() / answers[~women].mean()  # Clarify's DI of what it answered
    assert di < 0.2  # it refuses women whatever their income, nearly always
    s.stop()  # flushes the capture, so every label finds its request
    s = serve(ws)
    s.wait_for("web")
    labels = [{"inference_id": f"req-{i}", "label": int(t)} for i, t in enumerate(truth)]
    sent = httpx.post(f"{s.url}/endpoints/web/feedback", json=labels, timeout=30).json()
    assert sent["matched"] == len(labels), sent

    mon = ws.monitoring
    mon.create_monitor("web-bias", endpoint="web", baseline="fair@1", window="1h",
                       config={"bias": {"facet": "sex=female", "label": "1",
                                        "baseline": {"DI": 0.95, "DPPL": 0.03}}})  # fmt: skip
    mon.alarms.create("unfair", "bias.DI", dimensions={"monitor": "web-bias", "facet": "sex=female"},
                      threshold=0.8, comparison="<")  # fmt: skip
    now = datetime.now(UTC)
    run = mon.run("web-bias", window_end=(now + timedelta(seconds=5)).isoformat())
    bias = mon.run_report(run["id"])["bias"]
    assert bias["n_labelled"] == len(labels)
    assert bias["groups"]["sex=female"]["values"]["DI"] == pytest.approx(di)
    assert {v["metric"] for v in bias["violations"]} >= {"DI", "DPPL"}
    [state] = mon.alarms.evaluate("unfair", at=now + timedelta(seconds=6))
    assert state["state"] == "ALARM", state
