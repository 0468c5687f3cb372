"""Monitoring driven as a user drives it: the CLI in a subprocess, the SDK on every backend pair,
a real HTTP server on loopback for webhooks, captured traffic written by serving's CaptureWriter."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np
import pandas as pd
import pytest
from tests.conftest import write_csv


def frame(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    """Known drift: ``shift`` moves ``drifty``'s mean (in sd); ``stable*`` never change."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "drifty": rng.normal(shift, 1.0, n),
            "stable": rng.normal(5.0, 2.0, n),
            "stable_int": rng.integers(0, 40, n),
            "colour": rng.choice(["red", "green", "blue"], n, p=[0.5, 0.3, 0.2]),
        }
    )


@pytest.fixture
def ws_dir(tmp_path, cli):
    cli("init", tmp_path / "ws")
    write_csv(tmp_path / "ref.csv", frame(4000, 1))
    cli("-w", tmp_path / "ws", "data", "ingest", "loans", tmp_path / "ref.csv")
    return tmp_path


# -- baselines and checks --------------------------------------------------------------------------
def test_baseline_create_check_and_sagemaker_round_trip(ws_dir, cli):
    w = ["-w", ws_dir / "ws"]
    created = cli(*w, "baseline", "create", "loans@1", "--json").json()
    assert created["name"] == "loans-v1" and created["n_rows"] == 4000 and created["ref"] == "loans@1"

    write_csv(ws_dir / "same.csv", frame(3000, 2))
    ok = cli(*w, "check", ws_dir / "same.csv", "--baseline", "loans@1", "--json")
    assert ok.code == 0 and ok.json()["verdict"]["ok"], ok.out

    write_csv(ws_dir / "drifted.csv", frame(3000, 3, shift=0.8))
    bad = cli(*w, "check", ws_dir / "drifted.csv", "--baseline", "loans-v1",
              "--violations-out", ws_dir / "v.json", check=False)  # fmt: skip
    assert bad.code == 3, bad
    assert "drifty" in bad.out and "Verdict" in bad.out
    violations = json.loads((ws_dir / "v.json").read_text())["violations"]
    assert {v["feature_name"] for v in violations} == {"drifty"}

    # export in SageMaker's layout, import under another name: the same verdicts
    cli(*w, "baseline", "export", "loans-v1", ws_dir / "sm")
    stats = json.loads((ws_dir / "sm" / "statistics.json").read_text())
    cons = json.loads((ws_dir / "sm" / "constraints.json").read_text())
    assert stats["dataset"]["item_count"] == 4000
    assert cons["monitoring_config"]["distribution_constraints"]["comparison_threshold"] == 0.1
    cli(*w, "baseline", "import", "brought", ws_dir / "sm")
    again = cli(*w, "check", ws_dir / "drifted.csv", "--baseline", "brought", "--json",
                check=False).json()  # fmt: skip
    assert again["verdict"]["drifted_columns"] == ["drifty"]


def test_check_bad_input_is_one_clear_line(ws_dir, cli):
    w = ["-w", ws_dir / "ws"]
    cli(*w, "baseline", "create", "loans@1")
    write_csv(ws_dir / "other.csv", pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}))
    r = cli(*w, "check", ws_dir / "other.csv", "--baseline", "loans@1", check=False)
    assert r.code == 1 and "shares no column with the baseline" in r.err
    assert "Traceback" not in r.err and len(r.err.strip().splitlines()) == 1
    r = cli(*w, "check", "loans@1", "--baseline", "nope", check=False)
    assert r.code == 1 and "no baseline named 'nope'" in r.err
    r = cli(*w, "baseline", "create", "loans@1", check=False)  # shown, not an error
    assert r.code == 0 and "exists already" in r.err


def _ingest(ws, tmp_path, name: str, df: pd.DataFrame) -> None:
    ws.datasets.ingest(name, [str(write_csv(tmp_path / f"{name}-{uuid.uuid4().hex}.csv", df))])


def test_ensure_baseline_is_idempotent(workspace, tmp_path):
    _ingest(workspace, tmp_path, "d", frame(500, 4))
    first = workspace.monitoring.ensure_baseline("d@latest")
    second = workspace.monitoring.ensure_baseline("d@1")
    assert first["id"] == second["id"] and first["ref"] == "d@1"
    assert len(workspace.monitoring.baselines.list()) == 1
    loaded = workspace.monitoring.baselines.load("d@1")
    assert loaded.n_rows == 500 and set(loaded.columns) == set(frame(1, 0).columns)


def test_two_dataset_versions_compared_drift_and_histograms(workspace, tmp_path):
    """The console's comparison: version 2 (the first day plus a drifted one) against version 1,
    each column's drift verdict and both distributions on shared bins; nothing is stored."""
    _ingest(workspace, tmp_path, "d", frame(1500, 4))
    _ingest(workspace, tmp_path, "d", frame(1500, 5, shift=1.5))
    out = workspace.monitoring.compare("d@2", "d@1")
    assert (out["ref"], out["against"]) == ("d@2", "d@1")
    drifted = {r["column"]: r["drifted"] for r in out["check"]["drift"]}
    assert drifted["drifty"] and not drifted["stable"] and not drifted["colour"]
    hist = out["histograms"]
    assert set(hist) == set(frame(1, 0).columns)
    assert len(hist["drifty"]["edges"]) == len(hist["drifty"]["current"]) + 1
    assert abs(sum(hist["drifty"]["reference"]) - 1) < 1e-9
    assert hist["colour"]["kind"] == "categorical" and "red" in hist["colour"]["categories"]
    assert workspace.monitoring.baselines.list() == []


# -- alarms ----------------------------------------------------------------------------------------
class _Hook(BaseHTTPRequestHandler):
    received: list = []
    fail_first: int = 0

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        cls = type(self)
        if cls.fail_first > 0:
            cls.fail_first -= 1
            self.send_response(503)
            self.end_headers()
            return
        cls.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook():
    _Hook.received = []
    _Hook.fail_first = 1  # the first delivery fails: the action must retry
    server = HTTPServer(("127.0.0.1", 0), _Hook)  # a free port: tests run in parallel
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", _Hook
    server.shutdown()
    server.server_close()


def test_alarm_m_of_n_appends_one_event_and_runs_actions_once(workspace, webhook):
    url, hook = webhook
    mon = workspace.monitoring
    mon.alarms.create("drift-high", "drift", dimensions={"feature": "x"}, threshold=0.2,
                      comparison=">", period=60, evaluation_periods=3, datapoints_to_alarm=2,
                      actions=[f"webhook:{url}"])  # fmt: skip
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    at = [t0 + timedelta(minutes=i, seconds=5) for i in range(6)]
    values = [0.1, 0.3, 0.1, 0.5, 0.6, 0.7]  # breaches at minutes 1, 3, 4, 5
    for t, v in zip(at, values, strict=True):
        mon.put_metric("drift", v, {"feature": "x"}, time=t)
    before = len(workspace.events(kind="alarm.triggered"))
    states = [mon.alarms.evaluate("drift-high", at=t)[0] for t in at]
    assert [s["state"] for s in states] == ["OK", "OK", "OK", "ALARM", "ALARM", "ALARM"]
    assert [s["changed"] for s in states] == [True, False, False, True, False, False]
    events = workspace.events(kind="alarm.triggered")
    assert len(events) == before + 1 and events[-1]["subject"] == "drift-high"
    assert len(hook.received) == 1 and hook.received[0]["alarm"] == "drift-high"
    assert states[3]["actions"][0]["ok"] and "2 attempt" in states[3]["actions"][0]["detail"]
    history = mon.alarms.history("drift-high")
    assert [h["new_state"] for h in history if h["kind"] == "state"] == ["ALARM", "OK"]


def test_alarm_missing_data_treatments(workspace):
    mon = workspace.monitoring
    t = datetime(2026, 1, 1, 12, tzinfo=UTC)
    for name, treat in [("m", "missing"), ("b", "breaching"), ("n", "notBreaching"),
                        ("i", "ignore")]:  # fmt: skip
        mon.alarms.create(name, "latency", threshold=1.0, period=60, evaluation_periods=2,
                          missing_data=treat)  # fmt: skip
    got = {r["alarm"]: r["state"] for r in mon.alarms.evaluate(at=t)}
    assert got == {"m": "INSUFFICIENT_DATA", "b": "ALARM", "n": "OK", "i": "INSUFFICIENT_DATA"}
    with pytest.raises(Exception, match="datapoints-to-alarm"):
        mon.alarms.create("bad", "latency", threshold=1, evaluation_periods=2,
                          datapoints_to_alarm=3)  # fmt: skip


def test_alarm_rollback_that_fails_is_recorded_not_silent(workspace):
    mon = workspace.monitoring
    mon.alarms.create("rb", "errors", threshold=0, actions=["rollback:web"])  # no endpoint "web"
    mon.put_metric("errors", 5.0)
    result = mon.alarms.evaluate("rb")[0]
    assert result["state"] == "ALARM" and not result["actions"][0]["ok"]
    assert "NotFound" in result["actions"][0]["detail"] and "'web'" in result["actions"][0]["detail"]
    history = mon.alarms.history("rb")
    assert any(h["kind"] == "action" and "rollback:web: failed" in h["reason"] for h in history)


# -- monitors --------------------------------------------------------------------------------------
def test_dataset_monitor_after_ingest_scheduler_report(ws_dir, cli):
    w = ["-w", ws_dir / "ws"]
    cli(*w, "baseline", "create", "loans@1")
    cli(*w, "monitor", "create", "loans-drift", "--dataset", "loans", "--baseline", "loans@1",
        "--after-ingest")  # fmt: skip
    cli(*w, "alarms", "create", "drifty", "--metric", "drift", "--dim", "monitor=loans-drift",
        "--dim", "feature=drifty", "--threshold", "0.1")  # fmt: skip
    nothing = cli(*w, "monitor", "scheduler", "--once")
    assert "nothing due" in nothing.err
    write_csv(ws_dir / "new.csv", frame(4000, 9, shift=1.0))
    # the ingest runs the monitor on the rows it added, and evaluates alarms
    runs = cli(*w, "data", "ingest", "loans", ws_dir / "new.csv", "--json").json()["monitor_runs"]
    assert len(runs) == 1 and runs[0]["data"] == "loans@1..2" and runs[0]["n_rows"] == 4000
    assert runs[0]["summary"]["drifted_columns"] == ["drifty"]
    assert [a["state"] for a in cli(*w, "alarms", "list", "--json").json()] == ["ALARM"]
    again = cli(*w, "monitor", "scheduler", "--once", "--json").json()
    assert again["runs"] == []  # the version was seen once
    # an ingest the workspace did not see (another client) is found by the scheduler
    from modelloop import Workspace
    from modelloop.data.datasets import Datasets

    with Workspace(ws_dir / "ws") as ws:
        write_csv(ws_dir / "more.csv", frame(1000, 10))
        Datasets(ws.store, ws.artifacts, ws_dir / "scratch").ingest("loans", [ws_dir / "more.csv"])
    tick = cli(*w, "monitor", "scheduler", "--once", "--json").json()
    assert [(r["data"], r["n_rows"]) for r in tick["runs"]] == [("loans@2..3", 1000)]
    run_id = runs[0]["id"]
    out = cli(*w, "monitor", "report", str(run_id), "-o", ws_dir / "r.html")
    html = (ws_dir / "r.html").read_text()
    assert "drifty" in html and "<svg" in html and "baseline_drift_check" in html
    assert "Verdict" in out.out
    series = cli(*w, "metrics", "list", "--json").json()
    assert {"name": "drift", "dimensions": {"feature": "stable", "monitor": "loans-drift"}} in [
        {"name": s["name"], "dimensions": s["dimensions"]} for s in series
    ]
    job = cli(*w, "jobs", "list", "--json").json()
    assert any(j["kind"] == "monitor" and j["status"] == "succeeded" for j in job)


# -- endpoint traffic and model quality ------------------------------------------------------------
def _capture(ws, endpoint: str, rows: pd.DataFrame, preds, t0: datetime, probs=None):
    from modelloop.telemetry.capture import CaptureWriter, make_record

    writer = CaptureWriter(ws.store, ws.artifacts, flush_seconds=60)
    ids = []
    for i, (row, pred) in enumerate(zip(rows.itertuples(index=False), preds, strict=True)):
        iid = uuid.uuid4().hex
        ids.append(iid)
        writer.write(make_record(
            endpoint=endpoint, variant="main", model="m@1", shadow=False,
            event_id=uuid.uuid4().hex, inference_id=iid,
            ts=(t0 + timedelta(seconds=2 * i)).timestamp(), columns=list(rows.columns),
            rows=[list(row)], predictions=[pred],
            probabilities=None if probs is None else [probs[i]],
        ))  # fmt: skip
    writer.close()
    assert writer.written == len(rows)
    return ids


@pytest.mark.all_backends
def test_endpoint_monitor_quality_from_labels(workspace, tmp_path):
    from sklearn.metrics import accuracy_score, f1_score

    ws, mon = workspace, workspace.monitoring
    _ingest(ws, tmp_path, "train", frame(2000, 5))
    mon.ensure_baseline("train@1")
    now = datetime.now(UTC).replace(microsecond=0)
    t0 = now - timedelta(minutes=30)
    rng = np.random.default_rng(7)
    rows = frame(800, 6)
    truth = rng.integers(0, 2, len(rows))
    preds = np.where(rng.random(len(rows)) < 0.8, truth, 1 - truth)
    ids = _capture(ws, "web", rows, preds.tolist(), t0)

    mon.create_monitor("web-mon", endpoint="web", baseline="train@1", window="1h",
                       config={"detectors": ["adwin", "ddm"], "quality_period": 600})  # fmt: skip
    # an empty window is INSUFFICIENT_DATA, not an error
    empty = mon.run("web-mon", window_start=(now - timedelta(days=3)).isoformat(),
                    window_end=(now - timedelta(days=2)).isoformat())  # fmt: skip
    assert empty["status"] == "insufficient_data" and empty["n_rows"] == 0

    labels = pd.DataFrame({"inference_id": ids[:250] + ["nope-1", "nope-2"],
                           "label": truth[:250].tolist() + [1, 0]})  # fmt: skip
    labels.to_csv(tmp_path / "labels.csv", index=False)
    added = mon.add_labels("web", tmp_path / "labels.csv")
    assert added["labels"] == 252 and added["unknown"] == 2 and added["matched"] == 250

    run = mon.run("web-mon", window_end=(now + timedelta(seconds=1)).isoformat())
    assert run["status"] == "completed" and run["n_rows"] == 800
    assert run["n_violations"] == 0, run["summary"]
    report = mon.run_report(run["id"])
    q = report["quality"]
    assert q["n_labelled"] == 250 and q["task"] == "binary"
    assert q["metrics"]["accuracy"] == pytest.approx(accuracy_score(truth[:250], preds[:250]))
    assert q["metrics"]["f1"] == pytest.approx(f1_score(truth[:250], preds[:250]))
    assert sum(w["n"] for w in q["windows"]) == 250 and len(q["windows"]) >= 1
    assert set(q["detectors"]) == {"adwin", "ddm"}
    points = mon.metric("quality.accuracy", {"monitor": "web-mon"})
    assert points[-1]["value"] == pytest.approx(q["metrics"]["accuracy"])


def test_a_monitor_run_evaluates_its_alarms_at_the_time_of_its_points(workspace, tmp_path):
    """A run's points carry its window's end (the job's start); its alarms are evaluated then,
    not once the job has ended: with the clock a period later by then (a run across an hour's
    boundary), the drift it found was missing data and its alarm stayed INSUFFICIENT_DATA."""
    ws = workspace
    _ingest(ws, tmp_path, "d", frame(500, 1))
    _ingest(ws, tmp_path, "d", frame(500, 2, shift=3.0))
    ws.monitoring.ensure_baseline("d@1")
    ws.monitoring.create_monitor("d-drift", dataset="d", baseline="d@1")
    ws.alarms.create("d-drifted", "drift_share", threshold=0, dimensions={"monitor": "d-drift"},
                     period=3600)
    evaluate = ws.alarms.evaluate

    def late(name=None, *, at=None):  # the clock has moved on a period since the points
        return evaluate(name, at=at or datetime.now(UTC) + timedelta(hours=1))

    ws.alarms.evaluate = late
    run = ws.monitoring.run("d-drift", dataset_ref="d@2")
    assert {a["alarm"]: a["state"] for a in run["alarms"]} == {"d-drifted": "ALARM"}
