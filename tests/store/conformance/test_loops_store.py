"""Conformance: LoopStore (store/interfaces/loops.py)."""

from __future__ import annotations


def test_a_loop_is_stored_replaced_listed_and_deleted(store):
    assert store.get_loop("loans") is None and store.list_loops() == []
    first = store.put_loop("loans", spec={"name": "loans", "data": {"dataset": "d"}},
                           base_dir="/x", hash="a" * 64, resources={"monitors": ["m"]})
    assert first["name"] == "loans" and first["spec"]["data"] == {"dataset": "d"}
    assert first["resources"] == {"monitors": ["m"]} and first["hash"] == "a" * 64
    assert first["applied_at"].tzinfo is not None and first["base_dir"] == "/x"
    second = store.put_loop("loans", spec={"name": "loans"}, base_dir="/y", hash="b" * 64,
                            resources={})
    assert second["hash"] == "b" * 64 and second["spec"] == {"name": "loans"}
    assert second["applied_at"] >= first["applied_at"]
    store.put_loop("churn", spec={}, base_dir="/", hash="c" * 64, resources={})
    assert [r["name"] for r in store.list_loops()] == ["churn", "loans"]
    assert store.delete_loop("loans") is True and store.delete_loop("loans") is False
    assert store.get_loop("loans") is None
