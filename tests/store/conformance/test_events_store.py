"""Conformance: EventStore (store/interfaces/events.py)."""

from __future__ import annotations

from datetime import UTC, datetime


def test_events_are_numbered_in_order_and_read_back(store):
    ids = [store.append_event("a.happened", f"s{i}", {"i": i}) for i in range(3)]
    assert ids == sorted(ids) and len(set(ids)) == 3
    events = store.list_events()
    assert [(e["id"], e["kind"], e["subject"], e["payload"]) for e in events] == [
        (ids[i], "a.happened", f"s{i}", {"i": i}) for i in range(3)
    ]
    assert events[0]["time"].tzinfo is not None


def test_paging_filtering_and_limit(store):
    first = store.append_event("model.registered", "m@1", {})
    second = store.append_event("alarm.fired", "latency", {})
    third = store.append_event("model.registered", "m@2", {})
    assert [e["id"] for e in store.list_events(after_id=first)] == [second, third]
    assert [e["subject"] for e in store.list_events(kind="model.registered")] == ["m@1", "m@2"]
    assert [e["id"] for e in store.list_events(limit=2)] == [first, second]
    assert store.list_events(after_id=third) == []
    assert store.list_events(kind="nothing") == []


def test_payloads_keep_nested_values_and_stringify_the_rest(store):
    when = datetime(2026, 3, 1, tzinfo=UTC)
    store.append_event("x", "y", {"nested": {"list": [1, 2.5, None, "a"]}, "when": when})
    (event,) = store.list_events()
    assert event["payload"]["nested"] == {"list": [1, 2.5, None, "a"]}
    assert event["payload"]["when"] == str(when)


def test_the_url_to_show_is_the_stores(store):
    shown, url = store.safe_url, store.url
    assert shown.split("+")[0].split(":")[0] == url.split("+")[0].split(":")[0]
    assert shown.rsplit("/", 1)[-1] == url.rsplit("/", 1)[-1]  # the same database
