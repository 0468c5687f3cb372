"""Conformance of the event stream (modelloop.events): every backend delivers the store's events
to consumer groups at least once, in id order, as the interface in events/stream.py promises.
Runs on the embedded stream (SQLite, PostgreSQL) and on Redis Streams (tests/events/conftest.py).
"""

from __future__ import annotations

import threading

import pytest

from modelloop.errors import InvalidInput


def _ids(deliveries) -> list[int]:
    return [d.event["id"] for d in deliveries]


def _drain(consumer, count=100) -> list:
    out = []
    while got := consumer.read(count):
        out += got
    return out


def test_events_come_in_order_once_with_what_the_store_holds(events):
    ids = events.append(5)
    consumer = events.stream().consumer("g", "m", start="earliest")
    got = consumer.read(3) + consumer.read(10)
    assert _ids(got) == ids and [d.attempts for d in got] == [1] * 5
    assert {k: got[0].event[k] for k in ("kind", "subject", "payload")} == {
        "kind": "test.happened", "subject": "s0", "payload": {"i": 0}}
    assert got[0].event["time"] is not None
    assert consumer.read() == []
    consumer.ack(got)
    later = events.append(2)
    assert _ids(consumer.read()) == later


def test_a_group_starts_where_it_is_told(events):
    before = events.append(3)
    stream = events.stream()
    latest = stream.consumer("latest", "m")  # the default: what is appended from now on
    from_id = stream.consumer("from-id", "m", start=before[0])
    after = events.append(1)
    assert _ids(latest.read()) == after
    assert _ids(from_id.read()) == before[1:] + after
    # An existing group keeps its position, whatever start a new member names.
    assert stream.consumer("latest", "m2", start="earliest").read() == []


def test_a_restarted_consumer_gets_its_unacknowledged_events_again_first(events):
    ids = events.append(4)
    consumer = events.stream().consumer("g", "m", start="earliest")
    got = consumer.read(3)
    consumer.ack(got[:1])  # crashed while handling the second
    new = events.append(1)
    restarted = events.stream().consumer("g", "m")
    again = restarted.read(10)
    assert _ids(again) == ids[1:3] and [d.attempts for d in again] == [2, 2]
    assert _ids(restarted.read(10)) == [ids[3], *new]
    restarted.ack(again)
    assert _ids(events.stream().consumer("g", "m").read(10)) == [ids[3], *new]  # not acked


def test_members_of_a_group_split_its_events(events):
    ids = events.append(10)
    one = events.stream().consumer("g", "one", start="earliest")
    two = events.stream().consumer("g", "two")
    a, b = one.read(3), two.read(4)
    a += one.read(100)
    assert sorted(_ids(a) + _ids(b)) == ids and not set(_ids(a)) & set(_ids(b))
    assert _ids(b) == ids[3:7]
    assert two.read() == []


def test_members_reading_at_once_never_get_the_same_event(events):
    ids = events.append(60)
    got: dict[str, list] = {}

    def member(name):
        consumer = events.stream().consumer("g", name, start="earliest")
        got[name] = _drain(consumer, count=5)

    threads = [threading.Thread(target=member, args=(f"m{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [i for name in got for i in _ids(got[name])]
    assert sorted(every) == ids


def test_events_appended_while_reading_are_all_delivered(events):
    """Appends from concurrent transactions are never skipped by a reader that moves past them."""
    consumer = events.stream().consumer("g", "m", start="earliest")
    appended: list[int] = []
    lock = threading.Lock()

    def writer():
        for i in range(15):
            event = events.store.append_event("w", "s", {"i": i})
            with lock:
                appended.append(event)

    threads = [threading.Thread(target=writer) for _ in range(3)]
    for t in threads:
        t.start()
    seen = []
    while any(t.is_alive() for t in threads):
        seen += consumer.read(7)
    for t in threads:
        t.join()
    seen += _drain(consumer)
    assert sorted(_ids(seen)) == sorted(appended) and _ids(seen) == sorted(_ids(seen))


def test_every_group_sees_every_event(events):
    ids = events.append(4)
    stream = events.stream()
    first = stream.consumer("first", "m", start="earliest")
    second = stream.consumer("second", "m", start="earliest")
    a = first.read()
    first.ack(a)
    assert _ids(a) == ids and _ids(second.read()) == ids


def test_a_dead_members_deliveries_can_be_claimed(events):
    ids = events.append(3)
    dead = events.stream().consumer("g", "dead", start="earliest")
    assert _ids(dead.read(2)) == ids[:2]
    alive = events.stream().consumer("g", "alive")
    assert alive.claim_stale(3600) == []  # held for less than an hour
    claimed = alive.claim_stale(0)
    assert _ids(claimed) == ids[:2] and [d.attempts for d in claimed] == [2, 2]
    assert alive.claim_stale(0, count=1)[0].attempts == 3  # its own, not acknowledged
    alive.ack(claimed)
    assert alive.claim_stale(0) == []
    restarted = events.stream().consumer("g", "dead")
    assert _ids(restarted.read()) == [ids[2]]  # what was taken from it does not come back


def test_group_info_counts_each_members_pending_deliveries(events):
    events.append(3)
    stream = events.stream()
    consumer = stream.consumer("g", "m", start="earliest")
    got = consumer.read(2)
    info = stream.group_info("g")
    assert info["name"] == "g" and info["pending"] == {"m": 2}
    consumer.ack(got[:1])
    assert stream.group_info("g")["pending"] == {"m": 1}
    assert stream.group_info("nobody") is None


def test_a_blocking_read_waits_for_the_next_event(events):
    consumer = events.stream().consumer("g", "m")
    assert consumer.read(block=0.05) == []
    timer = threading.Timer(0.2, lambda: events.append(1))
    timer.start()
    got = consumer.read(block=30)
    timer.join()
    assert len(got) == 1


def test_bad_names_and_starts_are_refused(events):
    stream = events.stream()
    for group, name, start in (("", "m", "latest"), ("g", "x" * 129, "latest"),
                               ("g", "m", "yesterday"), ("g", "m", -1)):
        with pytest.raises(InvalidInput):
            stream.consumer(group, name, start=start)
    with pytest.raises(InvalidInput):
        stream.consumer("g", "m").read(0)


def test_a_relay_run_again_after_a_crash_duplicates_nothing(events):
    """Redis only: the relay copies store events into the stream under ids ``<event id>-1``."""
    if events.name != "redis":
        pytest.skip("the embedded stream reads the store itself: it has no relay")
    first = events.stream()
    ids = events.append(3)
    assert first.relay() == 3
    more = events.append(4)
    # A relay that crashed after copying part of a batch: the stream has the first two of four.
    from modelloop.events.redis_stream import _encode

    for event in events.store.list_events(after_id=ids[-1], limit=2):
        first.client.xadd(first.key, {"e": _encode(event)}, id=f"{event['id']}-1")
    restarted = events.stream()  # knows nothing: starts from the stream's last entry
    assert restarted.relay() == 2
    assert first.relay() == 0  # a second relay with an old idea of the stream adds nothing
    entries = first.client.xrange(first.key)
    assert [e[0] for e in entries] == [f"{i}-1" for i in ids + more]
    consumer = restarted.consumer("g", "m", start="earliest")
    assert _ids(_drain(consumer)) == ids + more


def test_a_lost_redis_stream_is_rebuilt_from_the_store(events):
    """Redis only: a Redis restarted without persistence loses the stream and its groups; the
    next read copies the store's events again and delivers them again (at least once)."""
    if events.name != "redis":
        pytest.skip("the embedded stream's groups live in the store itself")
    ids = events.append(3)
    stream = events.stream()
    consumer = stream.consumer("g", "m", start="earliest")
    consumer.ack(consumer.read())
    stream.client.delete(stream.key)
    more = events.append(1)
    assert _ids(_drain(consumer)) == ids + more
