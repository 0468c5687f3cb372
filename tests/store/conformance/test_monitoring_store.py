"""Conformance: MonitoringStore and the metric series, alarm and label stores
(store/interfaces/monitoring.py)."""

from __future__ import annotations

import pytest
from records import at, digest

from modelloop.errors import AlreadyExists


def _baseline(store, name, dataset="loans", version=1):
    return store.add_baseline(name=name, dataset=dataset, dataset_version=version, source="dataset",
                              digest=digest(name), n_rows=10, schema={"x": "numeric"})  # fmt: skip


def _alarm(store, name, metric="latency", state="OK"):
    return store.add_alarm(
        name=name, metric=metric, dims='{"endpoint": "web"}', statistic="average",
        comparison="GreaterThanThreshold", threshold=1.5, period=60, evaluation_periods=3,
        datapoints_to_alarm=2, missing_data="missing", actions=[{"rollback": "web"}], state=state,
    )  # fmt: skip


def test_baselines_by_name_and_by_dataset_version(store):
    first = _baseline(store, "loans-v1")
    _baseline(store, "loans-v1-copy")
    _baseline(store, "loans-v2", version=2)
    _baseline(store, "file-b", dataset=None, version=None)
    got = store.get_baseline("loans-v1")
    assert got["id"] == first and got["schema"] == {"x": "numeric"} and got["n_rows"] == 10
    assert got["created_at"].tzinfo is not None
    assert store.find_baseline("loans", 1)["name"] == "loans-v1"  # the first of two
    assert store.find_baseline("loans", 3) is None
    assert [b["name"] for b in store.list_baselines()] == [
        "loans-v1",
        "loans-v1-copy",
        "loans-v2",
        "file-b",
    ]
    with pytest.raises(AlreadyExists):
        _baseline(store, "loans-v2")
    assert store.delete_baseline("loans-v2") and not store.delete_baseline("loans-v2")
    assert store.get_baseline("loans-v2") is None


def test_monitors_defaults_conditional_updates_and_deletion(store):
    store.add_monitor(name="m2", baseline="b", endpoint="web", variant="a", window="1h",
                      schedule="*/5 * * * *", config={"drift": {"method": "psi"}})  # fmt: skip
    store.add_monitor(name="m1", baseline="b", dataset="loans", after_ingest=True, config={})
    m = store.get_monitor("m2")
    assert (m["enabled"], m["last_event_id"], m["config"]) == (
        True,
        0,
        {"drift": {"method": "psi"}},
    )
    assert (m["endpoint"], m["window"], m["schedule"]) == ("web", "1h", "*/5 * * * *")
    assert [x["name"] for x in store.list_monitors()] == ["m1", "m2"]
    with pytest.raises(AlreadyExists):
        store.add_monitor(name="m1", baseline="b", config={})
    # a scheduler slot is taken by one process only: compare-and-set on the old value
    assert store.update_monitor("m2", only_if={"last_scheduled_at": None}, last_scheduled_at=at(5))
    assert not store.update_monitor(
        "m2", only_if={"last_scheduled_at": None}, last_scheduled_at=at(6)
    )
    assert store.update_monitor("m2", only_if={"last_scheduled_at": at(5)}, last_scheduled_at=at(6))
    assert store.get_monitor("m2")["last_scheduled_at"] == at(6)
    assert store.update_monitor("m1", enabled=False, config={"x": 1})
    assert (store.get_monitor("m1")["enabled"], store.get_monitor("m1")["config"]) == (
        False,
        {"x": 1},
    )
    assert not store.update_monitor("nope", enabled=False)
    assert store.delete_monitor("m1") and not store.delete_monitor("m1")
    assert store.get_monitor("m1") is None


def test_monitor_runs_newest_first(store):
    ids = [store.add_monitor_run(monitor=m, status="completed", data="loans@1", n_rows=5,
                                 n_violations=i, summary={"verdict": "ok", "i": i})
           for i, m in enumerate(["a", "b", "a"])]  # fmt: skip
    run = store.get_monitor_run(ids[0])
    assert (run["monitor"], run["n_violations"], run["summary"]) == (
        "a",
        0,
        {"verdict": "ok", "i": 0},
    )
    assert [r["id"] for r in store.list_monitor_runs()] == ids[::-1]
    assert [r["id"] for r in store.list_monitor_runs("a")] == [ids[2], ids[0]]
    assert [r["id"] for r in store.list_monitor_runs("a", limit=1)] == [ids[2]]
    assert store.get_monitor_run(ids[2] + 1000) is None


def test_labels_a_later_label_wins(store):
    assert store.put_labels("web", [("i1", "1"), ("i2", "0")]) == 2
    assert store.put_labels("web", [("i1", "0")]) == 1
    assert store.put_labels("api", [("i1", '"yes"')]) == 1
    assert store.put_labels("web", []) == 0
    assert store.get_labels("web") == {"i1": "0", "i2": "0"}
    assert store.get_labels("api") == {"i1": '"yes"'}
    assert store.get_labels("none") == {}


def test_many_labels_at_once(store):
    rows = [(f"id{i}", str(i % 2)) for i in range(12000)]
    assert store.put_labels("web", rows) == 12000
    labels = store.get_labels("web")
    assert len(labels) == 12000 and labels["id11999"] == "1"


def test_metric_series_are_exact_dimensions_in_time_order(store):
    web, api = {"endpoint": "web"}, {"endpoint": "api"}
    assert store.put_metric_points([
        ("latency", web, at(2), 0.2), ("latency", web, at(1), 0.1), ("latency", api, at(1), 9.0),
        ("latency", {}, at(1), 5.0), ("latency", {"endpoint": "web", "variant": "a"}, at(1), 7.0),
    ]) == 5  # fmt: skip
    assert store.put_metric_points([]) == 0
    points = store.metric_points("latency", web)
    assert [(p["time"], p["value"]) for p in points] == [(at(1), 0.1), (at(2), 0.2)]
    assert [p["value"] for p in store.metric_points("latency")] == [5.0]
    assert [p["value"] for p in store.metric_points("latency", web, since=at(2))] == [0.2]
    assert [p["value"] for p in store.metric_points("latency", web, until=at(2))] == [0.1]
    assert store.metric_points("nope", web) == []


def test_dimension_values_are_compared_as_text(store):
    store.put_metric_points([("n", {"k": 1}, at(0), 1.0)])
    assert [p["value"] for p in store.metric_points("n", {"k": "1"})] == [1.0]


def test_series_are_listed_by_literal_prefix(store):
    store.put_metric_points([
        ("serving.latency", {"endpoint": "web"}, at(1), 1.0),
        ("serving.latency", {"endpoint": "web"}, at(3), 2.0),
        ("serving.latency", {"endpoint": "api"}, at(2), 1.0),
        ("servingXlatency", {}, at(1), 1.0),
        ("drift_psi", {}, at(1), 1.0), ("driftXpsi", {}, at(1), 1.0),
    ])  # fmt: skip
    listed = store.list_metric_series("serving.")
    assert [(s["name"], s["dimensions"], s["points"]) for s in listed] == [
        ("serving.latency", {"endpoint": "api"}, 1),
        ("serving.latency", {"endpoint": "web"}, 2),
    ]
    assert listed[1]["last"] == at(3)
    assert [s["name"] for s in store.list_metric_series("drift_")] == ["drift_psi"]
    assert len(store.list_metric_series()) == 5


def test_alarms_round_trip_and_filter_by_metric(store):
    _alarm(store, "slow")
    _alarm(store, "errors", metric="error_rate")
    got = store.get_alarm("slow")
    assert (got["threshold"], got["datapoints_to_alarm"], got["actions"]) == (
        1.5,
        2,
        [{"rollback": "web"}],
    )
    assert got["state"] == "OK"
    assert [a["name"] for a in store.list_alarms()] == ["errors", "slow"]
    assert [a["name"] for a in store.list_alarms("latency")] == ["slow"]
    with pytest.raises(AlreadyExists):
        _alarm(store, "slow")
    assert store.get_alarm("nope") is None


def test_an_alarm_transition_happens_once_with_its_history_and_event(store):
    _alarm(store, "slow")
    event = ("alarm.state_changed", "slow", {"new": "ALARM"})
    first = store.transition_alarm(
        "slow", "OK", "ALARM", "2 of 3 above 1.5", {"points": [2, 3]}, event
    )
    assert first > 0
    # a second scheduler saw the same old state: it loses and writes nothing
    assert store.transition_alarm("slow", "OK", "ALARM", "again", {}, event) is None
    alarm = store.get_alarm("slow")
    assert (alarm["state"], alarm["state_reason"]) == ("ALARM", "2 of 3 above 1.5")
    assert alarm["state_updated_at"].tzinfo is not None
    (row,) = store.alarm_history("slow")
    assert (row["kind"], row["old_state"], row["new_state"], row["data"]) == (
        "state", "OK", "ALARM", {"points": [2, 3]})  # fmt: skip
    events = store.list_events(kind="alarm.state_changed")
    assert [e["id"] for e in events] == [first] and events[0]["payload"] == {"new": "ALARM"}
    assert store.transition_alarm("slow", "ALARM", "OK", "back", {}) == 0  # no event asked


def test_alarm_history_newest_first_and_deleted_with_the_alarm(store):
    _alarm(store, "slow")
    store.transition_alarm("slow", "OK", "ALARM", "up", {})
    store.add_alarm_history("slow", "action", "rolled back web", {"ok": True})
    history = store.alarm_history("slow")
    assert [(h["kind"], h["reason"]) for h in history] == [
        ("action", "rolled back web"),
        ("state", "up"),
    ]
    assert history[0]["data"] == {"ok": True}
    assert len(store.alarm_history("slow", limit=1)) == 1
    assert store.delete_alarm("slow") and not store.delete_alarm("slow")
    assert store.alarm_history("slow") == []
