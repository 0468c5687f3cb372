"""Monitoring must not cry wolf, driven as a user drives it (the CLI in a subprocess, the SDK):
identifiers and time columns are not drift-checked, traffic is compared on the served model's
signature, after-ingest monitors run after each ingest on the rows it added, `baseline create`
after training shows the baseline training made, and a failed run is reported as itself."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from tests.conftest import write_csv

from modelloop.data import samples


def day(n: int, seed: int, d: int):
    return samples.loan_applications(n, seed=seed, start=datetime(2026, 1, d, tzinfo=UTC))


@pytest.fixture
def loans_ws(tmp_path, cli):
    """A workspace with loans@1 (3,000 applications: an id, a time column, numbers, a category,
    the label) ingested with its event-time column, as the quickstart does."""
    cli("init", tmp_path / "ws")
    cli("-w", tmp_path / "ws", "data", "ingest", "loans", write_csv(tmp_path / "day1.csv", day(3000, 1, 1)),
        "--event-time", "applied_at")  # fmt: skip
    return tmp_path


def test_check_of_same_distribution_data_does_not_flag_the_identifier(loans_ws, cli):
    w = ["-w", loans_ws / "ws"]
    cli(*w, "baseline", "create", "loans@1", "--target", "approved")
    shown = cli(*w, "baseline", "show", "loans@1", "--json").json()
    roles = {f["name"]: f["modelloop"]["role"] for f in shown["features"]}
    assert roles["application_id"] == "identifier" and roles["applied_at"] == "time"
    assert roles["approved"] == "target" and roles["salary"] == "feature"
    r = cli(*w, "check", write_csv(loans_ws / "day2.csv", day(2000, 2, 2)), "--baseline", "loans@1",
            "--json", check=False)  # fmt: skip
    assert r.code == 0, r
    report = r.json()
    assert report["verdict"]["ok"] and report["violations"] == []
    assert {d["column"] for d in report["drift"]} == {
        "salary", "commission", "age", "elevel", "car", "zipcode", "hvalue", "hyears", "loan",
        "approved",
    }  # fmt: skip
    # real drift is still found, and exits 3
    shifted = day(2000, 3, 3).assign(salary=lambda d: d["salary"] * 1.5)
    r = cli(*w, "check", write_csv(loans_ws / "day3.csv", shifted), "--baseline", "loans@1",
            "--json", check=False)  # fmt: skip
    assert r.code == 3 and r.json()["verdict"]["drifted_columns"] == ["salary"]
    # --exclude like monitor create; an unknown column is one clear line
    r = cli(*w, "check", loans_ws / "day3.csv", "--baseline", "loans@1", "--exclude", "salary",
            "--json", check=False)  # fmt: skip
    assert r.code == 0 and "salary" not in {d["column"] for d in r.json()["drift"]}
    r = cli(*w, "check", loans_ws / "day3.csv", "--baseline", "loans@1", "--exclude", "nope",
            check=False)  # fmt: skip
    assert r.code == 1 and "nope" in r.err and len(r.err.strip().splitlines()) == 1


def test_a_tiny_batch_is_not_enough_data_not_a_violation(loans_ws, cli):
    w = ["-w", loans_ws / "ws"]
    cli(*w, "baseline", "create", "loans@1")
    r = cli(*w, "check", write_csv(loans_ws / "few.csv", day(8, 4, 4)), "--baseline", "loans@1",
            check=False)  # fmt: skip
    assert r.code == 0, r
    assert "not enough data" in r.err and "Verdict: OK" in r.out


def test_baseline_create_after_training_shows_the_existing_one(loans_ws, cli):
    w = ["-w", loans_ws / "ws"]
    cli(*w, "train", "loans@1", "-t", "approved", "-a", "logistic_regression")
    r = cli(*w, "baseline", "create", "loans@1", check=False)
    assert r.code == 0, r
    assert "exists already" in r.err and "loans-v1" in r.err and "salary" in r.out
    shown = cli(*w, "baseline", "show", "loans-v1", "--json").json()
    roles = {f["name"]: f["modelloop"]["role"] for f in shown["features"]}
    assert roles["approved"] == "target"  # training names its target
    assert roles["applied_at"] == "time" and roles["application_id"] == "identifier"
    again = cli(*w, "baseline", "create", "loans@1", "--force", "--role", "zipcode=ignored")
    assert "Recomputed baseline loans-v1" in again.out
    shown = cli(*w, "baseline", "show", "loans-v1", "--json").json()
    assert {f["name"]: f["modelloop"]["role"] for f in shown["features"]}["zipcode"] == "ignored"
    r = cli(*w, "baseline", "create", "loans@1", "--force", "--role", "zipcode=vip", check=False)
    assert r.code == 1 and "unknown role 'vip'" in r.err
    # a name taken by a baseline of other data is still an error
    cli(*w, "data", "ingest", "loans", write_csv(loans_ws / "day2.csv", day(500, 2, 2)))
    r = cli(*w, "baseline", "create", "loans@2", "--name", "loans-v1", check=False)
    assert r.code == 1 and "already exists" in r.err


def _capture(ws, endpoint: str, model: str, rows, t0: datetime) -> None:
    from modelloop.telemetry.capture import CaptureWriter, make_record

    writer = CaptureWriter(ws.store, ws.artifacts, flush_seconds=60)
    for i, row in enumerate(rows.itertuples(index=False)):
        writer.write(make_record(
            endpoint=endpoint, variant="main", model=model, shadow=False,
            event_id=uuid.uuid4().hex, inference_id=uuid.uuid4().hex,
            ts=(t0 + timedelta(seconds=i)).timestamp(), columns=list(rows.columns),
            rows=[list(row)], predictions=[int(i % 3 == 0)],
        ))  # fmt: skip
    writer.close()


def test_traffic_is_checked_on_the_served_models_signature(loans_ws, cli):
    from modelloop import Workspace

    w = ["-w", loans_ws / "ws"]
    cli(*w, "train", "loans@1", "-t", "approved", "-a", "logistic_regression", "--register",
        "credit")  # fmt: skip
    version = cli(*w, "models", "show", "credit", "--json").json()
    with Workspace(loans_ws / "ws") as ws:
        name, number = ws.models.resolve("credit@latest")
        signature = ws.store.get_model_version(name, number)["manifest"]["signature"]
        inputs = [c["name"] for c in signature["columns"]]
        assert "application_id" not in inputs and "approved" not in inputs, version
        traffic = day(600, 5, 5)[inputs]  # what clients send: the model's inputs only
        _capture(ws, "web", f"{name}@{number}", traffic, datetime.now(UTC) - timedelta(hours=1))
    r = cli(*w, "check", "--endpoint", "web", "--since", "1d", "--baseline", "loans@1", "--json",
            check=False)  # fmt: skip
    assert r.code == 0, r
    report = r.json()
    assert report["violations"] == [] and report["n_rows"] == 600
    assert {d["column"] for d in report["drift"]} == set(inputs)
    # an endpoint monitor compares the same columns
    cli(*w, "monitor", "create", "web-mon", "--endpoint", "web", "--baseline", "loans@1",
        "--window", "1d")  # fmt: skip
    run = cli(*w, "monitor", "run", "web-mon", "--json").json()
    assert run["status"] == "completed" and run["n_violations"] == 0, run


def test_after_ingest_monitor_runs_on_each_ingest_on_the_new_rows_only(loans_ws, cli):
    w = ["-w", loans_ws / "ws"]
    cli(*w, "baseline", "create", "loans@1")
    cli(*w, "monitor", "create", "fresh", "--dataset", "loans", "--baseline", "loans@1",
        "--after-ingest")  # fmt: skip
    out = cli(*w, "data", "ingest", "loans", write_csv(loans_ws / "day2.csv", day(497, 2, 2)))
    assert "monitor fresh → run #" in out.out
    runs = cli(*w, "monitor", "show", "fresh", "--json").json()["runs"]
    assert len(runs) == 1 and runs[0]["n_rows"] == 497 and runs[0]["data"] == "loans@1..2"
    assert runs[0]["status"] == "completed" and runs[0]["n_violations"] == 0
    # the scheduler does not run the same version again
    assert "nothing due" in cli(*w, "monitor", "scheduler", "--once").err
    # each ingest gets its own run, on its own rows
    cli(*w, "data", "ingest", "loans", write_csv(loans_ws / "day3.csv", day(1200, 3, 3)),
        "--json")  # fmt: skip
    runs = cli(*w, "monitor", "show", "fresh", "--json").json()["runs"]
    assert [(r["data"], r["n_rows"]) for r in runs] == [("loans@2..3", 1200), ("loans@1..2", 497)]


def test_a_failed_monitor_run_is_reported_as_itself(local_workspace, tmp_path):
    ws = local_workspace
    ws.datasets.ingest("loans", [str(write_csv(tmp_path / "d1.csv", day(800, 1, 1)))])
    ws.monitoring.baselines.create("loans@1")
    ws.monitoring.baselines.create("loans@1", name="doomed")
    ws.monitoring.create_monitor("a-good", dataset="loans", baseline="loans@1", after_ingest=True)
    ws.monitoring.create_monitor("b-broken", dataset="loans", baseline="doomed", after_ingest=True)
    ws.monitoring.baselines.delete("doomed")  # its runs now fail
    report = ws.datasets.ingest("loans", [str(write_csv(tmp_path / "d2.csv", day(300, 2, 2)))])
    outcomes = {r["monitor"]: r for r in report.monitor_runs}
    assert outcomes["a-good"]["status"] == "completed" and outcomes["a-good"]["n_rows"] == 300
    failed = outcomes["b-broken"]
    assert failed["status"] == "failed" and "doomed" in failed["error"] and failed["job_id"]
    assert ws.jobs.get(failed["job_id"])["status"] == "failed"

    # the scheduler's callback gets each run's own outcome, not the previous success: two
    # ingests by another client (which runs no monitors) leave two runs due for each monitor
    from modelloop.data.datasets import Datasets

    other = Datasets(ws.store, ws.artifacts, tmp_path / "other")
    for n in (3, 4):
        other.ingest("loans", [str(write_csv(tmp_path / f"d{n}.csv", day(300, n, n)))])
    seen = []
    tick = ws.monitoring.tick(on_run=seen.append)
    assert [(o["monitor"], o["status"]) for o in seen] == [
        ("a-good", "completed"), ("a-good", "completed"), ("b-broken", "failed"),
        ("b-broken", "failed"),
    ]  # fmt: skip
    assert {o["id"] for o in seen if o["status"] == "completed"} == {r["id"] for r in tick["runs"]}
    assert len({o["job_id"] for o in seen if o["status"] == "failed"}) == 2


def test_a_run_on_few_new_rows_is_not_enough_data_not_an_alarm(loans_ws, cli):
    """An ingest of 9 rows: the run says not enough data (record, summary, HTML report)."""
    w = ["-w", loans_ws / "ws"]
    cli(*w, "baseline", "create", "loans@1")
    cli(*w, "monitor", "create", "m", "--dataset", "loans", "--baseline", "loans@1",
        "--after-ingest")  # fmt: skip
    cli(*w, "data", "ingest", "loans", write_csv(loans_ws / "few.csv", day(9, 6, 6)))
    run = cli(*w, "monitor", "show", "m", "--json").json()["runs"][0]
    assert run["n_rows"] == 9 and run["n_violations"] == 0
    assert run["summary"]["enough_data"] is False and run["summary"]["ok"] is True
    out = cli(*w, "monitor", "report", str(run["id"]), "-o", loans_ws / "r.html", "--json").json()
    assert out["check"]["verdict"]["enough_data"] is False
    assert "not enough data" in (loans_ws / "r.html").read_text()


def test_model_quality_from_a_handful_of_labels_writes_no_quality_points(local_workspace, tmp_path):
    ws, mon = local_workspace, local_workspace.monitoring
    ws.datasets.ingest("loans", [str(write_csv(tmp_path / "d1.csv", day(1000, 1, 1)))])
    mon.baselines.create("loans@1", target="approved")
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    traffic = day(200, 7, 7).drop(columns=["approved", "application_id", "applied_at"])
    _capture(ws, "web", "gone@1", traffic, t0)  # a model the registry does not know
    from modelloop.monitoring.captures import capture_frame

    frame = capture_frame(ws.store, ws.artifacts, "web")
    wrong = [{"inference_id": i, "label": 1 - int(p)}
             for i, p in zip(frame["inference_id"], frame["prediction"], strict=True)]  # fmt: skip
    mon.create_monitor("web-mon", endpoint="web", baseline="loans@1", window="1d")
    mon.add_label_records("web", wrong[:5])  # five labels, all wrong
    run = mon.run("web-mon")
    assert run["status"] == "completed" and run["n_violations"] == 0, run["summary"]
    assert mon.run_report(run["id"])["quality"]["enough_labels"] is False
    assert mon.metric("quality.accuracy", {"monitor": "web-mon"}) == []
    mon.add_label_records("web", wrong[5:60])
    mon.run("web-mon")
    points = mon.metric("quality.accuracy", {"monitor": "web-mon"})
    assert [p["value"] for p in points] == [0.0]


def test_a_new_monitor_starts_after_the_last_ingest_reading_one_event(local_workspace, tmp_path,
                                                                       monkeypatch):  # fmt: skip
    """Where an after-ingest monitor starts is the newest ingest event: one row read, not the
    whole event log (a long-lived workspace has millions)."""
    ws = local_workspace
    for n in (1, 2):
        ws.datasets.ingest("loans", [str(write_csv(tmp_path / f"d{n}.csv", day(50, n, n)))])
    ws.store.append_event("other.kind", "x", {})  # a later event of another kind
    asked = []
    list_events = ws.store.list_events
    monkeypatch.setattr(ws.store, "list_events", lambda **kw: asked.append(kw) or list_events(**kw))
    ws.monitoring.baselines.create("loans@1")
    ws.monitoring.create_monitor("m", dataset="loans", baseline="loans@1", after_ingest=True)
    newest = list_events(kind="dataset.version_created", newest_first=True, limit=1)[0]
    assert ws.store.get_monitor("m")["last_event_id"] == newest["id"]
    assert asked and all(kw.get("limit", 1000) <= 1 for kw in asked), asked
