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


def test_several_events_are_appended_at_once_in_order(store):
    before = store.append_event("a.happened", "s", {})
    ids = store.append_events("online.event", "fraud", [{"i": i} for i in range(5)])
    assert ids == list(range(before + 1, before + 6))  # in order, after the ones before
    assert [e["payload"]["i"] for e in store.list_events(after_id=before)] == list(range(5))
    assert store.append_events("online.event", "fraud", []) == []


def test_paging_filtering_and_limit(store):
    first = store.append_event("model.registered", "m@1", {})
    second = store.append_event("alarm.fired", "latency", {})
    third = store.append_event("model.registered", "m@2", {})
    assert [e["id"] for e in store.list_events(after_id=first)] == [second, third]
    assert [e["subject"] for e in store.list_events(kind="model.registered")] == ["m@1", "m@2"]
    assert [e["id"] for e in store.list_events(limit=2)] == [first, second]
    assert [e["id"] for e in store.list_events(limit=2, newest_first=True)] == [third, second]
    assert [e["id"] for e in store.list_events(kind="model.registered", newest_first=True)] == [
        third, first]  # fmt: skip
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


# -- consumer groups (the embedded event stream, modelloop.events.embedded) --------------------


def _ids(deliveries):
    return [(event["id"], attempts) for event, attempts in deliveries]


def test_a_group_starts_where_it_is_told_and_keeps_its_position(store):
    first = store.append_event("a", "s", {})
    assert store.open_event_group("from-start", "earliest") == 0
    assert store.open_event_group("from-now", "latest") == first
    assert store.open_event_group("from-id", first) == first
    assert store.open_event_group("from-now", "earliest") == first  # exists: unchanged
    second = store.append_event("a", "s", {})
    assert _ids(store.deliver_new_events("from-now", "m", 10)) == [(second, 1)]
    assert _ids(store.deliver_new_events("from-start", "m", 1)) == [(first, 1)]
    info = store.event_group_info("from-start")
    assert info["position"] == first and info["pending"] == {"m": 1}
    assert store.event_group_info("nobody") is None


def test_deliveries_are_pending_until_acknowledged(store):
    ids = [store.append_event("a", f"s{i}", {"i": i}) for i in range(3)]
    store.open_event_group("g", "earliest")
    got = store.deliver_new_events("g", "m1", 2)
    assert _ids(got) == [(ids[0], 1), (ids[1], 1)] and got[0][0]["payload"] == {"i": 0}
    assert _ids(store.deliver_new_events("g", "m2", 10)) == [(ids[2], 1)]
    assert store.deliver_new_events("g", "m2", 10) == []
    assert store.ack_events("g", [ids[0]]) == 1
    assert store.ack_events("g", [ids[0]]) == 0  # twice is harmless
    assert _ids(store.redeliver_pending_events("g", "m1")) == [(ids[1], 2)]
    assert _ids(store.redeliver_pending_events("g", "m1", after_id=ids[1])) == []
    assert store.event_group_info("g")["pending"] == {"m1": 1, "m2": 1}


def test_stale_deliveries_move_to_the_claimer(store):
    ids = [store.append_event("a", "s", {}) for _ in range(2)]
    store.open_event_group("g", "earliest")
    store.deliver_new_events("g", "dead", 10)
    assert store.claim_stale_events("g", "alive", 3600) == []  # not idle for an hour
    assert _ids(store.claim_stale_events("g", "alive", 0, count=1)) == [(ids[0], 2)]
    assert store.event_group_info("g")["pending"] == {"alive": 1, "dead": 1}
    assert store.redeliver_pending_events("g", "dead", after_id=ids[1]) == []


def test_an_unknown_group_or_start_is_refused(store):
    import pytest

    from modelloop.errors import InvalidInput, NotFound

    with pytest.raises(NotFound):
        store.deliver_new_events("nobody", "m", 1)
    with pytest.raises(InvalidInput):
        store.open_event_group("g", "yesterday")
