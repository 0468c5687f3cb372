"""Conformance: StreamStore (store/interfaces/streams.py) and the ``stream=`` part of a version's
commit: buffered appends taken and a source's position moved in the version's transaction,
exactly once."""

from __future__ import annotations

import pytest
from records import SCHEMA, commit

from modelloop.errors import Conflict


def test_appends_are_buffered_in_order_and_read_whole(store):
    a = store.append_stream_rows("orders", '{"a":1}\n{"a":2}\n', 2)
    b = store.append_stream_rows("orders", '{"a":3}\n', 1)
    store.append_stream_rows("other", '{"a":9}\n', 1)
    assert a["id"] < b["id"] and a["created_at"].tzinfo is not None
    got = store.stream_rows("orders", max_rows=1)
    assert [(r["id"], r["rows"], r["body"]) for r in got] == [(a["id"], 2, '{"a":1}\n{"a":2}\n')]
    assert [r["id"] for r in store.stream_rows("orders", max_rows=10)] == [a["id"], b["id"]]
    assert [r["id"] for r in store.stream_rows("orders", max_rows=10, skip=(a["id"],))] == [b["id"]]
    backlog = store.stream_backlog("orders")
    assert (backlog["appends"], backlog["rows"]) == (2, 3) and backlog["oldest"].tzinfo
    assert store.stream_backlog("none") == {"appends": 0, "rows": 0, "oldest": None}
    assert store.stream_offsets("orders") == []


def test_a_commit_takes_its_appends_and_moves_its_source_once(store):
    a = store.append_stream_rows("orders", '{"a":1}\n', 1)
    b = store.append_stream_rows("orders", '{"a":2}\n', 1)
    batch = {"source": "rows", "position": str(a["id"]), "expected": None,
             "consumed": [a["id"]]}
    commit(store, "orders", 1, "b1", stream=batch)
    assert [r["id"] for r in store.stream_rows("orders", max_rows=10)] == [b["id"]]
    [offset] = store.stream_offsets("orders")
    assert (offset["source"], offset["position"], offset["version"], offset["rows"]) == (
        "rows", str(a["id"]), 1, 1)
    with pytest.raises(Conflict):  # the same appends again: nothing is written
        commit(store, "orders", 1, "b1-again", expected=SCHEMA, stream=batch)
    with pytest.raises(Conflict):  # a position another commit moved
        commit(store, "orders", 1, "b2", expected=SCHEMA,
               stream={**batch, "consumed": [b["id"]], "position": str(b["id"])})
    assert store.get_dataset_version("orders")["version"] == 1
    assert [r["id"] for r in store.stream_rows("orders", max_rows=10)] == [b["id"]]
    commit(store, "orders", 1, "b2", expected=SCHEMA,
           stream={"source": "rows", "position": str(b["id"]), "expected": str(a["id"]),
                   "consumed": [b["id"]]})
    assert store.stream_rows("orders", max_rows=10) == []
    assert [(o["position"], o["version"], o["rows"]) for o in store.stream_offsets("orders")] \
        == [(str(b["id"]), 2, 2)]


def test_a_stream_source_moves_only_from_where_its_committer_read_it(store):
    redis = {"source": "redis://h:6379/0/orders#g", "consumed": []}
    commit(store, "orders", 3, "r1", stream={**redis, "expected": None, "position": "5-0"})
    with pytest.raises(Conflict):  # a second first commit
        commit(store, "orders", 3, "r1b", expected=SCHEMA,
               stream={**redis, "expected": None, "position": "5-0"})
    with pytest.raises(Conflict):  # from a position it is no longer at
        commit(store, "orders", 3, "r2", expected=SCHEMA,
               stream={**redis, "expected": "4-0", "position": "9-0"})
    commit(store, "orders", 3, "r2", expected=SCHEMA,
           stream={**redis, "expected": "5-0", "position": "9-0"})
    assert [(o["source"], o["position"], o["rows"]) for o in store.stream_offsets("orders")] \
        == [(redis["source"], "9-0", 6)]


def test_deleting_a_dataset_forgets_its_stream_state(store):
    a = store.append_stream_rows("orders", '{"a":1}\n', 1)
    commit(store, "orders", 1, "d1", stream={"source": "rows", "position": str(a["id"]),
                                             "expected": None, "consumed": [a["id"]]})
    store.append_stream_rows("orders", '{"a":2}\n', 1)
    store.append_stream_rows("other", '{"a":9}\n', 1)
    store.delete_dataset_versions("orders", 1, and_later=True, force=False, actor="t",
                                  reason=None)
    assert store.stream_offsets("orders") == [] and store.stream_rows("orders", max_rows=9) == []
    assert store.stream_backlog("other")["rows"] == 1  # another dataset's buffer is its own


def test_a_consumers_options_are_recorded_for_up_to_restart_it(store):
    store.record_stream_consumer("orders", "rows", "rows", {"every_rows": 10})
    store.record_stream_consumer("orders", "rows", "http", {"every_rows": 20})  # latest wins
    store.record_stream_consumer("clicks", "redis://h:1/0/c#g", "redis://h:1/0?stream=c",
                                 {"every_seconds": 1.5})
    got = [(c["dataset"], c["source"], c["url"], c["options"]) for c in store.stream_consumers()]
    assert got == [("clicks", "redis://h:1/0/c#g", "redis://h:1/0?stream=c", {"every_seconds": 1.5}),
                   ("orders", "rows", "http", {"every_rows": 20})]
    commit(store, "orders", 1, "c1")
    store.delete_dataset_versions("orders", 1, and_later=True, force=False, actor="t",
                                  reason=None)
    assert [c["dataset"] for c in store.stream_consumers()] == ["clicks"]
