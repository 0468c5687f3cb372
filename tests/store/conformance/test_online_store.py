"""Conformance: OnlineStore (store/interfaces/online.py)."""

from __future__ import annotations

import threading


def _event(i):
    return {"features": {"x": i}, "label": i % 2 == 0}


def test_events_get_seqs_in_order_and_read_back(store):
    assert store.online_stream("fraud") == {"endpoint": "fraud", "last_seq": 0, "rejected": 0}
    assert store.append_online_events("fraud", [_event(1), _event(2)]) == [1, 2]
    assert store.append_online_events("fraud", [_event(3)], rejected=2) == [3]
    assert store.append_online_events("other", [_event(9)]) == [1]  # seqs are per endpoint
    got = store.read_online_events("fraud", 1, 10)
    assert [(e["seq"], e["features"], e["label"]) for e in got] == [
        (2, {"x": 2}, True),
        (3, {"x": 3}, False),
    ]
    assert got[0]["time"].tzinfo is not None and got[0]["inference_id"] is None
    assert [e["seq"] for e in store.read_online_events("fraud", 0, 1)] == [1]
    store.count_online_rejected("fraud", 3)
    assert store.online_stream("fraud") | {} == {"endpoint": "fraud", "last_seq": 3, "rejected": 5}


def test_concurrent_appenders_leave_no_gap(store):
    def append():
        for _ in range(10):
            store.append_online_events("fraud", [_event(0), _event(1)])

    threads = [threading.Thread(target=append) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [e["seq"] for e in store.read_online_events("fraud", 0, 1000)] == list(range(1, 81))


def test_a_variant_model_is_published_with_a_growing_revision(store):
    assert store.online_model_revision("fraud", "online") == 0
    assert store.get_online_model("fraud", "online") is None
    rev = store.save_online_model(
        "fraud", "online", applied_seq=5, model=b"m1", state=b"s1", info={"events": 5}
    )
    assert rev == 1 and store.online_model_revision("fraud", "online") == 1
    assert (
        store.save_online_model("fraud", "online", applied_seq=9, model=b"m2", state=None, info={})
        == 2
    )
    row = store.get_online_model("fraud", "online", state=True)
    assert (row["revision"], row["applied_seq"], row["model"], row["state"]) == (2, 9, b"m2", None)
    assert "state" not in store.get_online_model("fraud", "online")


def test_a_learner_of_an_older_lease_term_cannot_overwrite_a_newer_ones_checkpoint(store):
    import pytest

    from modelloop.errors import Conflict

    def save(seq, term):
        return store.save_online_model("fraud", "online", applied_seq=seq, model=b"m",
                                       state=None, info={}, term=term)  # fmt: skip

    assert save(5, term=2) == 1
    with pytest.raises(Conflict, match="term 2"):
        save(9, term=1)  # lost its lease to term 2 without noticing
    assert store.get_online_model("fraud", "online")["applied_seq"] == 5
    assert (save(7, term=2), save(8, term=3)) == (2, 3)  # the same term, then a later one


def test_packed_and_json_blocks_read_back_exactly(store):
    from modelloop.store.interfaces.online import AlikeEvents

    names = ("b", "a")  # not sorted: the order is kept
    packed = AlikeEvents(names, [0.1, -2.5e300, 1e-320, 3.0], [True, False])
    assert store.append_online_events("fraud", packed) == [1, 2]
    mixed = [{"features": {"b": 1.5, "a": 2}, "label": "x"},  # an int stays an int
             {"features": {"a": 0.5, "b": 1.0}, "label": 1.5}]  # fmt: skip
    assert store.append_online_events("fraud", mixed) == [3, 4]
    got = store.read_online_events("fraud", 0, 10)
    assert [list(e["features"].items()) for e in got] == [
        [("b", 0.1), ("a", -2.5e300)], [("b", 1e-320), ("a", 3.0)],
        [("b", 1.5), ("a", 2)], [("a", 0.5), ("b", 1.0)]]  # fmt: skip
    assert type(got[2]["features"]["a"]) is int
    assert [e["label"] for e in got] == [True, False, "x", 1.5]
    batch = store.read_online_batch("fraud", 1, 2)
    assert (batch.seqs, batch.labels) == ([2, 3], [False, "x"])


def test_reads_cut_across_appends_and_keep_given_times(store):
    from datetime import UTC, datetime

    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    store.append_online_events("fraud", [_event(i) for i in range(5)])
    store.append_online_events("fraud", [{**_event(5), "time": at, "inference_id": "r9"}])
    store.append_online_events("fraud", [_event(i) for i in range(6, 9)])
    got = store.read_online_events("fraud", 2, 4)
    assert [e["seq"] for e in got] == [3, 4, 5, 6]
    assert got[3]["time"] == at and got[3]["inference_id"] == "r9"
    assert [e["seq"] for e in store.read_online_events("fraud", 6, 100)] == [7, 8, 9]
    assert store.read_online_events("fraud", 9, 100) == []
    for after in range(0, 9):  # every cut gives the rest in order
        assert [e["seq"] for e in store.read_online_events("fraud", after, 3)] == list(
            range(after + 1, min(after + 3, 9) + 1)
        )


def test_a_large_append_reads_back_whole_in_any_steps(store):
    events = [_event(i) for i in range(1000)]  # several stored blocks
    assert store.append_online_events("fraud", events) == list(range(1, 1001))
    got, after = [], 0
    while batch := store.read_online_events("fraud", after, 333):
        got += batch
        after = batch[-1]["seq"]
    assert [e["seq"] for e in got] == list(range(1, 1001))
    assert [e["features"]["x"] for e in got] == list(range(1000))
